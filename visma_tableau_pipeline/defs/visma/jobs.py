"""Jobs over the entity assets, and the nightly schedule that launches them.

The nightly run per company reads master data (one partition: the company) and every period
entity over every month from VTP_FIRST_MONTH to now, as ONE run per company (a partition range),
the same windows `vtp sync` reads. The weekly reconciliation reads the same windows in full, which
finds records deleted in Visma (neither webhooks nor lastModifiedDateTime reveal them), like
`vtp sync --full`. Dashboard tables follow by their automation condition.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.visma.catalogue import ENTITIES

PERIOD_ENTITY_KEYS = [entity_asset_key(e) for e in ENTITIES if e.by_period]
MASTER_ENTITY_KEYS = [entity_asset_key(e) for e in ENTITIES if not e.by_period]

master_data_job = dg.define_asset_job(
    "visma_master_data",
    selection=dg.AssetSelection.assets(*MASTER_ENTITY_KEYS),
    description="Master data of one company: periods, accounts, dimensions, suppliers, customers, …",
)
period_entities_job = dg.define_asset_job(
    "visma_period_entities",
    selection=dg.AssetSelection.assets(*PERIOD_ENTITY_KEYS),
    description="Invoices, payments, receipts, journal transactions and GL balances by month.",
)


def month_range_tags(company_id: str, first_month: date, today: date) -> dict[str, str]:
    """Run tags that make one run over every month of a company, from its first month to the
    current one (a single-run backfill)."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: f"{company_id}|{first_month:%Y-%m-01}",
        ASSET_PARTITION_RANGE_END_TAG: f"{company_id}|{today:%Y-%m-01}",
    }


TIMEZONE = "Europe/Oslo"


def full_read_config(keys: list[dg.AssetKey]) -> dict:
    """Run config that reads every one of these assets in full (and so finds deleted records)."""
    return {"ops": {"__".join(key.path): {"config": {"full": True}} for key in keys}}


def _schedules(name: str, cron: str, full: bool, what: str) -> list[dg.ScheduleDefinition]:
    """A master-data schedule and a period-entities schedule with the same timing."""
    mode = "in full, finding records deleted in Visma" if full else "as deltas"

    @dg.schedule(
        name=f"{name}_master_data", cron_schedule=cron, job=master_data_job,
        execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"{what}: each company's master data, {mode}.",
    )
    def master(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        stamp = context.scheduled_execution_time.strftime("%Y%m%d")
        config = full_read_config(MASTER_ENTITY_KEYS) if full else None
        for company in get_settings().companies:
            yield dg.RunRequest(
                run_key=f"{company.company_id}-{stamp}", partition_key=company.company_id,
                run_config=config,
            )

    @dg.schedule(
        name=f"{name}_period_entities", cron_schedule=cron, job=period_entities_job,
        execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"{what}: every month of every company, one run per company, {mode}.",
    )
    def periods(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        scheduled = context.scheduled_execution_time
        config = full_read_config(PERIOD_ENTITY_KEYS) if full else None
        for company in get_settings().companies:
            yield dg.RunRequest(
                run_key=f"{company.company_id}-{scheduled:%Y%m%d}", run_config=config,
                tags=month_range_tags(company.company_id, get_settings().first_month, scheduled.date()),
            )

    return [master, periods]


nightly_master_data, nightly_period_entities = _schedules("nightly", "0 2 * * *", False, "Every night")
weekly_master_data, weekly_period_entities = _schedules(
    "weekly_reconciliation", "0 4 * * 0", True, "Every Sunday"
)
schedules = [nightly_master_data, nightly_period_entities, weekly_master_data, weekly_period_entities]
