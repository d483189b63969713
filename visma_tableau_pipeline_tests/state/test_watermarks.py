"""Watermarks move forward only, compare as timestamps, and are kept per scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from visma_tableau_pipeline.state import (
    StateDB,
    WatermarkError,
    advance_watermark,
    get_watermark,
    last_full_sync,
    record_full_sync,
)
from visma_tableau_pipeline.state.watermarks import timestamp_order


def advance(db: StateDB, value: str, scope: str = "") -> bool:
    with db.transaction() as conn:
        return advance_watermark(conn, "acme", "suppliers", value, "run", scope=scope)


def current(db: StateDB, scope: str = "") -> str | None:
    with db.connect() as conn:
        return get_watermark(conn, "acme", "suppliers", scope)


def test_a_watermark_never_moves_backwards(db: StateDB) -> None:
    assert current(db) is None
    assert advance(db, "2025-03-01T10:00:00.500")
    assert not advance(db, "2025-03-01T09:59:59")
    assert not advance(db, "2025-03-01 10:00:00.5")  # the same moment, written differently
    assert current(db) == "2025-03-01T10:00:00.500"
    assert advance(db, "2025-03-01T10:00:00.501")
    assert current(db) == "2025-03-01T10:00:00.501"


def test_each_scope_has_its_own_watermark(db: StateDB) -> None:
    advance(db, "2025-03-31T00:00:00", scope="202503")
    advance(db, "2025-02-28T00:00:00", scope="202502")
    assert current(db, "202503") == "2025-03-31T00:00:00"
    assert current(db, "202502") == "2025-02-28T00:00:00"
    assert current(db) is None


def test_a_value_that_is_not_a_timestamp_is_refused_and_changes_nothing(db: StateDB) -> None:
    advance(db, "2025-03-01")
    with pytest.raises(WatermarkError, match="not a timestamp"):
        advance(db, "yesterday")
    assert current(db) == "2025-03-01"


def test_full_sync_time_is_kept_beside_the_watermark(db: StateDB) -> None:
    at = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    with db.transaction() as conn:
        assert last_full_sync(conn, "acme", "suppliers") is None
        record_full_sync(conn, "acme", "suppliers", "run-9", at=at)
    assert advance(db, "2025-02-01")
    with db.connect() as conn:
        assert last_full_sync(conn, "acme", "suppliers") == at
        assert get_watermark(conn, "acme", "suppliers") == "2025-02-01"


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("2025-03-01T10:00:00", "2025-03-01T10:00:00.001"),
        ("2025-03-01 10:00:00.999", "2025-03-01T10:00:01"),
        ("2025-03-01T10:00:00.1234567", "2025-03-01T10:00:00.1234568"),  # beyond microseconds
        ("2025-02-28", "2025-03-01T00:00:00"),
        ("2025-03-01T12:00:00+02:00", "2025-03-01T10:30:00Z"),
    ],
)
def test_visma_timestamps_compare_as_times(earlier: str, later: str) -> None:
    assert timestamp_order(earlier) < timestamp_order(later)
