"""Which stored records changed since a moment: the start of an incremental delivery.

Every write to a record (new content, a deletion found by reconciliation) sets its `updated_at`,
so "changed since T" is one indexed range query, whatever the size of the store. Moments are
the store's own clock, never Visma's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from visma_tableau_pipeline.state.batches import batched
from visma_tableau_pipeline.state.payloads import load_payload
from visma_tableau_pipeline.state.quarantine import not_held
from visma_tableau_pipeline.state.schema import records, utc_now


def settled_moment(dialect: str) -> datetime:
    """A moment before which every write to the store is committed, and visible to a read now.

    Records are stamped when their transaction writes them and become visible when it commits.
    SQLite runs one writer at a time (BEGIN IMMEDIATE), so a stamp is at most a commit's length
    old when it shows: a second is plenty, and allows for the clock being set back a little.
    PostgreSQL runs transactions side by side; one page's transaction commits within seconds,
    and two minutes cover that, and clocks of several hosts that differ a little, many times
    over. A reader that keeps this moment and next asks for what changed since it misses
    nothing; what it sees again and has not changed is compared and not sent.
    """
    margin = timedelta(seconds=1) if dialect == "sqlite" else timedelta(minutes=2)
    return utc_now() - margin


@dataclass(frozen=True)
class ChangedRecord:
    """A record written (changed, new, or marked deleted) since the moment asked about."""

    company_id: str
    entity: str
    record_key: str


def changed_since(
    conn: Connection, company_ids: Collection[str], entities: Collection[str], since: datetime
) -> Iterator[ChangedRecord]:
    """Records of these companies and entities written at or after `since`, deleted ones too."""
    stmt = select(records.c.company_id, records.c.entity, records.c.record_key).where(
        records.c.entity.in_(list(entities)), records.c.updated_at >= since,
        records.c.company_id.in_(list(company_ids)),
    )
    for company_id, entity, key in conn.execute(stmt):
        yield ChangedRecord(company_id, entity, key)


def live_records(
    conn: Connection, company_id: str, entity: str, record_keys: Collection[str]
) -> Iterator[dict[str, Any]]:
    """The stored payloads of these records that are neither deleted nor held back."""
    for chunk in batched(sorted(record_keys)):
        stmt = select(records.c.payload).where(
            records.c.company_id == company_id, records.c.entity == entity,
            records.c.record_key.in_(chunk), records.c.deleted_at.is_(None), not_held(),
        )
        for (text,) in conn.execute(stmt):
            yield load_payload(text)


def any_changed_since(
    conn: Connection, company_ids: Collection[str], entities: Collection[str], since: datetime
) -> bool:
    """Whether any of these records was written at or after `since`."""
    if not entities:
        return False
    stmt = select(records.c.record_key).where(
        records.c.entity.in_(list(entities)), records.c.updated_at >= since,
        records.c.company_id.in_(list(company_ids)),
    )
    return conn.execute(stmt.limit(1)).first() is not None
