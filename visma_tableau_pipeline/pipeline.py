"""The whole pipeline without Dagster, in one process: what `vtp sync` and `vtp demo` run.

Sync every company (the nightly schedule's windows), rebuild every dashboard table, write the
extracts, and publish them with the audit ledger.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from visma_tableau_pipeline.companies import resolved_companies
from visma_tableau_pipeline.delivery.deliver import DeliveryOutcome
from visma_tableau_pipeline.delivery.extract_store import ExtractStore, extract_store
from visma_tableau_pipeline.delivery.extracts import (
    ENTITLEMENTS,
    build_extract,
    publish_target,
    write_entitlements,
)
from visma_tableau_pipeline.delivery.publish import PublishTarget, publish_extract
from visma_tableau_pipeline.marts.entitlements import ENTITLEMENTS_KEY
from visma_tableau_pipeline.marts.hyper import hyper_path
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.settings import CompanySettings, ConfigError, Settings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.quarantine import HeldRecord, held_records
from visma_tableau_pipeline.tableau.datasources import ensure_project
from visma_tableau_pipeline.tableau.directory import read_directory
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession
from visma_tableau_pipeline.visma.plan import SyncReport, sync_all

log = logging.getLogger(__name__)

SHOWN_HELD = 10  # held-back records the summary lists; `vtp quarantine list` shows every one


@dataclass
class Timings:
    """Where a run's time went: per stage (Visma, tables, Tableau) and per table, for the summary."""

    seconds: dict[str, float] = field(default_factory=dict)
    table_seconds: dict[str, float] = field(default_factory=dict)  # build and publish time

    @contextmanager
    def timed(self, stage: str, table: str) -> Iterator[None]:
        """Add the wall time of the block to its stage and its table."""
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.table_seconds[table] = self.table_seconds.get(table, 0.0) + seconds

    def summary(self) -> str:
        """`Time: Visma 2.6 s, tables 1.6 s, Tableau 0.2 s (slowest tables: ...)`."""
        slowest = sorted(self.table_seconds.items(), key=lambda item: -item[1])[:3]
        return ("Time: " + ", ".join(f"{stage} {s:.1f} s" for stage, s in self.seconds.items())
                + (" (slowest tables: " + ", ".join(f"{name} {s:.1f} s" for name, s in slowest) + ")"
                   if slowest else ""))


@dataclass
class PipelineOutcome:
    """What one headless run did, for the CLI."""

    sync: SyncReport
    full: bool = False  # every window re-read (`--full`), not the nightly windows
    extracts: dict[str, int] = field(default_factory=dict)  # table -> rows written
    deliveries: dict[str, DeliveryOutcome] = field(default_factory=dict)  # data source -> what was sent
    tableau: str | None = None  # where the data sources were published, for the summary
    extracts_dir: Path | None = None
    held: list[HeldRecord] = field(default_factory=list)  # records held back from the tables now
    timings: Timings = field(default_factory=lambda: Timings())

    @property
    def published(self) -> dict[str, str]:
        """Data source -> what publishing did, e.g. `incremental (+2/-0, 4096 bytes)`."""
        return {name: f"{d.mode} (+{d.rows_upserted}/-{d.rows_deleted}, {d.bytes_sent} bytes)"
                for name, d in self.deliveries.items()}

    def summary(self) -> str:
        """The run in the words a person reads after `vtp sync`: what kind of run, what changed
        in Visma per company, what went to Tableau, what was held back, where the extracts are."""
        totals = self.sync.totals()
        lines = [
            f"run {self.sync.run_id}: "
            + ("full: every window re-read, records deleted in Visma found" if self.full else
               "incremental: master data and the periods Visma has not closed re-read in full, "
               "closed periods as deltas"),
            f"{totals['records_read']} Visma records read ({totals['inserted']} new, "
            f"{totals['updated']} changed, {totals['deleted']} deleted) in {self.sync.api_calls} API calls",
        ]
        for company_id, counts in self.sync.totals_by_company().items():
            lines.append(f"  {company_id}: {counts['records_read']} read, {counts['inserted']} new, "
                         f"{counts['updated']} changed, {counts['deleted']} deleted")
        lines.extend(self._tableau_lines())
        if self.held:
            lines.append(f"{len(self.held)} records held back from the tables "
                         f"(all of them: vtp quarantine list):")
            lines.extend(f"  {item.describe()}" for item in self.held[:SHOWN_HELD])
        else:
            lines.append("Records held back: none")
        lines.append(f"Extracts: {len(self.extracts)} in {self.extracts_dir} (rows: "
                     + ", ".join(f"{name} {rows}" for name, rows in self.extracts.items()) + ")")
        if self.timings.seconds:
            lines.append(self.timings.summary())
        return "\n".join(lines)

    def _tableau_lines(self) -> list[str]:
        if self.tableau is None:
            return ["Tableau: not configured (TABLEAU_SERVER_URL), nothing published"]
        sent = {name: what for name, what in self.published.items() if self.deliveries[name].mode != "unchanged"}
        unchanged = [name for name in self.deliveries if name not in sent]
        lines = [f"Tableau ({self.tableau}): " + (f"sent to {len(sent)} data sources" if sent
                                                  else "nothing needed to be sent")]
        lines.extend(f"  {name} {what}" for name, what in sent.items())
        if sent and unchanged:
            lines.append(f"  unchanged, nothing sent: {', '.join(unchanged)}")
        return lines


def run_pipeline(
    settings: Settings,
    *,
    full: bool = False,
    as_of: date | None = None,
    companies: list[CompanySettings] | None = None,
) -> PipelineOutcome:
    """Sync every company, rebuild every dashboard table, write the extracts, publish them.

    With VTP_EXTRACTS_URL each extract is updated from its shared copy and shared again, as the
    Dagster assets do, so that `vtp sync` and runs on other machines take turns on one set.
    """
    if settings.sandbox:
        log.info("VTP_SANDBOX: reading the bundled Visma sandbox, not a real company.")
    companies = companies or resolved_companies(settings)
    as_of = as_of or date.today()
    db = settings.open_state()
    started = time.perf_counter()
    store = extract_store(settings)
    # as the nightly schedules read: master data and open periods reconciled, closed ones as deltas
    outcome = PipelineOutcome(sync_all(settings, companies, db, full=full, today=as_of, open_periods_in_full=True),
                              full=full, extracts_dir=settings.extracts_dir)
    outcome.timings.seconds["Visma"] = time.perf_counter() - started
    company_ids = [c.company_id for c in companies]
    run_id = outcome.sync.run_id
    outcome.extracts = build_extracts(db, company_ids, as_of, settings.extracts_dir, run_id, full=full, store=store,
                                      timings=outcome.timings)
    with db.connect() as conn:
        outcome.held = held_records(conn, company_ids)
    if settings.tableau is None:
        entitlements, _ = write_entitlements(settings.entitlements_path, None, settings.extracts_dir)
        outcome.extracts[ENTITLEMENTS] = len(entitlements)
        log.info("No Tableau settings: extracts written to %s, nothing published.", settings.extracts_dir)
        return outcome
    tableau = settings.tableau
    outcome.tableau = f"{tableau.server_url}, site {tableau.site or 'Default'}, project {tableau.project}"
    outcome.deliveries, outcome.extracts[ENTITLEMENTS] = publish_extracts(
        settings, db, company_ids, as_of, run_id, full=full, store=store, timings=outcome.timings)
    return outcome


def build_extracts(
    db: StateDB, company_ids: list[str], as_of: date, extracts_dir: Path, run_id: str, *,
    full: bool = False, store: ExtractStore | None = None, timings: Timings | None = None,
) -> dict[str, int]:
    """Every dashboard table's extract brought up to the state store (and shared, with a
    `store`): the rows each holds."""
    timings = timings or Timings()
    rows = {}
    for table in MART_TABLES:
        with timings.timed("tables", table.name):
            rows[table.name] = build_extract(db, company_ids, table, as_of, extracts_dir, run_id, full=full,
                                             store=store).rows
    return rows


def publish_extracts(
    settings: Settings, db: StateDB, company_ids: list[str], as_of: date, run_id: str, *,
    full: bool = False, store: ExtractStore | None = None, timings: Timings | None = None,
) -> tuple[dict[str, DeliveryOutcome], int]:
    """Every data source brought up to its extract (the shared copy, with a `store`), the
    entitlements table among them, written from Tableau's users: what each delivery did, and
    the entitlements' rows."""
    if settings.tableau is None:
        raise ConfigError("publishing needs Tableau settings: set TABLEAU_SERVER_URL (or tableau: in VTP_CONFIG)")
    timings = timings or Timings()
    retry = RetryPolicy.from_settings(settings.retries)
    with TableauSession(settings.tableau, retry=retry) as session, \
            tempfile.TemporaryDirectory() as workdir:
        project_id = ensure_project(session, settings.tableau.project)
        users, _ = read_directory(session)  # entitlements may name a user by email
        entitlements, written = write_entitlements(settings.entitlements_path, users, settings.extracts_dir)
        if store is not None:
            store.push(ENTITLEMENTS, written, run_id=run_id)
        targets = [publish_target(db, company_ids, table, as_of) for table in MART_TABLES]
        deliveries = {}
        for target in [*targets, PublishTarget(ENTITLEMENTS, ENTITLEMENTS_KEY)]:
            with timings.timed("Tableau", target.name):
                deliveries[target.name] = publish_extract(
                    session, db, project_id, target, hyper_path(settings.extracts_dir, target.name), Path(workdir),
                    run_id=run_id, full=full, store=store)
    return deliveries, len(entitlements)
