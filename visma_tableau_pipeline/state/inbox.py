"""The webhook inbox: notifications stored as received, deduplicated, until a sensor acts.

Webhooks are hints (docs/ARCHITECTURE.md, promise 3): the receiver stores each one and answers at
once; a sensor later turns pending notifications into runs that re-read the records from Visma.
Senders deliver duplicates, so a notification id already stored is ignored; the receiver decides
what the id is (a digest of the body, see `webhook_receiver`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Connection, select, update

from visma_tableau_pipeline.state.batches import batched
from visma_tableau_pipeline.state.errors import InboxError
from visma_tableau_pipeline.state.schema import inbox, utc_now
from visma_tableau_pipeline.state.upsert import insert_on_conflict

Source = Literal["visma", "tableau"]


@dataclass(frozen=True)
class Notification:
    """One stored webhook notification."""

    id: int
    source: Source
    notification_id: str
    company_id: str | None
    entity: str | None
    record_key: str | None
    raw_body: str
    received_at: datetime
    processed_at: datetime | None
    run_key: str | None


def add_notification(
    conn: Connection,
    source: Source,
    notification_id: str,
    company_id: str | None,
    entity: str | None,
    record_key: str | None,
    raw_body: str,
    received_at: datetime,
) -> bool:
    """Store a notification; False when one with this id from this source is already stored."""
    if source not in get_args(Source):
        raise InboxError(
            f"unknown notification source {source!r}; expected one of {get_args(Source)}",
            source=source, notification_id=notification_id,
        )
    if not notification_id:
        raise InboxError("a notification needs an id to be deduplicated", source=source)
    result = conn.execute(
        insert_on_conflict(conn, inbox, key=("source", "notification_id")),
        {
            "source": source, "notification_id": notification_id, "company_id": company_id,
            "entity": entity, "record_key": record_key, "raw_body": raw_body,
            "received_at": received_at,
        },
    )
    return result.rowcount == 1


def pending(conn: Connection, limit: int = 100, source: Source | None = None) -> list[Notification]:
    """Unprocessed notifications, oldest first."""
    stmt = select(inbox).where(inbox.c.processed_at.is_(None))
    if source is not None:
        stmt = stmt.where(inbox.c.source == source)
    stmt = stmt.order_by(inbox.c.received_at, inbox.c.id).limit(limit)
    return [Notification(**row) for row in conn.execute(stmt).mappings()]


def latest(conn: Connection, source: Source, record_key: str, entities: Iterable[str]) -> Notification | None:
    """The last notification received about a record among the named events (processed or not)."""
    stmt = (
        select(inbox)
        .where(inbox.c.source == source, inbox.c.record_key == record_key, inbox.c.entity.in_(list(entities)))
        .order_by(inbox.c.received_at.desc(), inbox.c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).mappings().one_or_none()
    return Notification(**row) if row else None


def mark_processed(
    conn: Connection, ids: Iterable[int], run_key: str, at: datetime | None = None
) -> int:
    """Mark notifications handled by the run with `run_key`; returns how many were pending."""
    values = {"processed_at": at or utc_now(), "run_key": run_key}
    marked = 0
    for chunk in batched(ids):
        marked += conn.execute(
            update(inbox)
            .where(inbox.c.id.in_(chunk))
            .where(inbox.c.processed_at.is_(None))
            .values(**values)
        ).rowcount
    return marked
