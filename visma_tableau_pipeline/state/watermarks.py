"""Delta watermarks: the largest `lastModifiedDateTime` stored, per company, entity and scope.

The scope is "" for the whole entity or a YYYYPP period for an entity read per period. A
watermark never moves backwards, and the caller advances it in the same transaction that stores
the records it covers, so a crash leaves neither (see docs/ARCHITECTURE.md, promise 1). The value is
kept as the text Visma sent, to be sent back in the next delta query, and compared as a
timestamp: Visma writes 'yyyy-MM-ddTHH:mm:ss.fff', with a space for the 'T' or without fraction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, select, update

from visma_tableau_pipeline.state.errors import WatermarkError
from visma_tableau_pipeline.state.schema import utc_now, watermarks
from visma_tableau_pipeline.state.upsert import insert_on_conflict

_FRACTION = re.compile(r"\.(\d+)")
_KEY = ("company_id", "entity", "scope")


def timestamp_order(value: str) -> tuple[datetime, int]:
    """A sortable form of a Visma timestamp: (time to the second, fraction in nanoseconds).

    The fraction is kept apart because Visma may send more digits than a datetime holds.
    A value with a UTC offset is compared in UTC; one without is taken as Visma wrote it.
    """
    fraction = _FRACTION.search(value)
    whole = value[: fraction.start()] + value[fraction.end() :] if fraction else value
    try:
        moment = datetime.fromisoformat(whole.strip())
    except ValueError:
        raise WatermarkError(
            f"watermark {value!r} is not a timestamp like 2025-03-01T12:30:00.123", value=value
        ) from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # at the edge of the calendar (9999-12-31 with an offset west)
            moment = moment.replace(tzinfo=None)
    nanos = int(fraction.group(1)[:9].ljust(9, "0")) if fraction else 0
    return moment, nanos


def get_watermark(conn: Connection, company_id: str, entity: str, scope: str = "") -> str | None:
    """The stored watermark, or None when the entity has never been read."""
    return conn.execute(
        select(watermarks.c.value).where(*_match(company_id, entity, scope))
    ).scalar_one_or_none()


def advance_watermark(
    conn: Connection, company_id: str, entity: str, value: str, run_id: str, scope: str = ""
) -> bool:
    """Move the watermark to `value` if that is later; returns whether it moved.

    The row is locked while compared (SELECT ... FOR UPDATE on PostgreSQL, the write lock on
    SQLite), so two runs advancing at once end at the later value, never the earlier.
    """
    new_order = timestamp_order(value)
    current = _locked_row(conn, company_id, entity, scope).value
    if current is not None and timestamp_order(current) >= new_order:
        return False
    conn.execute(
        update(watermarks)
        .where(*_match(company_id, entity, scope))
        .values(value=value, run_id=run_id, updated_at=utc_now())
    )
    return True


def record_full_sync(
    conn: Connection,
    company_id: str,
    entity: str,
    run_id: str,
    scope: str = "",
    at: datetime | None = None,
) -> None:
    """Note that a full read (with reconciliation) of this entity and scope completed."""
    _locked_row(conn, company_id, entity, scope)
    conn.execute(
        update(watermarks)
        .where(*_match(company_id, entity, scope))
        .values(last_full_sync_at=at or utc_now(), last_full_sync_run=run_id)
    )


def last_full_sync(
    conn: Connection, company_id: str, entity: str, scope: str = ""
) -> datetime | None:
    """When the last full read completed (UTC), or None if never."""
    return conn.execute(
        select(watermarks.c.last_full_sync_at).where(*_match(company_id, entity, scope))
    ).scalar_one_or_none()


def _match(company_id: str, entity: str, scope: str) -> tuple[ColumnElement[bool], ...]:
    return (
        watermarks.c.company_id == company_id,
        watermarks.c.entity == entity,
        watermarks.c.scope == scope,
    )


def _locked_row(conn: Connection, company_id: str, entity: str, scope: str) -> Row[Any]:
    """The watermark row, created empty if missing, locked until the transaction ends."""
    conn.execute(
        insert_on_conflict(conn, watermarks, key=_KEY),
        {"company_id": company_id, "entity": entity, "scope": scope},
    )
    return conn.execute(
        select(watermarks).where(*_match(company_id, entity, scope)).with_for_update()
    ).one()


def newest_watermark(conn: Connection, company_id: str, entity: str) -> str | None:
    """The latest watermark of an entity over all its scopes (the whole entity and each period)."""
    values = conn.execute(
        select(watermarks.c.value).where(
            watermarks.c.company_id == company_id,
            watermarks.c.entity == entity,
            watermarks.c.value.is_not(None),
        )
    ).scalars()
    return max(values, key=timestamp_order, default=None)
