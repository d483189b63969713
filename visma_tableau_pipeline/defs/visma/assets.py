"""One asset per catalogue entity: Visma records read into the state store.

Entities that belong to a financial period are partitioned by company and month; the rest by
company. A run reads its window as a delta from the stored watermark, or in full (with deleted
records found) when configured so or when no watermark exists yet; the nightly run reads in full
the periods Visma has not closed (`open_periods_in_full`). A backfill of several months
runs as one run per company (single-run backfill policy).

A month that no financial period of its company covers (before the first fiscal year, or past
the last one Visma has) is skipped, not materialized: a green partition with nothing in it would
tell a finance user that the month was read and is empty. Skipping beats failing: a backfill or
the nightly run over a range that starts before the first fiscal year still delivers the months
that exist. One log line per company names the months left out, the periods the company has, and
what to do.
"""


from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg

from visma_tableau_pipeline.defs.partitions import Partitions
from visma_tableau_pipeline.defs.resources import StateResource, VismaResource
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Entity
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.client import PageProgress, VismaClient
from visma_tableau_pipeline.visma.periods import (
    FinancialPeriod,
    PeriodError,
    parse_periods,
    period_for_month,
    periods_span,
)
from visma_tableau_pipeline.visma.plan import stored_open_periods, stored_periods, sync_entity
from visma_tableau_pipeline.visma.sync import WindowResult

GROUP = "visma_entities"
PREVIEW_ROWS = 5


class EntitySyncConfig(dg.Config):
    """Run configuration of an entity asset."""

    full: bool = False  # read the whole window and detect deletions, ignoring the watermark
    # the nightly read: master data and the periods Visma has not closed in full, closed ones as deltas
    open_periods_in_full: bool = False


def entity_asset_key(entity: Entity) -> dg.AssetKey:
    return dg.AssetKey(["visma", entity.name])


def _windows(context: dg.AssetExecutionContext, entity: Entity,
             company_month: dg.MultiPartitionsDefinition) -> dict[str, list[date | None]]:
    """Company -> month starts of this run ([None] for company-partitioned entities)."""
    windows: dict[str, list[date | None]] = {}
    for key in context.partition_keys:
        if entity.by_period:
            dims = company_month.get_partition_key_from_str(str(key)).keys_by_dimension
            windows.setdefault(dims["company"], []).append(date.fromisoformat(dims["month"]))
        else:
            windows[key] = [None]
    return windows


def _financial_periods(state: StateResource, client: VismaClient, company_id: str) -> list[FinancialPeriod]:
    """The company's financial periods: stored ones, or read now on the company's first run."""
    return stored_periods(state.db(), company_id) or parse_periods(
        record for batch in client.read_entity(catalogue_entity("financial_periods")) for record in batch
    )


def _uncovered_months(periods: list[FinancialPeriod], months: list[date | None]) -> list[date]:
    """The months of a run that no financial period of the company covers."""
    uncovered = []
    for month in months:
        if month is None:
            continue
        try:
            period_for_month(periods, month)
        except PeriodError:  # e.g. before the company's first fiscal year
            uncovered.append(month)
    return uncovered


def _month_partition_key(company_id: str, month: date) -> str:
    return str(dg.MultiPartitionKey({"company": company_id, "month": f"{month:%Y-%m-%d}"}))


def _flat(record: dict) -> dict[str, str]:
    """A record's top-level scalar fields as text, for a JSON preview (Decimals stay exact)."""
    return {k: str(v) for k, v in record.items() if not isinstance(v, (dict, list)) and v is not None}


def _metadata(results: list[WindowResult], stats: dict[str, float], preview: list[dict]) -> dict:
    watermarks = sorted({r.watermark for r in results if r.watermark})
    return {
        "records_read": sum(r.records_read for r in results),
        "inserted": sum(r.inserted for r in results),
        "updated": sum(r.updated for r in results),
        "unchanged": sum(r.unchanged for r in results),
        "deleted": sum(r.deleted for r in results),
        # not listed by a full read, yet Visma showed them still there (rows shifted between pages)
        "missed_but_exist": sum(r.missed - r.deleted for r in results),
        "windows": dg.MetadataValue.md(
            "\n".join(
                ["| company | period | mode | read | new | changed | deleted | watermark |",
                 "|---|---|---|---|---|---|---|---|"]
                + [
                    f"| {r.company_id} | {r.period or 'all'} | {'full' if r.full else 'delta'} | "
                    f"{r.records_read} | {r.inserted} | {r.updated} | {r.deleted} | {r.watermark or ''} |"
                    for r in results
                ]
            )
        ),
        "watermark": watermarks[-1] if watermarks else "",
        **stats,
        "preview": dg.MetadataValue.json([_flat(record) for record in preview[:PREVIEW_ROWS]]),
    }


def build_entity_asset(entity: Entity, partitions: Partitions) -> dg.AssetsDefinition:
    periods_key = entity_asset_key(catalogue_entity("financial_periods"))
    deps = [dg.AssetDep(periods_key)] if entity.by_period else []

    @dg.asset(
        key=entity_asset_key(entity),
        group_name=GROUP,
        kinds={"visma"},
        description=f"{entity.description} Read from Visma.net ERP `{entity.path}` into the state store.",
        partitions_def=partitions.company_month if entity.by_period else partitions.company,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=deps,
        pool="visma",
        output_required=False,  # a run of months no financial period covers materializes nothing
        # the nightly run must land every day; a warning after half a day without a change
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=26), warn_window=timedelta(hours=12)
        ),
        metadata={"visma_endpoint": entity.path, "record_key": ", ".join(entity.key)},
    )
    def _entity_asset(
        context: dg.AssetExecutionContext,
        config: EntitySyncConfig,
        visma: VismaResource,
        state: StateResource,
    ) -> Iterator[dg.MaterializeResult]:
        if visma.sandbox:
            context.log.info("VTP_SANDBOX: reading the bundled Visma sandbox, not a real company.")
        results: list[WindowResult] = []
        stats: dict[str, float] = {}
        preview: list[dict] = []
        skipped: set[str] = set()  # partition keys of months no financial period covers
        for company_id, months in _windows(context, entity, partitions.company_month).items():
            with visma.client(company_id) as client:
                periods = _financial_periods(state, client, company_id) if entity.by_period else []
                uncovered = _uncovered_months(periods, months)
                if uncovered:
                    skipped.update(_month_partition_key(company_id, month) for month in uncovered)
                    context.log.warning(
                        f"{entity.name} {company_id} {', '.join(f'{m:%Y-%m}' for m in uncovered)}: "
                        f"skipped, no financial period covers {'it' if len(uncovered) == 1 else 'them'} "
                        f"(the company's periods span {periods_span(periods)}); not read, not "
                        "materialized. Create the financial year in Visma if they should hold data."
                    )

                def progress(period: str | None, page: PageProgress, company_id: str = company_id) -> None:
                    if page.page % 20 == 0 or page.total_count is None:
                        context.log.info(
                            f"{entity.name} {company_id} {period or ''}: page {page.page}, "
                            f"{page.records_yielded} records of {page.total_count or '?'}"
                        )

                read = sync_entity(
                    client, state.db(), entity, company_id,
                    [period_for_month(periods, month) if month else None for month in months if month not in uncovered],
                    run_id=context.run.run_id, full=config.full,
                    open_periods=stored_open_periods(state.db(), company_id) if config.open_periods_in_full else None,
                    on_page=progress,
                )
                results.extend(read)
                preview.extend(record for result in read for record in result.preview)
                for name, value in client.stats.as_metadata().items():
                    stats[name] = stats.get(name, 0) + value
        metadata = _metadata(results, stats, preview)
        if not skipped:
            yield dg.MaterializeResult(metadata=metadata)
            return
        # The step's output would mark every partition of the run: only the covered ones are
        # marked, one by one (the entity's checks then wait for a run without skipped months).
        for key in context.partition_keys:
            if key not in skipped:
                context.log_event(dg.AssetMaterialization(context.asset_key, partition=key, metadata=metadata))

    return _entity_asset


def entity_assets(partitions: Partitions) -> list[dg.AssetsDefinition]:
    """One asset per catalogue entity, over these partitions."""
    return [build_entity_asset(entity, partitions) for entity in ENTITIES]
