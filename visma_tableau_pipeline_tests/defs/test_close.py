"""Month-end close through Dagster: a period closed in the Visma sandbox becomes, through the real
sensor, one close run; that run re-reads the period in full and rebuilds and publishes the tables,
with the aging close snapshot beside the daily one and a period_close that balances and reconciles;
reopened and closed again, another run, which does not publish a close whose subledger is off the GL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import pandas as pd

from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
from visma_tableau_pipeline.defs.visma.close import month_end_close_job
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.registry import MART_TABLES, mart_table
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox

COMPANY, PERIOD, MONTH = "nordic-no", "202610", "2026-10-01"


def evaluate(cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(cursor=cursor, resources=defs().resources) as context:
        result = defs().resolve_sensor_def("month_end_close_sensor")(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_a_close_in_visma_requests_one_close_run_per_change(sandbox_env):
    sandbox = sandbox_env
    baseline = evaluate(None)
    assert baseline.run_requests == []  # months closed before the sensor began launch nothing

    sandbox.close_period(COMPANY, PERIOD, ["AP", "AR"])
    closed = evaluate(baseline.cursor)
    [request] = closed.run_requests
    assert request.partition_key == dg.MultiPartitionKey({"company": COMPANY, "month": MONTH})
    assert request.tags["vtp/close_company"] == COMPANY and request.tags["vtp/close_period"] == PERIOD
    assert request.tags["vtp/close_change"] == f"{COMPANY} {PERIOD}: closed in AP, AR (now closed in AP, AR)"
    dg.validate_run_config(defs().resolve_job_def(month_end_close_job.name), request.run_config)

    again = evaluate(closed.cursor)
    assert again.run_requests == []

    sandbox.close_period(COMPANY, PERIOD, ["GL"])
    sandbox.close_period(COMPANY, PERIOD, reopen=True)  # between two reads: the net change only
    reopened = evaluate(again.cursor)
    assert [r.tags["vtp/close_change"] for r in reopened.run_requests] == [
        f"{COMPANY} {PERIOD}: reopened in AP, AR (now closed in no module)"]
    sandbox.close_period(COMPANY, PERIOD)
    closed_again = evaluate(reopened.cursor)
    keys = [r.run_key for r in [request, *reopened.run_requests, *closed_again.run_requests]]
    assert len(keys) == len(set(keys)) == 3
    assert [r.tags["vtp/close_change"] for r in closed_again.run_requests] == [
        f"{COMPANY} {PERIOD}: closed in AP, AR, CA, FA, GL, IN (now closed in AP, AR, CA, FA, GL, IN)"]


def test_the_close_run_rereads_the_period_and_publishes_the_close_snapshot(sandbox_env, tableau_env):
    sandbox, tableau = sandbox_env, tableau_env
    instance = dg.DagsterInstance.ephemeral()
    aging, published = mart_asset_key(mart_table("ap_aging")), tableau_asset_key(mart_table("ap_aging"))
    invoices_table = mart_asset_key(mart_table("ap_invoices"))
    daily = defs().resolve_implicit_job_def_def_for_assets([aging]).execute_in_process(
        instance=instance, asset_selection=[invoices_table, aging, published],
        run_config={"ops": {"marts__ap_aging": {"config": {"as_of": "2026-10-31"}}}})
    assert daily.success

    first = evaluate(None)
    sandbox.close_period(COMPANY, PERIOD)
    deleted = sandbox.delete(COMPANY, "supplier_invoices", _an_invoice_of(sandbox, PERIOD))
    closed = evaluate(first.cursor)
    [request] = closed.run_requests
    result = defs().resolve_job_def("month_end_close").execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config,
        tags=request.tags)
    assert result.success

    materialized = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    invoices = materialized[dg.AssetKey(["visma", "supplier_invoices"])]
    truth = [r for r in sandbox.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == PERIOD]
    assert invoices["records_read"].value == len(truth) and invoices["deleted"].value == 1
    assert f"| {COMPANY} | {PERIOD} | full |" in invoices["windows"].value
    assert {mart_asset_key(t) for t in MART_TABLES} | {tableau_asset_key(t) for t in MART_TABLES} <= set(materialized)
    assert materialized[aging]["snapshot_kind"].value == "close"
    assert materialized[aging]["snapshot_date"].value == "2026-10-31"
    assert materialized[aging]["close"].value == f"{COMPANY} {PERIOD}"
    assert materialized[published]["mode"].value == "overwrite"
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(c.passed for c in checks)

    in_tableau = frame_from_hyper(tableau.datasource_path("ap_aging"))
    on_close_day = in_tableau[in_tableau["snapshot_date"] == date(2026, 10, 31)]
    by_kind = on_close_day.groupby("snapshot_kind")["company_id"].unique().to_dict()
    assert set(by_kind["close"]) == {COMPANY} and set(by_kind["daily"]) == {"nordic-no", "nordic-se"}
    ap_invoices = frame_from_hyper(tableau.datasource_path("ap_invoices"))
    assert deleted["referenceNumber"] not in set(ap_invoices[ap_invoices["company_id"] == COMPANY]["reference_number"])
    close = frame_from_hyper(tableau.datasource_path("period_close"))
    _assert_balances_and_reconciles(close[(close["company_id"] == COMPANY) & (close["financial_period"] == PERIOD)])

    # reopened, a manual entry on the AP control account, closed again: another run, which
    # finds the difference and leaves the close as Tableau had it
    sandbox.close_period(COMPANY, PERIOD, reopen=True)
    reopened = evaluate(closed.cursor)
    sandbox.create(COMPANY, "journal_transactions", _manual_entry_on_ap(sandbox, Decimal("250.00")))
    sandbox.close_period(COMPANY, PERIOD)
    [again] = evaluate(reopened.cursor).run_requests
    assert again.run_key != request.run_key
    second = defs().resolve_job_def("month_end_close").execute_in_process(
        instance=instance, partition_key=again.partition_key, run_config=again.run_config, tags=again.tags,
        raise_on_error=False)
    [reconciliation] = [e.event_specific_data for e in second.all_events if e.event_type_value ==
                        "ASSET_CHECK_EVALUATION" and e.event_specific_data.asset_check_key.name == "subledgers_reconcile_to_gl"]
    assert not reconciliation.passed and f"{COMPANY} {PERIOD} AP (account 2400): -250.00" in reconciliation.description
    published_again = {e.asset_key for e in second.get_asset_materialization_events()}
    assert mart_asset_key(mart_table("period_close")) in published_again
    assert tableau_asset_key(mart_table("period_close")) not in published_again
    assert frame_from_hyper(tableau.datasource_path("period_close")).equals(close)


def _assert_balances_and_reconciles(close: pd.DataFrame) -> None:
    """Debits equal credits, closing = opening + debits - credits, AP and AR equal the GL."""
    assert len(close) > 5
    assert close["debits_base_currency"].sum() == close["credits_base_currency"].sum()
    assert (close["closing_balance_base_currency"] == close["opening_balance_base_currency"]
            + close["debits_base_currency"] - close["credits_base_currency"]).all()
    lines = close[close["control_ledger"].notna()]
    assert sorted(lines["control_ledger"]) == ["AP", "AR"]
    assert (lines["reconciliation_difference_base_currency"] == 0).all()
    assert (lines["subledger_open_balance_base_currency"] != 0).all()


def _manual_entry_on_ap(sandbox: VismaSandbox, amount: Decimal) -> dict:
    """A manual batch of PERIOD moving `amount` from the bank to the AP control account, with no document."""
    template = next(b for b in sandbox.records(COMPANY, "journal_transactions")
                    if b["module"] == "ModuleGL" and b["financialPeriod"] == PERIOD)
    roles, line = sandbox.company(COMPANY).profile.roles, template["journalTransactionLines"][0]
    zero = Decimal(0)
    return {**template, "batchNumber": "900001", "journalTransactionLines": [
        {**line, "lineNumber": 1, "accountNumber": roles["bank"], "debitAmount": amount,
         "debitAmountInCurrency": amount, "creditAmount": zero, "creditAmountInCurrency": zero},
        {**line, "lineNumber": 2, "accountNumber": roles["ap"], "debitAmount": zero,
         "debitAmountInCurrency": zero, "creditAmount": amount, "creditAmountInCurrency": amount}]}


def _an_invoice_of(sandbox: VismaSandbox, period_id: str) -> tuple[str, str]:
    record = next(r for r in sandbox.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == period_id)
    return record["documentType"], record["referenceNumber"]
