"""The runs the sensors request for the reads `visma/reads_needed.py` decides (tested there):
which job, partition or range of months, config, tags and run key.

The real sensors against the sandbox are in test_definitions.py.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from visma_tableau_pipeline.defs.visma.sensors import run_request
from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.change_probe import EntityChanges
from visma_tableau_pipeline.visma.periods import FinancialPeriod
from visma_tableau_pipeline.visma.reads_needed import merge_reads, reads_for_changes, reads_for_deletion

FIRST_MONTH, TODAY = date(2025, 1, 1), date(2026, 12, 3)
PERIODS = [
    FinancialPeriod("202412", date(2024, 12, 1), date(2024, 12, 31)),
    FinancialPeriod("202503", date(2025, 3, 1), date(2025, 3, 31)),
    FinancialPeriod("202610", date(2026, 10, 1), date(2026, 10, 31)),
    FinancialPeriod("202701", date(2027, 1, 1), date(2027, 1, 31)),
]
NEWEST = "2026-11-01T08:00:01.013"


def month(key: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"company": "acme", "month": key})


def runs_for_changes(*args) -> list[dg.RunRequest]:
    return [run_request(read) for read in reads_for_changes(*args)]


def runs_for_deletion(*args) -> list[dg.RunRequest]:
    return [run_request(read) for read in reads_for_deletion(*args)]


def test_changes_seen_whole_run_their_months_in_the_window_the_pipeline_keeps_in_one_run():
    changes = EntityChanges("supplier_invoices", records=4, periods={"202412", "202503", "202610", "202701"},
                            newest=NEWEST)
    [request] = runs_for_changes("acme", entity("supplier_invoices"), changes, PERIODS, FIRST_MONTH, TODAY)
    # 2024-12 is before VTP_FIRST_MONTH (never kept); 2027-01 has not begun (no partition yet)
    assert request.partition_key is None and request.tags == {
        "dagster/asset_partition_range_start": "acme|2025-03-01",
        "dagster/asset_partition_range_end": "acme|2026-10-01",
        "vtp/read_company": "acme", "vtp/read_version.supplier_invoices": NEWEST,
    }
    assert request.run_key == f"acme:supplier_invoices:2025-03-01..2026-10-01:{NEWEST}"


def test_one_changed_month_runs_its_partition():
    changes = EntityChanges("supplier_invoices", records=1, periods={"202503"}, newest=NEWEST)
    [request] = runs_for_changes("acme", entity("supplier_invoices"), changes, PERIODS, FIRST_MONTH, TODAY)
    assert request.partition_key == month("2025-03-01")
    assert "dagster/asset_partition_range_start" not in request.tags


def test_a_tick_s_merged_reads_are_one_run_per_job_selecting_every_changed_entity():
    reads = [read for name, periods in (("supplier_invoices", {"202503"}), ("supplier_payments", {"202610"}),
                                        ("suppliers", set()))
             for read in reads_for_changes("acme", entity(name), EntityChanges(name, records=1, periods=periods,
                                                                                newest=NEWEST),
                                           PERIODS, FIRST_MONTH, TODAY)]
    period_run, master_run = (run_request(read) for read in merge_reads(reads))
    assert (period_run.job_name, master_run.job_name) == ("visma_period_entities", "visma_master_data")
    assert period_run.asset_selection == [dg.AssetKey(["visma", "supplier_invoices"]),
                                          dg.AssetKey(["visma", "supplier_payments"])]
    assert (period_run.tags["dagster/asset_partition_range_start"],
            period_run.tags["dagster/asset_partition_range_end"]) == ("acme|2025-03-01", "acme|2026-10-01")
    assert not period_run.run_config  # delta reads
    assert (master_run.partition_key, master_run.asset_selection) == ("acme", [dg.AssetKey(["visma", "suppliers"])])


def test_a_truncated_probe_runs_every_month_in_one_run_keyed_by_the_newest_change():
    changes = EntityChanges("supplier_invoices", records=1000, periods={"202610"}, newest=NEWEST, truncated=True)
    [request] = runs_for_changes("acme", entity("supplier_invoices"), changes, PERIODS, FIRST_MONTH, TODAY)
    assert request.partition_key is None and request.tags == {
        "dagster/asset_partition_range_start": "acme|2025-01-01",
        "dagster/asset_partition_range_end": "acme|2026-12-01",
        "vtp/read_company": "acme", "vtp/read_version.supplier_invoices": NEWEST,
    }
    assert request.run_key == f"acme:supplier_invoices:every-month:{NEWEST}"
    assert request.asset_selection == [dg.AssetKey(["visma", "supplier_invoices"])]


def test_master_data_runs_the_company_whether_or_not_the_probe_was_truncated():
    for truncated in (False, True):
        changes = EntityChanges("suppliers", records=3, newest=NEWEST, truncated=truncated)
        [request] = runs_for_changes("acme", entity("suppliers"), changes, PERIODS, FIRST_MONTH, TODAY)
        assert (request.partition_key, request.run_key) == ("acme", f"acme:suppliers:{NEWEST}")


def test_nothing_changed_runs_nothing():
    changes = EntityChanges("supplier_invoices", newest=NEWEST)
    assert runs_for_changes("acme", entity("supplier_invoices"), changes, PERIODS, FIRST_MONTH, TODAY) == []


def test_a_deleted_record_reconciles_the_month_the_store_holds_it_in():
    [request] = runs_for_deletion("acme", entity("supplier_invoices"), {"Invoice|000123": "202503"}, "n-1",
                                  PERIODS, FIRST_MONTH, TODAY)
    assert request.partition_key == month("2025-03-01")
    assert request.asset_selection == [dg.AssetKey(["visma", "supplier_invoices"])]
    assert request.run_config == {"ops": {"visma__supplier_invoices": {"config": {"full": True}}}}
    assert request.run_key == "acme:supplier_invoices:2025-03-01:deleted:n-1"


def test_a_deleted_master_record_reconciles_the_company_and_an_unknown_one_nothing():
    [request] = runs_for_deletion("acme", entity("suppliers"), {"10002": None}, "n-2", PERIODS, FIRST_MONTH, TODAY)
    assert (request.partition_key, request.run_config) == (
        "acme", {"ops": {"visma__suppliers": {"config": {"full": True}}}})
    assert runs_for_deletion("acme", entity("suppliers"), {}, "n-3", PERIODS, FIRST_MONTH, TODAY) == []
