"""In Dagster, a held-back record is a warning on its entity and metadata on its table, not a failure."""

from __future__ import annotations

import dagster as dg

from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.visma.catalogue import entity, record_key
from visma_tableau_pipeline_tests.defs.conftest import (
    COMPANY,
    MONTH,
    sync_invoice_month,
)

INVOICES = entity("supplier_invoices")


def test_a_bad_invoice_is_held_back_with_a_warning_and_the_table_materializes(sandbox_env):
    bad = next(r for r in sandbox_env.records(COMPANY, INVOICES.name) if r["financialPeriod"] == "202503")
    sandbox_env.modify(COMPANY, INVOICES.name, record_key(INVOICES, bad), {"date": "yesterday"})
    instance = dg.DagsterInstance.ephemeral()
    invoices, ap = entity_asset_key(INVOICES), mart_asset_key(mart_table("ap_invoices"))
    sync_invoice_month(instance)

    built = defs().resolve_implicit_job_def_def_for_assets([ap]).execute_in_process(
        instance=instance, asset_selection=[ap])
    assert built.success
    metadata = built.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["held_back"].value == 1
    assert "'yesterday'" in metadata["held_back_records"].value

    checked = defs().resolve_implicit_job_def_def_for_assets([invoices]).execute_in_process(
        instance=instance, asset_selection=[invoices],
        partition_key=dg.MultiPartitionKey({"company": COMPANY, "month": MONTH}))
    assert checked.success
    (evaluation,) = [e.event_specific_data for e in checked.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION"
                     and e.event_specific_data.check_name == "no_records_held_back"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["held_back"].value == 1
    shown_key = key_string(record_key(INVOICES, bad)).replace("|", "\\|")  # escaped in markdown
    assert shown_key in evaluation.metadata["records"].value
