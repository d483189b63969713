"""The encrypted credential store: round trips, wrong keys, tampering, key files, no leaks."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, update

from visma_tableau_pipeline.state import (
    SecretKeyError,
    SecretKeyFileError,
    SecretKeyMissingError,
    SecretNameError,
    SecretStore,
    SecretTamperedError,
    StateDB,
    generate_key_file,
    load_key,
)
from visma_tableau_pipeline.state.schema import secrets as secrets_table

VALUE = "s3cr3t-PAT-value-\u00e6\u00f8\u00e5"
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def test_secrets_round_trip_and_list_shows_names_only(db: StateDB) -> None:
    store = SecretStore(db, KEY_A)
    store.set("tableau/pat_secret", VALUE)
    store.set("visma/acme/client_secret", "first")
    store.set("visma/acme/client_secret", "second")

    assert store.get("tableau/pat_secret") == VALUE
    assert store.get("visma/acme/client_secret") == "second"
    assert store.get("visma/beta/client_secret") is None
    listed = store.list()
    assert [info.name for info in listed] == ["tableau/pat_secret", "visma/acme/client_secret"]
    assert VALUE not in repr(listed)

    assert store.remove("tableau/pat_secret")
    assert not store.remove("tableau/pat_secret")
    assert store.get("tableau/pat_secret") is None


def test_values_are_encrypted_at_rest(db: StateDB) -> None:
    SecretStore(db, KEY_A).set("tableau/pat_secret", VALUE)
    with db.connect() as conn:
        stored = conn.execute(select(secrets_table)).one()
    assert VALUE.encode() not in bytes(stored.ciphertext)
    assert VALUE not in repr(stored)


def test_a_wrong_key_says_so_and_what_to_do(db: StateDB) -> None:
    SecretStore(db, KEY_A).set("tableau/pat_secret", VALUE)
    other = SecretStore(db, KEY_B)

    with pytest.raises(SecretKeyError, match=r"does not match.*original key") as caught:
        other.get("tableau/pat_secret")
    assert caught.value.__context__ is None  # no chained traceback from the cipher
    with pytest.raises(SecretKeyError, match="does not match"):
        other.set("visma/acme/client_secret", "mixed keys would strand one of them")
    assert SecretStore(db, KEY_A).get("visma/acme/client_secret") is None


def test_a_ciphertext_moved_to_another_name_does_not_decrypt(db: StateDB) -> None:
    store = SecretStore(db, KEY_A)
    store.set("tableau/pat_secret", VALUE)
    store.set("visma/acme/client_secret", "harmless")
    with db.transaction() as conn:
        moved = conn.execute(
            select(secrets_table.c.nonce, secrets_table.c.ciphertext).where(
                secrets_table.c.name == "tableau/pat_secret"
            )
        ).one()
        conn.execute(
            update(secrets_table)
            .where(secrets_table.c.name == "visma/acme/client_secret")
            .values(nonce=bytes(moved.nonce), ciphertext=bytes(moved.ciphertext))
        )

    with pytest.raises(SecretTamperedError, match="visma/acme/client_secret") as caught:
        store.get("visma/acme/client_secret")
    assert VALUE not in str(caught.value)


def test_secret_values_never_reach_logs_or_reprs(
    db: StateDB, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = SecretStore(db, KEY_A)
    store.set("tableau/pat_secret", VALUE)
    store.get("tableau/pat_secret")
    store.list()
    store.remove("tableau/pat_secret")

    assert "tableau/pat_secret" in caplog.text  # names are logged ...
    assert VALUE not in caplog.text  # ... values never
    assert KEY_A.hex() not in repr(store) and "hidden" in repr(store)
    assert base64.urlsafe_b64encode(KEY_A).decode() not in repr(store)


def test_a_name_with_whitespace_is_refused(db: StateDB) -> None:
    with pytest.raises(SecretNameError):
        SecretStore(db, KEY_A).set("tableau pat", VALUE)


def test_generated_key_file_is_private_and_loads(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "home" / "secret.key")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(path, environ={})
    assert len(key) == 32
    with pytest.raises(SecretKeyFileError, match="already exists"):
        generate_key_file(path)
    assert load_key(path, environ={}) == key  # not replaced


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "secret.key")
    os.chmod(path, 0o644)
    with pytest.raises(SecretKeyFileError, match=r"group or others \(mode 644\).*chmod 600"):
        load_key(path, environ={})


def test_a_missing_key_names_both_ways_to_provide_one(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyMissingError, match=r"VTP_SECRET_KEY.*vtp secrets init"):
        load_key(tmp_path / "secret.key", environ={})


def test_the_environment_key_wins_over_the_key_file(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "secret.key")
    environ = {"VTP_SECRET_KEY": base64.urlsafe_b64encode(KEY_B).decode()}
    assert load_key(path, environ=environ) == KEY_B


def test_a_malformed_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    not_a_key = "hunter2-is-not-32-bytes"
    with pytest.raises(SecretKeyError, match="VTP_SECRET_KEY does not hold a key") as caught:
        load_key(tmp_path / "secret.key", environ={"VTP_SECRET_KEY": not_a_key})
    assert not_a_key not in str(caught.value)
