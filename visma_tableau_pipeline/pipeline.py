"""The whole pipeline without Dagster, in one process: what `vtp sync` and `vtp demo` run.

Sync every company (the nightly schedule's windows), rebuild every dashboard table, write the
extracts, and publish them with the audit ledger.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from visma_tableau_pipeline.delivery.extracts import (
    ENTITLEMENTS,
    build_extract,
    publish_target,
    write_entitlements,
)
from visma_tableau_pipeline.delivery.publish import PublishTarget, publish_extract
from visma_tableau_pipeline.marts.entitlements import ENTITLEMENTS_KEY
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.settings import CompanySettings, Settings
from visma_tableau_pipeline.companies import resolved_companies
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.quarantine import HeldRecord, held_records
from visma_tableau_pipeline.tableau.datasources import ensure_project
from visma_tableau_pipeline.tableau.directory import read_directory
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession
from visma_tableau_pipeline.visma.plan import SyncReport, sync_all

log = logging.getLogger(__name__)

SHOWN_HELD = 10  # held-back records the summary lists; `vtp quarantine list` shows every one


@dataclass
class PipelineOutcome:
    """What one headless run did, for the CLI."""

    sync: SyncReport
    extracts: dict[str, int] = field(default_factory=dict)  # table -> rows written
    published: dict[str, str] = field(default_factory=dict)  # table -> what publishing did
    extracts_dir: Path | None = None
    held: list[HeldRecord] = field(default_factory=list)  # records held back from the tables now

    def summary(self) -> str:
        totals = self.sync.totals()
        lines = [
            f"run {self.sync.run_id}: {totals['records_read']} Visma records read "
            f"({totals['inserted']} new, {totals['updated']} changed, {totals['deleted']} deleted) "
            f"in {self.sync.api_calls} API calls",
            f"{len(self.extracts)} extracts in {self.extracts_dir}: "
            + ", ".join(f"{name} {rows}" for name, rows in self.extracts.items()),
        ]
        if self.published:
            lines.append("Tableau: " + ", ".join(f"{n} {what}" for n, what in self.published.items()))
        else:
            lines.append("Tableau: not configured, nothing published")
        if self.held:
            lines.append(f"{len(self.held)} records held back from the tables "
                         f"(all of them: vtp quarantine list):")
            lines.extend(f"  {item.describe()}" for item in self.held[:SHOWN_HELD])
        return "\n".join(lines)


def run_pipeline(
    settings: Settings,
    *,
    full: bool = False,
    as_of: date | None = None,
    companies: list[CompanySettings] | None = None,
) -> PipelineOutcome:
    """Sync every company, rebuild every dashboard table, write the extracts, publish them."""
    if settings.sandbox:
        log.info("VTP_SANDBOX: reading the bundled Visma sandbox, not a real company.")
    companies = companies or resolved_companies(settings)
    as_of = as_of or date.today()
    db = settings.open_state()
    # as the nightly schedules read: master data and open periods reconciled, closed ones as deltas
    outcome = PipelineOutcome(sync_all(settings, companies, db, full=full, today=as_of, open_periods_in_full=True),
                              extracts_dir=settings.extracts_dir)
    company_ids = [c.company_id for c in companies]
    extracts = {}
    run_id = outcome.sync.run_id
    for table in MART_TABLES:
        extract = build_extract(db, company_ids, table, as_of, settings.extracts_dir, run_id, full=full)
        extracts[table.name] = extract.path
        outcome.extracts[table.name] = extract.rows
    with db.connect() as conn:
        outcome.held = held_records(conn, company_ids)
    if settings.tableau is None:
        entitlements, _ = write_entitlements(settings.entitlements_path, None, settings.extracts_dir)
        outcome.extracts[ENTITLEMENTS] = len(entitlements)
        log.info("No Tableau settings: extracts written to %s, nothing published.", settings.extracts_dir)
        return outcome
    retry = RetryPolicy.from_settings(settings.retries)
    with TableauSession(settings.tableau, retry=retry) as session, \
            tempfile.TemporaryDirectory() as workdir:
        project_id = ensure_project(session, settings.tableau.project)
        users, _ = read_directory(session)  # entitlements may name a user by email
        entitlements, extracts[ENTITLEMENTS] = write_entitlements(
            settings.entitlements_path, users, settings.extracts_dir
        )
        outcome.extracts[ENTITLEMENTS] = len(entitlements)
        targets = [publish_target(db, company_ids, table, as_of) for table in MART_TABLES]
        for target in [*targets, PublishTarget(ENTITLEMENTS, ENTITLEMENTS_KEY)]:
            delivered = publish_extract(session, db, project_id, target, extracts[target.name],
                                        Path(workdir), run_id=run_id, full=full)
            outcome.published[target.name] = (
                f"{delivered.mode} (+{delivered.rows_upserted}/-{delivered.rows_deleted}, "
                f"{delivered.bytes_sent} bytes)"
            )
    return outcome
