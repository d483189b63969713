"""Visma's rate budget per company and client, kept where every process reading that company sees it.

One row per (API URL, company tenant, client id): the budget as last reported and the schedule of
what is left of the window (see `visma/shared_pacing.py`, which decides what the values mean). A
process reads and changes it in one short write transaction with the row locked (SELECT ... FOR
UPDATE on PostgreSQL, the write lock on SQLite), so two processes never spend the same slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, select, update

from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.schema import rate_budgets, utc_now
from visma_tableau_pipeline.state.upsert import insert_on_conflict

_KEY = ("api_url", "tenant_id", "client_id")


@dataclass(frozen=True)
class BudgetKey:
    """Whose budget: Visma counts requests per company (its tenant) and client."""

    api_url: str
    tenant_id: str
    client_id: str


@dataclass
class StoredBudget:
    """A row of `vtp_rate_budgets`; times are UTC."""

    request_limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None
    next_slot: datetime | None = None
    hold_until: datetime | None = None
    unreported: int = 0


@contextmanager
def budget_for_update(db: StateDB, key: BudgetKey) -> Iterator[StoredBudget]:
    """The stored budget of `key`, locked until the block ends; what the block leaves in it is
    written back in the same transaction (nothing, if the block raises)."""
    with db.transaction() as conn:
        stored = _locked(conn, key)
        before = replace(stored)
        yield stored
        if stored != before:
            conn.execute(update(rate_budgets).where(*_match(key)).values(**asdict(stored), updated_at=utc_now()))


def _locked(conn: Connection, key: BudgetKey) -> StoredBudget:
    """The row, created empty the first time; one statement when it exists (every time but the first)."""
    columns = [rate_budgets.c[name] for name in StoredBudget.__dataclass_fields__]
    query = select(*columns).where(*_match(key)).with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        conn.execute(insert_on_conflict(conn, rate_budgets, key=_KEY), {**asdict(key), "updated_at": utc_now()})
        row = conn.execute(query).one()
    return StoredBudget(**row._asdict())


def _match(key: BudgetKey) -> tuple[ColumnElement[bool], ...]:
    return tuple(rate_budgets.c[name] == value for name, value in asdict(key).items())
