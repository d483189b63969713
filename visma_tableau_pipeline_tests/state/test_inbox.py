"""The webhook inbox stores each notification once and hands out pending ones oldest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from visma_tableau_pipeline.state import (
    InboxError,
    StateDB,
    add_notification,
    mark_processed,
    pending,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def add(db: StateDB, notification_id: str, minutes: int = 0, source: str = "visma") -> bool:
    with db.transaction() as conn:
        return add_notification(
            conn, source, notification_id, "acme", "suppliers", "70001",  # type: ignore[arg-type]
            f'{{"id": "{notification_id}"}}', T0 + timedelta(minutes=minutes),
        )


def test_a_duplicate_notification_is_stored_once(db: StateDB) -> None:
    assert add(db, "n-1")
    assert not add(db, "n-1", minutes=5)
    assert add(db, "n-1", source="tableau")  # another sender's ids are another namespace
    with db.connect() as conn:
        assert [(n.source, n.notification_id) for n in pending(conn)] == [
            ("visma", "n-1"), ("tableau", "n-1"),
        ]


def test_pending_is_oldest_first_and_processed_ones_leave_it(db: StateDB) -> None:
    add(db, "late", minutes=10)
    add(db, "early", minutes=1)
    add(db, "middle", minutes=5)

    with db.transaction() as conn:
        first_two = pending(conn, limit=2)
        assert [n.notification_id for n in first_two] == ["early", "middle"]
        assert first_two[0].received_at == T0 + timedelta(minutes=1)
        assert first_two[0].raw_body == '{"id": "early"}'
        assert mark_processed(conn, [n.id for n in first_two], "sensor-run-1") == 2
        assert mark_processed(conn, [first_two[0].id], "sensor-run-2") == 0  # already done

    with db.connect() as conn:
        assert [n.notification_id for n in pending(conn)] == ["late"]


def test_an_unknown_source_is_refused(db: StateDB) -> None:
    with pytest.raises(InboxError, match="unknown notification source 'stripe'"):
        add(db, "n-1", source="stripe")
