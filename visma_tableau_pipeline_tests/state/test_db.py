"""Opening the state database: URLs, the SQLite file, and a writer and reader sharing it."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from visma_tableau_pipeline.state import (
    StateConfigError,
    StateDB,
    add_notification,
    count,
    normalise_url,
    pending,
    upsert_records,
)
from visma_tableau_pipeline.state.schema import metadata, utc_now


@pytest.mark.parametrize(
    "url",
    ["postgres://u:pw@db/vtp", "postgresql://u:pw@db/vtp", "postgresql+psycopg2://u:pw@db/vtp"],
)
def test_postgres_urls_use_the_installed_psycopg2_driver(url: str) -> None:
    assert normalise_url(url).drivername == "postgresql+psycopg2"


def test_other_databases_are_refused_with_the_reason() -> None:
    with pytest.raises(StateConfigError, match="SQLite or PostgreSQL, not 'mysql'"):
        StateDB("mysql://u@db/vtp")


@pytest.mark.postgres
def test_repr_hides_the_password(postgres_url: str) -> None:
    url = make_url(postgres_url).set(password="pw-not-shown")  # trust auth ignores it
    db = StateDB(url.render_as_string(hide_password=False))
    try:
        assert "pw-not-shown" not in repr(db) and "***" in repr(db)
    finally:
        metadata.drop_all(db.engine)
        db.dispose()


def test_sqlite_file_is_created_under_a_new_home_in_wal_mode(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'new' / 'home' / 'state.db'}")
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert (tmp_path / "new" / "home" / "state.db").exists()
    StateDB(f"sqlite:///{tmp_path / 'new' / 'home' / 'state.db'}")  # tables exist: no error


def test_a_new_sqlite_file_and_its_wal_and_shm_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    previous = os.umask(0o022)  # the usual umask, under which SQLite would make them 0644
    try:
        db = StateDB(f"sqlite:///{home / 'state.db'}")
        with db.transaction() as conn:
            upsert_records(conn, "acme", "suppliers", [("1", None, None, {"n": 1})], "run-1")
        with db.connect():  # an open connection keeps the -wal and -shm files on disk
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in home.iterdir()}
        db.dispose()
    finally:
        os.umask(previous)
    assert modes == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}


def test_a_new_sqlite_file_has_large_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    new = StateDB(f"sqlite:///{tmp_path / 'new.db'}")
    old_file = tmp_path / "old.db"
    with sqlite3.connect(old_file) as made_elsewhere:  # a file from before, with 4 KB pages
        made_elsewhere.execute("PRAGMA page_size=4096")
        made_elsewhere.execute("CREATE TABLE earlier (x)")
    old = StateDB(f"sqlite:///{old_file}")
    with new.connect() as conn:
        assert conn.execute(text("PRAGMA page_size")).scalar() == 16_384
    with old.connect() as conn:
        assert conn.execute(text("PRAGMA page_size")).scalar() == 4096
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    with old.transaction() as conn:
        upsert_records(conn, "acme", "suppliers", [("1", None, None, {"n": 1})], "run-1")
    new.dispose()
    old.dispose()


def test_a_sensor_reads_and_writes_while_a_run_holds_a_write_transaction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    run_db, sensor_db = StateDB(url), StateDB(url)
    holding = threading.Event()

    def long_run() -> None:
        with run_db.transaction() as conn:
            upsert_records(conn, "acme", "suppliers", [("1", None, None, {"n": 1})], "run-1")
            holding.set()
            time.sleep(0.5)

    run = threading.Thread(target=long_run)
    run.start()
    holding.wait(5)
    with sensor_db.connect() as conn:  # a read does not wait for the writer
        assert pending(conn) == []
        assert count(conn, "acme", "suppliers") == 0  # and sees only committed data
    with sensor_db.transaction() as conn:  # a write waits its turn instead of failing
        add_notification(conn, "visma", "n-1", "acme", None, None, "{}", utc_now())
    run.join()
    with sensor_db.connect() as conn:
        assert count(conn, "acme", "suppliers") == 1
        assert len(pending(conn)) == 1
