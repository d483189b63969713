"""Jobs over the entity assets, and the schedules that launch them (running by default).

The nightly run per company reads master data (one partition: the company) and every period
entity over every month from VTP_FIRST_MONTH to now, as ONE run per company (a partition range),
the same windows `vtp sync` reads. Records deleted in Visma must leave Tableau within a day, and
neither webhooks (where Visma sends none) nor lastModifiedDateTime reveal a deletion, so the
nightly run reconciles (reads in full) master data and every period Visma has not closed; closed
periods are read as deltas there and in full by the weekly reconciliation, like `vtp sync --full`.
Dashboard tables follow by their automation condition.
"""

from collections.abc import Iterator, Sequence
from datetime import date

import dagster as dg

from visma_tableau_pipeline.defs.resources import StateResource
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.visma.catalogue import ENTITIES
from visma_tableau_pipeline.visma.periods import covered_months
from visma_tableau_pipeline.visma.plan import stored_periods

# The run tags of a single-run backfill over a partition range, as Dagster's docs name them
# (Dagster exports no public constant for them).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
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


def month_range_tags(company_id: str, months: tuple[date, date]) -> dict[str, str]:
    """Run tags that make one run over a company's months `first..last` (a single-run backfill).

    Callers pass the months its financial periods cover (`covered_months`): a run that asked for
    months outside them would skip them, and its entity checks wait for a run without skipped months.
    """
    first, last = months
    return {
        ASSET_PARTITION_RANGE_START_TAG: f"{company_id}|{first:%Y-%m-01}",
        ASSET_PARTITION_RANGE_END_TAG: f"{company_id}|{last:%Y-%m-01}",
    }


TIMEZONE = "Europe/Oslo"
NIGHTLY_CRON = "0 2 * * *"  # 02:00 every night
WEEKLY_CRON = "0 4 * * 0"  # 04:00 every Sunday


def entity_run_config(keys: list[dg.AssetKey], **config: bool) -> dict:
    """Run config giving every one of these entity assets the same `EntitySyncConfig`."""
    return {"ops": {"__".join(key.path): {"config": dict(config)} for key in keys}}


def _master_data_schedule(name: str, cron: str, run_config: dict, description: str,
                          company_ids: Sequence[str]) -> dg.ScheduleDefinition:
    """One run per company over its master data partition."""

    @dg.schedule(
        name=name, cron_schedule=cron, job=master_data_job, execution_timezone=TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING, description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        stamp = context.scheduled_execution_time.strftime("%Y%m%d")
        for company_id in company_ids:
            yield dg.RunRequest(run_key=f"{company_id}-{stamp}", partition_key=company_id, run_config=run_config)

    return _schedule


def _period_entities_schedule(name: str, cron: str, run_config: dict, description: str,
                              company_ids: Sequence[str], first_month: date) -> dg.ScheduleDefinition:
    """One run per company over every month from VTP_FIRST_MONTH to now (a partition range)."""

    @dg.schedule(
        name=name, cron_schedule=cron, job=period_entities_job, execution_timezone=TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING, description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext, state: StateResource) -> Iterator[dg.RunRequest]:
        scheduled = context.scheduled_execution_time
        for company_id in company_ids:
            covered = covered_months(stored_periods(state.db(), company_id), first_month, scheduled.date())
            if covered is None:
                context.log.warning(f"{company_id}: no financial period covers a month since "
                                    "VTP_FIRST_MONTH; nothing to read")
                continue
            yield dg.RunRequest(
                run_key=f"{company_id}-{scheduled:%Y%m%d}", run_config=run_config,
                tags=month_range_tags(company_id, covered),
            )

    return _schedule


def schedules(company_ids: Sequence[str], first_month: date) -> list[dg.ScheduleDefinition]:
    """The nightly and weekly schedules over these companies and the months since `first_month`."""
    return [
        _master_data_schedule(
            "nightly_master_data", NIGHTLY_CRON, entity_run_config(MASTER_ENTITY_KEYS, full=True),
            "Every night: each company's master data in full, finding records deleted in Visma.", company_ids,
        ),
        _period_entities_schedule(
            "nightly_period_entities", NIGHTLY_CRON, entity_run_config(PERIOD_ENTITY_KEYS, open_periods_in_full=True),
            "Every night: every month of every company, one run per company; the periods Visma has not "
            "closed in full (finding records deleted there), closed ones as deltas.", company_ids, first_month,
        ),
        _period_entities_schedule(
            "weekly_reconciliation_period_entities", WEEKLY_CRON, entity_run_config(PERIOD_ENTITY_KEYS, full=True),
            "Every Sunday: every month of every company in full, finding records deleted in closed periods too.",
            company_ids, first_month,
        ),
    ]
