"""Which windows a sync reads, and reading them for every company.

`vtp sync` and the nightly schedules take their windows from `plan_windows`, so a headless sync
and a nightly run read exactly the same (company, entity, period) windows. Both read an entity's
windows through `sync_entity` (the Dagster entity assets for their partitions, `sync_company` for
the plan), so the choice between a delta and a reconciling read is made in one place.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import groupby

from visma_tableau_pipeline.settings import CompanySettings, Settings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.record_store import iter_records
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Entity
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.client import PageProgress, VismaClient
from visma_tableau_pipeline.visma.periods import FinancialPeriod, open_period_ids, parse_periods
from visma_tableau_pipeline.visma.retrying import RetryPolicy
from visma_tableau_pipeline.visma.shared_pacing import company_pacer
from visma_tableau_pipeline.visma.sync import WindowResult, sync_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    company_id: str
    entity: Entity
    period: str | None  # YYYYPP for period entities, None for master data


@dataclass
class SyncReport:
    run_id: str
    windows: list[WindowResult] = field(default_factory=list)
    api_calls: int = 0
    retries: int = 0
    extra_passes: int = 0  # lists read again because rows moved while paging

    def totals(self) -> dict[str, int]:
        return _totals(self.windows)

    def totals_by_company(self) -> dict[str, dict[str, int]]:
        """`totals` per company, in the order the companies were read."""
        companies = dict.fromkeys(w.company_id for w in self.windows)
        return {c: _totals([w for w in self.windows if w.company_id == c]) for c in companies}


def _totals(windows: list[WindowResult]) -> dict[str, int]:
    return {
        name: sum(getattr(w, name) for w in windows)
        for name in ("records_read", "inserted", "updated", "deleted")
    }


def periods_in_window(periods: list[FinancialPeriod], first: date, last: date) -> list[str]:
    """The financial periods that overlap [first, last]."""
    return [p.period_id for p in periods if p.end >= first and p.start <= last]


def stored_periods(db: StateDB, company_id: str) -> list[FinancialPeriod]:
    """The company's financial periods as last read from Visma (empty before the first read)."""
    with db.connect() as conn:
        return parse_periods(iter_records(conn, company_id, "financial_periods"))


def stored_open_periods(db: StateDB, company_id: str) -> set[str]:
    """The company's periods that some ledger has not closed, as last read from Visma."""
    with db.connect() as conn:
        return open_period_ids(iter_records(conn, company_id, "financial_periods"))


def read_in_full(period: str | None, *, full: bool, open_periods_in_full: bool, open_periods: set[str]) -> bool:
    """Whether a window is read in full (reconciled, finding deleted records) or as a delta.

    `open_periods_in_full` is the nightly read: master data (no period) and the periods Visma has
    not closed are reconciled, because records are deleted there; closed periods are read as
    deltas and reconciled by the weekly full read.
    """
    return full or (open_periods_in_full and (period is None or period in open_periods))


def sync_entity(
    client: VismaClient,
    db: StateDB,
    entity: Entity,
    company_id: str,
    periods: Sequence[str | None],
    *,
    run_id: str,
    full: bool,
    open_periods: set[str] | None = None,
    on_page: Callable[[str | None, PageProgress], None] | None = None,
) -> list[WindowResult]:
    """Read `entity`'s windows of one company (YYYYPP periods; None for master data), each in
    full or as a delta as `read_in_full` says; `on_page(period, progress)` hears of long reads.

    `open_periods` (the company's `stored_open_periods`, read once by the caller for all its
    entities) asks for the nightly read; None reads as `full` says.
    """
    return [
        sync_window(
            client, db, entity, company_id=company_id, run_id=run_id, period=period,
            full=read_in_full(period, full=full, open_periods_in_full=open_periods is not None,
                              open_periods=open_periods or set()),
            on_page=None if on_page is None else partial(on_page, period),
        )
        for period in periods
    ]


def paced_client(company: CompanySettings, db: StateDB, retry_policy: RetryPolicy) -> VismaClient:
    """A client of `company` that paces to its Visma budget through the state database, with every
    process that reads the same company and client through `db` (`visma/shared_pacing.py`)."""
    return VismaClient(company, retry_policy=retry_policy, pacer=company_pacer(company, db))


def plan_windows(
    company_id: str, periods: list[FinancialPeriod], first_month: date, today: date
) -> Iterator[Window]:
    """Master data first (invoices refer to it), then every period entity for every period."""
    period_ids = periods_in_window(periods, first_month, today)
    for entity in ENTITIES:
        if entity.name == "financial_periods":
            continue  # read before planning
        if entity.by_period:
            for period_id in period_ids:
                yield Window(company_id, entity, period_id)
        else:
            yield Window(company_id, entity, None)


def sync_company(
    company: CompanySettings,
    db: StateDB,
    *,
    first_month: date,
    today: date,
    full: bool,
    run_id: str,
    report: SyncReport,
    client_factory: Callable[[CompanySettings], VismaClient] = VismaClient,
    open_periods_in_full: bool = False,
) -> None:
    """Every window of one company: financial periods first, then the plan (in full or as
    deltas as `read_in_full` says)."""
    periods_entity = catalogue_entity("financial_periods")
    with client_factory(company) as client:
        report.windows.append(
            sync_window(client, db, periods_entity, company_id=company.company_id, run_id=run_id, full=True)
        )
        periods = stored_periods(db, company.company_id)
        open_periods = stored_open_periods(db, company.company_id) if open_periods_in_full else None
        windows = plan_windows(company.company_id, periods, first_month, today)
        for entity, entity_windows in groupby(windows, key=lambda window: window.entity):
            report.windows.extend(sync_entity(
                client, db, entity, company.company_id, [window.period for window in entity_windows],
                run_id=run_id, full=full, open_periods=open_periods,
            ))
        report.api_calls += int(client.stats.api_calls)
        report.retries += int(client.stats.retries)
        report.extra_passes += int(client.stats.extra_passes)


def sync_all(
    settings: Settings,
    companies: list[CompanySettings],
    db: StateDB,
    *,
    full: bool = False,
    today: date | None = None,
    run_id: str | None = None,
    client_factory: Callable[[CompanySettings], VismaClient] | None = None,
    open_periods_in_full: bool = False,
) -> SyncReport:
    """Read every company's windows into the state store (clients retry as the settings say, and
    pace to each company's budget through `db`, shared with every other process reading it);
    `open_periods_in_full` reads as the nightly schedule does (see `read_in_full`)."""
    report = SyncReport(run_id=run_id or f"vtp-sync-{uuid.uuid4().hex[:12]}")
    client_factory = client_factory or partial(
        paced_client, db=db, retry_policy=RetryPolicy.from_settings(settings.retries)
    )
    for company in companies:
        sync_company(
            company, db,
            first_month=settings.first_month, today=today or date.today(),
            full=full, run_id=report.run_id, report=report, client_factory=client_factory,
            open_periods_in_full=open_periods_in_full,
        )
    log.info("sync %s done: %s, %d API calls", report.run_id, report.totals(), report.api_calls)
    return report
