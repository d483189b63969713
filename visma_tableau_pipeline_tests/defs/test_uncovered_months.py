"""Months no financial period of the company covers: skipped with one log line, never a green
partition of nothing (issue 13, item 3). nordic-se's fiscal years start in July 2025."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from visma_tableau_pipeline.definitions import defs

PERIODS = dg.AssetKey(["visma", "financial_periods"])
INVOICES = dg.AssetKey(["visma", "supplier_invoices"])
SWEDEN = "nordic-se"


def _read_periods(instance: dg.DagsterInstance) -> None:
    assert defs().resolve_implicit_job_def_def_for_assets([PERIODS]).execute_in_process(
        instance=instance, partition_key=SWEDEN, asset_selection=[PERIODS]).success


def _read_months(instance: dg.DagsterInstance, first: str, last: str) -> dg.ExecuteInProcessResult:
    """One run over a range of nordic-se's months, as a backfill from the UI launches it."""
    return defs().resolve_implicit_job_def_def_for_assets([INVOICES]).execute_in_process(
        instance=instance, asset_selection=[INVOICES],
        tags={ASSET_PARTITION_RANGE_START_TAG: f"{SWEDEN}|{first}", ASSET_PARTITION_RANGE_END_TAG: f"{SWEDEN}|{last}"})


def _messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The run log's lines, as the UI shows them."""
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def _materialized_months(instance: dg.DagsterInstance) -> list[str]:
    return sorted(key.split("|")[1] for key in instance.get_materialized_partitions(INVOICES))


def test_months_before_the_first_fiscal_year_are_skipped_with_one_line_not_materialized(sandbox_env):
    instance = dg.DagsterInstance.ephemeral()
    _read_periods(instance)
    result = _read_months(instance, "2025-03-01", "2025-05-01")
    assert result.success
    assert _materialized_months(instance) == []
    skipped = [m for m in _messages(instance, result) if "skipped, no financial period covers" in m]
    assert skipped == [
        "supplier_invoices nordic-se 2025-03, 2025-04, 2025-05: skipped, no financial period covers them "
        "(the company's periods span 2025-07-01..2027-06-30); not read, not materialized. "
        "Create the financial year in Visma if they should hold data."
    ]


def test_a_range_across_the_first_fiscal_year_materializes_only_the_covered_months(sandbox_env):
    instance = dg.DagsterInstance.ephemeral()
    _read_periods(instance)
    result = _read_months(instance, "2025-06-01", "2025-08-01")
    assert result.success
    assert _materialized_months(instance) == ["2025-07-01", "2025-08-01"]
    truth = [r for r in sandbox_env.records(SWEDEN, "supplier_invoices") if r["financialPeriod"] in ("202501", "202502")]
    event = instance.get_latest_materialization_event(INVOICES).asset_materialization
    assert event.metadata["records_read"].value == len(truth) > 0


def test_the_readme_backfill_example_reads_invoices(sandbox_env):
    """README: company nordic-se, months 2026-03 to 2026-05."""
    instance = dg.DagsterInstance.ephemeral()
    _read_periods(instance)
    result = _read_months(instance, "2026-03-01", "2026-05-01")
    assert result.success and _materialized_months(instance) == ["2026-03-01", "2026-04-01", "2026-05-01"]
    events = result.get_asset_materialization_events()
    assert events and all(e.materialization.metadata["records_read"].value > 0 for e in events)


def test_the_nightly_run_asks_only_for_months_the_company_has_periods_for(sandbox_env):
    instance = dg.DagsterInstance.ephemeral()
    _read_periods(instance)
    with dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 24, 2, 0),
                                   resources=defs().resources) as context:
        requests = {r.tags[ASSET_PARTITION_RANGE_START_TAG]: r.tags[ASSET_PARTITION_RANGE_END_TAG]
                    for r in defs().resolve_schedule_def("nightly_period_entities")(context)}
    assert requests == {"nordic-se|2025-07-01": "nordic-se|2026-11-01", "nordic-no|2025-01-01": "nordic-no|2026-11-01"}
