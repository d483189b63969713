"""The audit ledger: one row per record version delivered to a Tableau data source.

It answers "when did supplier invoice X reach Tableau, and in which version?" (docs/ARCHITECTURE.md,
promise 5), and tells the publisher what each data source last received, so an incremental
publish sends only what changed. Recording the same delivery twice (a retried commit) adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, NamedTuple, get_args

from sqlalchemy import Column, Connection, Select, func, select

from visma_tableau_pipeline.state.batches import batched
from visma_tableau_pipeline.state.errors import LedgerError
from visma_tableau_pipeline.state.keys import key_parts, key_string
from visma_tableau_pipeline.state.schema import ledger
from visma_tableau_pipeline.state.upsert import upsert_many

Action = Literal["insert", "update", "delete", "resend"]  # resend: the same version sent again whole
_UNIQUE = ("run_id", "data_source", "company_id", "entity", "record_key", "content_hash", "action")
_ORDER = (ledger.c.delivered_at, ledger.c.id)


@dataclass(frozen=True)
class Delivery:
    """One record version delivered to one Tableau data source by one run."""

    company_id: str
    entity: str
    record_key: str
    content_hash: str
    data_source: str
    action: Action
    run_id: str
    delivered_at: datetime
    content: str | None = None  # the row as delivered (JSON), so versions can be compared


class DeliveredKey(NamedTuple):
    """Identifies a record within a data source, which holds every company's records."""

    company_id: str
    entity: str
    record_key: str


def record_deliveries(conn: Connection, deliveries: Iterable[Delivery]) -> None:
    """Add deliveries to the ledger; ones already recorded for the same run are skipped."""
    for chunk in batched(deliveries):
        for delivery in chunk:
            if delivery.action not in get_args(Action):
                raise LedgerError(
                    f"unknown delivery action {delivery.action!r}; expected {get_args(Action)}",
                    run_id=delivery.run_id, data_source=delivery.data_source,
                    record_key=delivery.record_key,
                )
        upsert_many(conn, ledger, _UNIQUE, (), [vars(delivery).copy() for delivery in chunk])


def history(
    conn: Connection, company_id: str | None, key: Sequence[str], data_source: str | None = None
) -> list[Delivery]:
    """Every delivery of the rows of one record, oldest first; None for company or data source
    means any.

    `key` is the record's key as a user sees it in Tableau, e.g. document type and number. A
    row's key holds more than that (the company, an aging row's snapshot day, a line number), so
    every row whose key holds these values one after the other is the record's: the invoice, each
    of its lines, its rows in every aging snapshot.
    """
    wanted = tuple(key)
    stmt = select(*_delivery_columns()).where(ledger.c.record_key.contains(key_string(wanted), autoescape=True))
    if company_id is not None:
        stmt = stmt.where(ledger.c.company_id == company_id)
    if data_source is not None:
        stmt = stmt.where(ledger.c.data_source == data_source)
    return [delivery for delivery in _deliveries(conn, stmt.order_by(*_ORDER))
            if _holds_in_order(key_parts(delivery.record_key), wanted)]


def _holds_in_order(parts: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    """Whether `wanted` is a run of consecutive parts of a row key."""
    return any(parts[start:start + len(wanted)] == wanted for start in range(len(parts) - len(wanted) + 1))


def deliveries_for_run(conn: Connection, run_id: str) -> list[Delivery]:
    """What one run delivered, in the order it was recorded."""
    stmt = select(*_delivery_columns()).where(ledger.c.run_id == run_id).order_by(*_ORDER)
    return _deliveries(conn, stmt)


def run_summary(conn: Connection, run_id: str) -> dict[str, dict[str, int]]:
    """data_source -> action -> number of record versions one run delivered."""
    stmt = (
        select(ledger.c.data_source, ledger.c.action, func.count())
        .where(ledger.c.run_id == run_id)
        .group_by(ledger.c.data_source, ledger.c.action)
    )
    summary: dict[str, dict[str, int]] = {}
    for data_source, action, delivered in conn.execute(stmt):
        summary.setdefault(data_source, {})[action] = int(delivered)
    return summary


def last_delivered(
    conn: Connection, data_source: str, company_id: str | None = None
) -> dict[DeliveredKey, str]:
    """The content hash each record last reached `data_source` with.

    Records whose last delivery was a delete are left out: they are no longer in Tableau.
    """
    latest = select(
        ledger.c.company_id,
        ledger.c.entity,
        ledger.c.record_key,
        ledger.c.content_hash,
        ledger.c.action,
        func.row_number()
        .over(
            partition_by=(ledger.c.company_id, ledger.c.entity, ledger.c.record_key),
            order_by=(ledger.c.delivered_at.desc(), ledger.c.id.desc()),
        )
        .label("recency"),
    ).where(ledger.c.data_source == data_source)
    if company_id is not None:
        latest = latest.where(ledger.c.company_id == company_id)
    latest_sub = latest.subquery()
    stmt = select(
        latest_sub.c.company_id,
        latest_sub.c.entity,
        latest_sub.c.record_key,
        latest_sub.c.content_hash,
    ).where(latest_sub.c.recency == 1, latest_sub.c.action != "delete")
    return {
        DeliveredKey(company, entity, key): digest
        for company, entity, key, digest in conn.execute(stmt)
    }


def _delivery_columns() -> list[Column[Any]]:
    return [ledger.c[field.name] for field in fields(Delivery)]


def _deliveries(conn: Connection, stmt: Select[Any]) -> list[Delivery]:
    return [Delivery(**row) for row in conn.execute(stmt).mappings()]
