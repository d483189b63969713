"""One asset per dashboard table: built from the stored Visma records, written as a Hyper extract.

Each table holds every company (a `company_id` column) and lives at
`$VTP_HOME/extracts/<name>.hyper`, table `"Extract"."Extract"`.
"""


from datetime import date

import dagster as dg

from visma_tableau_pipeline.defs.resources import StateResource
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.defs.visma.checks import held_back_table
from visma_tableau_pipeline.marts.extracts import ExtractResult, build_extract
from visma_tableau_pipeline.marts.aging import aging_bucket_totals
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity

GROUP = "dashboard_tables"
AGING_TABLES = {"ap_aging", "ar_aging"}


class MartConfig(dg.Config):
    """Run configuration of a dashboard table."""

    as_of: str = ""  # ISO date of the aging snapshot; empty means today
    full: bool = False  # build the whole table even when only some records changed


def mart_asset_key(table: MartTable) -> dg.AssetKey:
    return dg.AssetKey(["marts", table.name])


def _metadata(table: MartTable, extract: ExtractResult) -> dict:
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
    if table.name in AGING_TABLES:
        metadata["aging_bucket_totals_base_currency"] = dg.MetadataValue.json(
            {bucket: str(total) for bucket, total in aging_bucket_totals(frame).items()}
        )
    return metadata


def build_mart_asset(table: MartTable) -> dg.AssetsDefinition:
    @dg.asset(
        key=mart_asset_key(table),
        group_name=GROUP,
        kinds={"pandas", "hyper"},
        description=f"{table.description} Built from the stored Visma {', '.join(table.sources)}; "
        f"written to $VTP_HOME/extracts/{table.name}.hyper. Key: {', '.join(table.key)}.",
        deps=[entity_asset_key(catalogue_entity(source)) for source in table.sources],
        metadata={"key_columns": ", ".join(table.key)},
        automation_condition=dg.AutomationCondition.eager(),
    )
    def _mart_asset(
        context: dg.AssetExecutionContext, config: MartConfig, state: StateResource
    ) -> dg.MaterializeResult:
        settings = get_settings()
        as_of = date.fromisoformat(config.as_of) if config.as_of else date.today()
        company_ids = [c.company_id for c in settings.companies]
        extract = build_extract(state.db(), company_ids, table, as_of, settings.extracts_dir,
                                context.run.run_id, full=config.full)
        context.log.info(f"{table.name}: {extract.mode} ({extract.reason}), {extract.rows} rows in {extract.path}")
        for item in extract.held:
            context.log.warning(f"held back {item.describe()}")
        return dg.MaterializeResult(metadata=_metadata(table, extract))

    return _mart_asset


mart_assets = [build_mart_asset(table) for table in MART_TABLES]
