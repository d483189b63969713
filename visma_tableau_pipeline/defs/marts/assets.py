"""One asset per dashboard table: built from the stored Visma records, written as a Hyper extract.

Each table holds every company (a `company_id` column) and lives at
`$VTP_HOME/extracts/<name>.hyper`, table `"Extract"."Extract"`.
"""


from collections.abc import Sequence
from datetime import date

import dagster as dg
import pandas as pd

from visma_tableau_pipeline.defs.resources import StateResource
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.defs.visma.checks import held_back_table
from visma_tableau_pipeline.delivery.extracts import ExtractResult, build_extract
from visma_tableau_pipeline.marts.aging import CLOSE, DAILY, aging_bucket_totals
from visma_tableau_pipeline.marts.period_close import reconciliation_lines, trial_balance_totals, unreconciled
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable, mart_table, tables_read
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.plan import stored_periods

GROUP = "dashboard_tables"
AGING_TABLES = {"ap_aging", "ar_aging"}
# `eager()` without its two waits on upstream partitions:
# - while any is being read: with a stream of change runs some entity partition is nearly always
#   queued or reading, so that wait held every table back until the queue drained (BENCHMARKS.md,
#   "Freshness"). Now a table is built as soon as an entity run ends; a read still running is a
#   later update of the same deps, and `since_last_handled` builds the table once more after it
#   (once, however many reads end while the table's own run is in progress);
# - while any was never read: a month no financial period of a company covers is never
#   materialized (`defs/visma/assets.py`: no green partition of nothing), so for a company whose
#   fiscal years start after VTP_FIRST_MONTH (nordic-se) that wait never ended.
# The cost: a table may be built twice where it was once, e.g. during the first night, whose
# entities end one after another (the first builds hold what was read so far).
FOLLOW_ENTITIES = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_in_progress())
    .without(~dg.AutomationCondition.any_deps_missing())
    .with_label("eager, waiting for no other read")
)


class MartConfig(dg.Config):
    """Run configuration of a dashboard table."""

    as_of: str = ""  # ISO date of the aging snapshot; empty means today
    full: bool = False  # build the whole table even when only some records changed
    # A month-end close run (defs/visma/close.py) names the company and YYYYPP period that closed:
    # aging tables then build that company's close snapshot as of the period's last day (instead
    # of `as_of`), kept beside the daily snapshots.
    close_company: str = ""
    close_period: str = ""


def _close_snapshot(config: MartConfig, state: StateResource) -> date:
    """The day a close snapshot describes: the last day of the closed period, as stored."""
    periods = {p.period_id: p for p in stored_periods(state.db(), config.close_company)}
    if config.close_period not in periods:
        raise dg.Failure(f"{config.close_company} has no stored financial period {config.close_period}: "
                         "read its financial periods (visma/financial_periods) first")
    return periods[config.close_period].end


def mart_asset_key(table: MartTable) -> dg.AssetKey:
    return dg.AssetKey(["marts", table.name])


def _metadata(table: MartTable, extract: ExtractResult, config: MartConfig,
              snapshot: tuple[date, str, list[str]]) -> dict:
    frame = extract.frame
    metadata: dict = {
        "dagster/row_count": extract.rows,
        "mode": extract.mode,
        "reason": extract.reason,
        "rows_rebuilt": len(frame),
        "path": dg.MetadataValue.path(str(extract.path)),
        "bytes": extract.path.stat().st_size,
        "preview": dg.MetadataValue.md(frame.head(10).to_markdown(index=False)),
        "held_back": len(extract.held),
    }
    if extract.held:
        metadata["held_back_records"] = held_back_table(list(extract.held))
    if config.close_period:
        metadata["close"] = f"{config.close_company} {config.close_period}"
    if table.name in AGING_TABLES:  # which snapshot this is: its reconciliation check reads it
        as_of, kind, company_ids = snapshot
        metadata["snapshot_date"] = str(as_of)
        metadata["snapshot_kind"] = kind
        metadata["snapshot_companies"] = ", ".join(company_ids)
    if extract.mode == "unchanged":  # nothing built: the totals of the last build's metadata still hold
        return metadata
    if table.name in AGING_TABLES:
        metadata["aging_bucket_totals_base_currency"] = dg.MetadataValue.json(
            {bucket: str(total) for bucket, total in aging_bucket_totals(frame).items()}
        )
    if table.name == "period_close":
        metadata.update(_close_metadata(frame))
    return metadata


def _close_metadata(frame: pd.DataFrame) -> dict:
    """What a controller reads of a close: the trial balance totals (debits = credits) and the
    reconciliation lines of each company and period, and how many there are."""
    totals = trial_balance_totals(frame)
    unbalanced = totals[totals["difference_base_currency"] != 0]
    return {
        "companies": int(frame["company_id"].nunique()),
        "periods": len(totals),
        "accounts": int(frame["account_number"].nunique()),
        "trial_balance_totals": dg.MetadataValue.md(totals.astype(str).to_markdown(index=False)),
        "trial_balances_unbalanced": len(unbalanced),
        "reconciliation_lines": dg.MetadataValue.md(
            reconciliation_lines(frame).astype(str).to_markdown(index=False)),
        "reconciliation_lines_differing": len(unreconciled(frame)),
    }


def build_mart_asset(table: MartTable, company_ids: Sequence[str]) -> dg.AssetsDefinition:
    """The asset building `table` over these companies: after the entities it reads, and after the
    tables whose extracts it is derived from (a full sync derives it rather than decoding every record)."""

    @dg.asset(
        key=mart_asset_key(table),
        group_name=GROUP,
        kinds={"pandas", "hyper"},
        description=f"{table.description} Built from the stored Visma {', '.join(table.sources)}"
        + (f", derived from the extracts of {', '.join(tables_read(table))}" if table.from_extracts else "")
        + f"; written to $VTP_HOME/extracts/{table.name}.hyper. Key: {', '.join(table.key)}.",
        deps=[*(entity_asset_key(catalogue_entity(source)) for source in table.sources),
              *(mart_asset_key(mart_table(name)) for name in tables_read(table))],
        metadata={"key_columns": ", ".join(table.key)},
        automation_condition=FOLLOW_ENTITIES,
    )
    def _mart_asset(
        context: dg.AssetExecutionContext, config: MartConfig, state: StateResource
    ) -> dg.MaterializeResult:
        companies = list(company_ids)
        as_of, kind = date.fromisoformat(config.as_of) if config.as_of else date.today(), DAILY
        if table.name in AGING_TABLES and config.close_period:
            as_of, kind, companies = _close_snapshot(config, state), CLOSE, [config.close_company]
        extract = build_extract(state.db(), companies, table, as_of, state.extracts_dir,
                                context.run.run_id, full=config.full, snapshot_kind=kind, store=state.extract_store())
        context.log.info(f"{table.name}: {extract.mode} ({extract.reason}), {extract.rows} rows in {extract.path}")
        for item in extract.held:
            context.log.warning(f"held back {item.describe()}")
        return dg.MaterializeResult(metadata=_metadata(table, extract, config, (as_of, kind, companies)))

    return _mart_asset


def mart_assets(company_ids: Sequence[str]) -> list[dg.AssetsDefinition]:
    """One asset per dashboard table, each holding these companies."""
    return [build_mart_asset(table, company_ids) for table in MART_TABLES]
