"""The pipeline without Dagster: the work `vtp sync` does and the nightly schedule launches.

Both take their windows from `plan_windows`, so a headless sync and a nightly run read exactly
the same (company, entity, period) windows through the same `sync_window`.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from visma_tableau_pipeline.marts.hyper import frame_from_hyper, hyper_path, write_hyper
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable, build_with
from visma_tableau_pipeline.settings import CompanySettings, Settings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.ledger import Delivery, last_delivered, record_deliveries
from visma_tableau_pipeline.state.publications import Publication, get_publication, save_publication
from visma_tableau_pipeline.tableau.changes import (
    row_keys,
    row_keys_and_hashes,
    schema_fingerprint,
    split_key,
)
from visma_tableau_pipeline.tableau.delivery import DeliveryOutcome, deliver_table, replace_partition
from visma_tableau_pipeline.tableau.publish import ensure_project
from visma_tableau_pipeline.tableau.session import TableauSession
from visma_tableau_pipeline.state.records import iter_records
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Entity, entity as catalogue_entity
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.periods import FinancialPeriod, parse_periods
from visma_tableau_pipeline.visma.sync import WindowResult, sync_window

log = logging.getLogger(__name__)

SNAPSHOT_COLUMN = "snapshot_date"


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
        return {
            name: sum(getattr(w, name) for w in self.windows)
            for name in ("records_read", "inserted", "updated", "deleted")
        }


def months_between(first: date, last: date) -> list[date]:
    """First days of every calendar month from `first` to `last`, inclusive."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return months


def periods_in_window(periods: list[FinancialPeriod], first: date, last: date) -> list[str]:
    """The financial periods that overlap [first, last]."""
    return [p.period_id for p in periods if p.end >= first and p.start <= last]


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
) -> None:
    """Every window of one company: financial periods first, then the plan."""
    periods_entity = catalogue_entity("financial_periods")
    with client_factory(company) as client:
        report.windows.append(
            sync_window(client, db, periods_entity, company_id=company.company_id, run_id=run_id, full=True)
        )
        with db.connect() as conn:
            periods = parse_periods(iter_records(conn, company.company_id, periods_entity.name))
        for window in plan_windows(company.company_id, periods, first_month, today):
            report.windows.append(
                sync_window(
                    client, db, window.entity,
                    company_id=company.company_id, run_id=run_id, period=window.period, full=full,
                )
            )
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
    client_factory: Callable[[CompanySettings], VismaClient] = VismaClient,
) -> SyncReport:
    """Read every company's windows into the state store."""
    report = SyncReport(run_id=run_id or f"vtp-sync-{uuid.uuid4().hex[:12]}")
    for company in companies:
        sync_company(
            company, db,
            first_month=settings.first_month, today=today or date.today(),
            full=full, run_id=report.run_id, report=report, client_factory=client_factory,
        )
    log.info("sync %s done: %s, %d API calls", report.run_id, report.totals(), report.api_calls)
    return report


def load_records(db: StateDB, company_ids: list[str], entity_names: Iterable[str]) -> dict[str, list[dict]]:
    """Every live stored record of the given entities, each tagged with its `company_id`."""
    records: dict[str, list[dict]] = {}
    with db.connect() as conn:
        for name in entity_names:
            records[name] = [
                {**record, "company_id": company_id}
                for company_id in company_ids
                for record in iter_records(conn, company_id, name)
            ]
    return records


def build_table(db: StateDB, company_ids: list[str], table: MartTable, as_of: date) -> pd.DataFrame:
    """One dashboard table, all companies, from the state store."""
    return build_with(table, MartInputs(load_records(db, company_ids, table.sources), as_of))


def write_extract(frame: pd.DataFrame, extracts_dir: Path, table: MartTable, as_of: date) -> Path:
    """Write the table's extract; daily snapshot tables keep earlier days' snapshots."""
    if table.partition_column == SNAPSHOT_COLUMN:
        previous = hyper_path(extracts_dir, table.name)
        if previous.exists():
            frame = keep_other_snapshots(frame_from_hyper(previous), frame, as_of)
    return write_hyper(frame, extracts_dir, table.name)


def snapshot_column_of(table: MartTable) -> str | None:
    """The snapshot-day column of a daily snapshot table (aging), else None."""
    return SNAPSHOT_COLUMN if table.partition_column == SNAPSHOT_COLUMN else None


def keep_other_snapshots(previous: pd.DataFrame, today: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Earlier days' snapshots from the previous extract, plus today's (rebuilt, not doubled)."""
    schema = pa.Table.from_pandas(today, preserve_index=False).schema
    earlier = previous[pd.to_datetime(previous[SNAPSHOT_COLUMN]).dt.date != as_of]
    earlier_table = pa.Table.from_pandas(earlier[list(today.columns)], preserve_index=False)
    combined = pa.concat_tables([earlier_table.cast(schema), pa.Table.from_pandas(today, preserve_index=False)])
    return combined.to_pandas(types_mapper=pd.ArrowDtype)


@dataclass
class PipelineOutcome:
    """What one headless run did, for the CLI."""

    sync: SyncReport
    extracts: dict[str, int] = field(default_factory=dict)  # table -> rows written
    published: dict[str, str] = field(default_factory=dict)  # table -> what publishing did
    extracts_dir: Path | None = None

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
        return "\n".join(lines)


def run_pipeline(
    settings: Settings,
    *,
    full: bool = False,
    as_of: date | None = None,
    companies: list[CompanySettings] | None = None,
) -> PipelineOutcome:
    """Sync every company, rebuild every dashboard table, write the extracts, publish them."""
    from visma_tableau_pipeline.defs.resources import resolved_companies

    if settings.sandbox:
        log.info("No Visma credentials set: reading the bundled Visma sandbox.")
    companies = companies or resolved_companies(settings)
    as_of = as_of or date.today()
    db = StateDB(settings.state_url)
    db.create_all()
    outcome = PipelineOutcome(sync_all(settings, companies, db, full=full, today=as_of),
                              extracts_dir=settings.extracts_dir)
    company_ids = [c.company_id for c in companies]
    extracts = {}
    for table in MART_TABLES:
        frame = build_table(db, company_ids, table, as_of)
        extracts[table.name] = write_extract(frame, settings.extracts_dir, table, as_of)
        outcome.extracts[table.name] = len(frame)
    if settings.tableau is None:
        log.info("No Tableau settings: extracts written to %s, nothing published.", settings.extracts_dir)
        return outcome
    with TableauSession(settings.tableau) as session, tempfile.TemporaryDirectory() as workdir:
        project_id = ensure_project(session, settings.tableau.project)
        for table in MART_TABLES:
            delivered = publish_extract(
                session, db, project_id, table.name, table.key, extracts[table.name], Path(workdir),
                run_id=outcome.sync.run_id, full=full, snapshot_column=snapshot_column_of(table),
            )
            outcome.published[table.name] = (
                f"{delivered.mode} (+{delivered.rows_upserted}/-{delivered.rows_deleted}, "
                f"{delivered.bytes_sent} bytes)"
            )
    return outcome


def publish_extract(
    session: TableauSession,
    db: StateDB,
    project_id: str,
    name: str,
    key: tuple[str, ...],
    extract: Path,
    workdir: Path,
    *,
    run_id: str,
    full: bool = False,
    snapshot_column: str | None = None,
) -> DeliveryOutcome:
    """Bring a data source to exactly the extract as written, then put it on the audit ledger.

    What was delivered before comes from the ledger itself, so a run that died after Tableau
    confirmed but before this commit sends the same change set again, which keyed upserts and
    deletes apply without doubling. The ledger rows and the publication record commit together.
    A daily snapshot table (`snapshot_column`) has its latest day replaced whole, delete and
    insert in one request; earlier days stay as they are.
    """
    frame = frame_from_hyper(extract)
    with db.connect() as conn:
        previous = {k.record_key: digest for k, digest in last_delivered(conn, name).items()}
        publication = get_publication(conn, name)
    same_schema = publication is not None and publication.schema_fingerprint == schema_fingerprint(frame)
    if snapshot_column and same_schema and publication.datasource_id and not full and len(frame):
        outcome = _replace_latest_snapshot(session, publication.datasource_id, name, frame, key,
                                           snapshot_column, previous, workdir, run_id)
    else:
        outcome = deliver_table(
            session, project_id, name, frame, key, previous, workdir,
            previous_schema=publication.schema_fingerprint if publication else None,
            full=full, scope=run_id,
        )
    delivered_at = datetime.now(UTC)
    contents = _row_contents(frame, key, {row.key for row in outcome.rows if row.action != "delete"})
    with db.transaction() as conn:
        record_deliveries(conn, [
            Delivery(_company_of(row.key, key), name, row.key, row.content_hash, name,
                     row.action, run_id, delivered_at, contents.get(row.key))
            for row in outcome.rows
        ])
        save_publication(conn, Publication(name, outcome.datasource_id,
                                           outcome.schema_fingerprint, run_id, outcome.mode))
    log.info("%s: %s (%s), %d upserted, %d deleted, %d bytes sent", name, outcome.mode,
             outcome.reason, outcome.rows_upserted, outcome.rows_deleted, outcome.bytes_sent)
    return outcome


def _replace_latest_snapshot(
    session: TableauSession, datasource_id: str, name: str, frame: pd.DataFrame,
    key: tuple[str, ...], column: str, previous: dict[str, str], workdir: Path, run_id: str,
) -> DeliveryOutcome:
    """Replace the rows of the newest snapshot day in Tableau with the extract's."""
    latest = frame[column].max()
    part = frame[frame[column] == latest]
    position = key.index(column)
    rendered = split_key(row_keys_and_hashes(part.head(1), key)[0][0])[position]
    previous_part = {k: h for k, h in previous.items() if split_key(k)[position] == rendered}
    return replace_partition(session, datasource_id, name, part, key, column, latest,
                             previous_part, workdir, scope=run_id)


def _company_of(row_key: str, key: tuple[str, ...]) -> str:
    """The company of a delivered row: the `company_id` part of its key ("" when it has none)."""
    if "company_id" not in key:
        return ""
    return split_key(row_key)[key.index("company_id")]


def _row_contents(frame: pd.DataFrame, key: tuple[str, ...], wanted: set[str]) -> dict[str, str]:
    """The delivered rows of `wanted` keys as JSON text, for the ledger's version history."""
    if not wanted:
        return {}
    keys = row_keys(frame, key)
    positions = [i for i, k in enumerate(keys) if k in wanted]
    rows = frame.iloc[positions].astype(object).where(frame.iloc[positions].notna(), None)
    return {
        keys[i]: json.dumps(record, default=str, ensure_ascii=False, sort_keys=True)
        for i, record in zip(positions, rows.to_dict(orient="records"))
    }
