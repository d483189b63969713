"""Jobs over the entity assets, and the nightly schedule that launches them.

The nightly run per company reads master data (one partition: the company) and every period
entity over every month from VTP_FIRST_MONTH to now, as ONE run per company (a partition range),
the same windows `vtp sync` reads. Dashboard tables follow by their automation condition.
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


def month_range(company_id: str, today: date) -> tuple[str, str]:
    """The partition keys of a company's first and current month."""
    first = get_settings().first_month
    return f"{company_id}|{first:%Y-%m-%d}", f"{company_id}|{today:%Y-%m-01}"


NIGHTLY = "0 2 * * *"
TIMEZONE = "Europe/Oslo"


@dg.schedule(
    cron_schedule=NIGHTLY, job=master_data_job, execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night: each company's master data, as deltas (dimensions in full).",
)
def nightly_master_data(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    night = context.scheduled_execution_time.strftime("%Y%m%d")
    for company in get_settings().companies:
        yield dg.RunRequest(run_key=f"{company.company_id}-{night}", partition_key=company.company_id)


@dg.schedule(
    cron_schedule=NIGHTLY, job=period_entities_job, execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night: every month of every company, one run per company, as deltas.",
)
def nightly_period_entities(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    scheduled = context.scheduled_execution_time
    for company in get_settings().companies:
        start, end = month_range(company.company_id, scheduled.date())
        yield dg.RunRequest(
            run_key=f"{company.company_id}-{scheduled:%Y%m%d}",
            tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
        )
