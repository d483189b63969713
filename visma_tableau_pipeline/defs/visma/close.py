"""Month-end close: the sensor that sees a period close (or reopen) in Visma, and the run it launches.

`month_end_close_sensor` reads every company's `/v1/financialPeriod` (every
VTP_CLOSE_SENSOR_SECONDS, 15 minutes by default) and compares each period's close flags, module by
module, with what its cursor remembers (`visma/closing.py`). Each change becomes one run of
`month_end_close` for that company and period:

- every period entity of the period's month is read again in full (`EntitySyncConfig.full`), which
  also finds records deleted in Visma, so the tables describe the period as it was closed;
- every dashboard table and Tableau data source is rebuilt and published (the asset groups, so a
  table added to them takes part by itself), the blocking checks in between: a table whose check
  fails is not published, and the check says what differs and by how much;
- the aging tables take the company's close snapshot as of the period's last day, kept beside the
  daily snapshots (`marts/aging.py`);
- data sources are published in full (Overwrite): the close snapshot is not the newest snapshot
  day that an incremental publish would replace, and Tableau then holds exactly the close's data.

Run keys are `<company>:<period>:<cursor epoch>:<change number>`: evaluating the sensor again asks
for nothing new, and a reopening and a second close are new changes with new numbers. The epoch
(the moment the cursor began) keeps numbers apart if the cursor is ever reset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import GROUP as DASHBOARD_TABLES
from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.resources import VismaResource
from visma_tableau_pipeline.defs.tableau.assets import GROUP as TABLEAU_DATA_SOURCES
from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
from visma_tableau_pipeline.defs.visma.jobs import PERIOD_ENTITY_KEYS, entity_run_config
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.closing import CloseChange, close_changes
from visma_tableau_pipeline.visma.errors import VismaError
from visma_tableau_pipeline.visma.periods import FinancialPeriod, parse_periods

TAG_COMPANY, TAG_PERIOD, TAG_CHANGE = "vtp/close_company", "vtp/close_period", "vtp/close_change"

month_end_close_job = dg.define_asset_job(
    "month_end_close",
    selection=dg.AssetSelection.assets(*PERIOD_ENTITY_KEYS)
    | dg.AssetSelection.groups(DASHBOARD_TABLES, TABLEAU_DATA_SOURCES),
    description="A period closed (or reopened) in Visma: its month of every period entity read again "
    "in full, then every dashboard table, aging close snapshots and Tableau data source rebuilt, "
    "checked and published. Launched by month_end_close_sensor; run config names the company and "
    "period.",
)


def close_run_config(company_id: str, period_id: str) -> dict:
    """Run config of a close run: full reads, full builds with the close named, full publishes."""
    tables = {
        "__".join(mart_asset_key(table).path): {
            "config": {"full": True, "close_company": company_id, "close_period": period_id}}
        for table in MART_TABLES
    }
    sources = {"__".join(tableau_asset_key(table).path): {"config": {"full": True}} for table in MART_TABLES}
    return {"ops": {**entity_run_config(PERIOD_ENTITY_KEYS, full=True)["ops"], **tables, **sources}}


def close_run_request(change: CloseChange, period: FinancialPeriod, epoch: str) -> dg.RunRequest:
    """The one run of `month_end_close` for this change of this period."""
    return dg.RunRequest(
        run_key=f"{change.company_id}:{change.period_id}:{epoch}:{change.change}",
        partition_key=dg.MultiPartitionKey({"company": change.company_id, "month": f"{period.start:%Y-%m-01}"}),
        run_config=close_run_config(change.company_id, change.period_id),
        tags={TAG_COMPANY: change.company_id, TAG_PERIOD: change.period_id, TAG_CHANGE: change.describe()},
    )


def _has_month(period: FinancialPeriod, today: date, months: dg.MonthlyPartitionsDefinition) -> bool:
    """Whether the period's month is a partition (from VTP_FIRST_MONTH to next month)."""
    return f"{period.start:%Y-%m-01}" in months.get_partition_keys(datetime(today.year, today.month, today.day))


def month_end_close_sensor(company_ids: Sequence[str], months: dg.MonthlyPartitionsDefinition,
                           interval_seconds: int) -> dg.SensorDefinition:
    """The sensor over these companies, every `interval_seconds`; a close of a month outside
    `months` launches nothing."""

    @dg.sensor(
        name="month_end_close_sensor",
        job=month_end_close_job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reads each company's financial periods every VTP_CLOSE_SENSOR_SECONDS (15 minutes by "
        "default); when a period closes or reopens in a module, launches one month_end_close run.",
    )
    def _sensor(context: dg.SensorEvaluationContext, visma: VismaResource) -> dg.SensorResult:
        cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {
            "epoch": datetime.now(UTC).strftime("%Y%m%dT%H%M%S"), "companies": {}}
        requests: list[dg.RunRequest] = []
        for company_id in company_ids:
            try:
                with visma.client(company_id) as client:
                    records = [r for batch in client.read_entity(catalogue_entity("financial_periods")) for r in batch]
            except VismaError as error:  # one company's outage must not hide another's close
                context.log.warning(f"{company_id}: financial periods not read, tried again next time: {error}")
                continue
            seen = cursor["companies"].get(company_id)
            if seen is None:
                context.log.info(f"{company_id}: close flags of {len(records)} periods recorded as the baseline")
            changes, cursor["companies"][company_id] = close_changes(company_id, records, seen)
            periods = {p.period_id: p for p in parse_periods(records)}
            for change in changes:
                period = periods[change.period_id]
                if not _has_month(period, date.today(), months):
                    context.log.info(f"{change.describe()}: its month is outside the partitions kept, no run")
                    continue
                context.log.info(f"{change.describe()}: month_end_close requested")
                requests.append(close_run_request(change, period, cursor["epoch"]))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return _sensor
