"""`upsert_many`: the driver's executemany on SQLite stores what SQLAlchemy's own path stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from visma_tableau_pipeline.state import StateDB
from visma_tableau_pipeline.state.schema import records
from visma_tableau_pipeline.state.upsert import insert_on_conflict, upsert_many

KEY = ("company_id", "entity", "record_key")
UPDATE = ("content_hash", "payload", "updated_at", "deleted_at")
T1 = datetime(2025, 3, 2, 10, 11, 12, 123456, tzinfo=UTC)
T2 = datetime(2025, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # 10:00 UTC


def row(key: str, updated_at: datetime, **fields) -> dict:
    return {
        "company_id": "acme", "entity": "suppliers", "record_key": key, "content_hash": "h",
        "payload": "{}", "last_modified": None, "period": None, "deleted_at": None,
        "first_seen_run": "run-1", "last_changed_run": "run-1", "updated_at": updated_at, **fields,
    }


def read(db: StateDB) -> list[dict]:
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(select(records).order_by(records.c.record_key)).mappings()]


def test_rows_read_back_as_sqlalchemy_s_own_insert_stores_them(db: StateDB) -> None:
    rows = [row("1", T1), row("2", T1), row("3", T2, deleted_at=T1), row("4", T1, payload='{"a":"Ø"}')]
    with db.transaction() as conn:
        upsert_many(conn, records, KEY, UPDATE, rows[:3])
        conn.execute(insert_on_conflict(conn, records, KEY, UPDATE), rows[3:])
    stored = read(db)

    assert [r["updated_at"] for r in stored] == [T1, T1, T2, T1]
    assert [r["deleted_at"] for r in stored] == [None, None, T1, None]
    assert stored[3]["payload"] == '{"a":"Ø"}'
    with db.connect() as conn:
        raw = conn.exec_driver_sql("SELECT updated_at FROM vtp_records ORDER BY record_key").scalars().all()
    assert raw[0] == raw[1] == raw[3]  # the same spelling as SQLAlchemy's own insert


def test_a_conflict_updates_only_the_named_columns(db: StateDB) -> None:
    with db.transaction() as conn:
        upsert_many(conn, records, KEY, UPDATE, [row("1", T1)])
    with db.transaction() as conn:
        upsert_many(conn, records, KEY, UPDATE,
                    [row("1", T2, content_hash="h2", first_seen_run="run-2", last_changed_run="run-2")])

    (stored,) = read(db)
    assert (stored["content_hash"], stored["updated_at"]) == ("h2", T2)
    assert (stored["first_seen_run"], stored["last_changed_run"]) == ("run-1", "run-1")


def test_no_rows_is_no_statement(db: StateDB) -> None:
    with db.transaction() as conn:
        upsert_many(conn, records, KEY, UPDATE, [])
    assert read(db) == []
