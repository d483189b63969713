"""Every asset check of the Definitions, run by Dagster on the data it checks: the bundled Visma
sandbox read into a state store, the dashboard tables built from it as Hyper extracts.

Good data passes every check; wrong data (a duplicated row, an unbalanced journal batch, an
aging row that does not match its invoice) fails the check with the keys and amounts in its
description; and a failed blocking check keeps the Tableau data source from being published.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from visma_tableau_pipeline.companies import resolved_companies
from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
from visma_tableau_pipeline.defs.tableau.entitlements import DIRECTORY_KEY
from visma_tableau_pipeline.marts.hyper import frame_from_hyper, write_hyper
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.tableau.pat import PatUsageFile
from visma_tableau_pipeline.visma.plan import sync_all
from visma_tableau_pipeline_tests.defs.conftest import serving_tableau

COMPANY = "nordic-no"
SETTINGS_TO_CLEAR = ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "TABLEAU_SERVER_URL",
                     "VTP_CONFIG", "VTP_ENTITLEMENTS")


@dataclass
class Built:
    """The sandbox, its VTP_HOME after one run of everything below the Visma entities, that run."""

    sandbox: VismaSandbox
    home: Path
    result: dg.ExecuteInProcessResult
    entity_checks: dg.ExecuteInProcessResult  # the checks on the Visma entities, on that store


def _point_at(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTP_HOME", str(home))
    get_settings.cache_clear()


def _downstream_of_visma() -> list[dg.AssetKey]:
    graph = defs().resolve_asset_graph()
    return sorted(key for key in graph.get_all_asset_keys() if key.path[0] != "visma")


@pytest.fixture(autouse=True)
def fresh_settings_after() -> Iterator[None]:
    """Tests here point the settings elsewhere; the next test reads its own again."""
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Sync the sandbox into a state store, then materialize every dashboard table, the
    entitlements and the (unconfigured) Tableau data sources in one run, with every check."""
    home = tmp_path_factory.mktemp("checks") / "vtp"
    with VismaSandbox(40, seed=5) as sandbox, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("VTP_SANDBOX_URL", sandbox.base_url)
        for name in SETTINGS_TO_CLEAR:
            monkeypatch.delenv(name, raising=False)
        _point_at(home, monkeypatch)
        sync_all(get_settings(), resolved_companies(get_settings()), defs().resources["state"].db())
        selection = _downstream_of_visma()
        result = defs().resolve_implicit_job_def_def_for_assets(selection).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), asset_selection=selection, raise_on_error=False)
        entity_checks = dg.materialize(
            [*defs().assets, *defs().asset_checks], resources=defs().resources,
            selection=dg.AssetSelection.checks(*(key for key in defs().resolve_asset_graph().asset_check_keys
                                                 if key.asset_key.path[0] == "visma")),
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        yield Built(sandbox, home, result, entity_checks)
    get_settings.cache_clear()


@pytest.fixture
def copy_of_built(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Built:
    """The built VTP_HOME copied, for a test that spoils its data, with the settings on it."""
    home = tmp_path / "vtp"
    shutil.copytree(built.home, home)
    monkeypatch.setenv("VTP_SANDBOX_URL", built.sandbox.base_url)
    for name in SETTINGS_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    _point_at(home, monkeypatch)
    return Built(built.sandbox, home, built.result, built.entity_checks)


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]:
    return {event.event_specific_data.asset_check_key: event.event_specific_data
            for event in result.all_events if event.event_type_value == "ASSET_CHECK_EVALUATION"}


def _run_check(key: dg.AssetCheckKey) -> dg.AssetCheckEvaluation:
    """Run one check alone, as the UI's "Execute" on a check does, on the extracts as they are."""
    result = dg.materialize(
        [*defs().assets, *defs().asset_checks], selection=dg.AssetSelection.checks(key),
        resources=defs().resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    return _evaluations(result)[key]


def _check_key(table: str, name: str) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(mart_asset_key(mart_table(table)), name)


def _extract(name: str) -> pd.DataFrame:
    return frame_from_hyper(get_settings().extracts_dir / f"{name}.hyper")


def _is_data_source(key: dg.AssetKey) -> bool:
    """A Tableau data source asset (skipped without Tableau); the directory is read, not published."""
    return key.path[0] == "tableau" and key != DIRECTORY_KEY


def test_every_check_of_the_definitions_runs_on_the_sandbox_data_and_passes(built: Built):
    """A new check without a test shows up here: every check in the Definitions must run in one
    materialization of the tables it checks, and pass on the sandbox's (correct) data. With no
    Tableau configured the data sources are skipped, and so are their checks."""
    evaluations = {**_evaluations(built.result), **_evaluations(built.entity_checks)}
    crashed = [event.event_specific_data.error.to_string()
               for run in (built.result, built.entity_checks) for event in run.get_step_failure_events()]
    expected = {key for key in defs().resolve_asset_graph().asset_check_keys if not _is_data_source(key.asset_key)}
    assert set(evaluations) == expected, crashed
    failed = {str(key): evaluation.description for key, evaluation in evaluations.items()
              if not evaluation.passed}
    assert not failed
    assert built.result.success
    materialized = {event.asset_key for event in built.result.get_asset_materialization_events()}
    assert materialized == {key for key in _downstream_of_visma() if not _is_data_source(key)}


def test_the_checks_ran_on_real_rows(built: Built, monkeypatch: pytest.MonkeyPatch):
    """The checks above passed on tables that hold what they check, not on empty ones."""
    _point_at(built.home, monkeypatch)
    for aging_name, invoices_name in (("ap_aging", "ap_invoices"), ("ar_aging", "ar_invoices")):
        aging = _extract(aging_name)
        assert aging["company_id"].nunique() == 2, aging_name
        assert aging["currency"].nunique() > 2, f"{aging_name} holds no foreign-currency documents"
        evaluation = _evaluations(built.result)[_check_key(aging_name, "reconciles_to_open_invoices")]
        assert f"matches the open {invoices_name}" in evaluation.description
    assert (_extract("ar_aging")["open_balance_base_currency"] < 0).any(), "no open credit notes"
    assert _extract("gl_transactions")["batch_number"].nunique() > 10


def test_the_aging_check_compares_base_currency_and_names_the_document(copy_of_built: Built):
    """An aging row whose base-currency balance does not match its invoice fails the check with
    the company's difference and the document. (Before, this check crashed on pandas 3 with
    "Decimal precision out of range [1, 38]: 39", and compared document-currency amounts
    across currencies with the credit notes' sign applied twice.)"""
    aging = _extract("ap_aging")
    row = aging.index[(aging["company_id"] == COMPANY) & (aging["currency"] != "NOK")][0]
    document = aging.loc[row, "reference_number"]
    aging.loc[row, "open_balance_base_currency"] += Decimal("0.01")
    write_hyper(aging, get_settings().extracts_dir, "ap_aging")

    evaluation = _run_check(_check_key("ap_aging", "reconciles_to_open_invoices"))

    assert not evaluation.passed
    assert f"{COMPANY} 0.01" in evaluation.description
    assert document in evaluation.description
    assert evaluation.metadata["difference_by_company"].value == {COMPANY: "0.01"}


def test_a_document_missing_from_the_aging_fails_the_check(copy_of_built: Built):
    aging = _extract("ar_aging")
    dropped = aging[aging["company_id"] == COMPANY].iloc[0]
    write_hyper(aging.drop(index=dropped.name), get_settings().extracts_dir, "ar_aging")

    evaluation = _run_check(_check_key("ar_aging", "reconciles_to_open_invoices"))

    assert not evaluation.passed
    assert f"{COMPANY} {-dropped['open_balance_base_currency']}" in evaluation.description
    assert f"{dropped['reference_number']} aged 0, open {dropped['open_balance_base_currency']}" \
        in evaluation.description


def test_a_duplicated_row_fails_unique_keys_naming_the_key(copy_of_built: Built):
    suppliers = _extract("suppliers")
    write_hyper(suppliers.iloc[[*range(len(suppliers)), 0]], get_settings().extracts_dir, "suppliers")

    evaluation = _run_check(_check_key("suppliers", "unique_keys"))

    assert not evaluation.passed
    first = suppliers.iloc[0]
    assert "2 rows of suppliers share a key (company_id, supplier_number)" in evaluation.description
    assert f"{first['company_id']} {first['supplier_number']}" in evaluation.description


def _unbalance_a_batch(sandbox: VismaSandbox) -> dict:
    """Add one cent to a journal line's debit in Visma; returns the batch as it was."""
    batch = next(iter(sandbox.records(COMPANY, "journal_transactions")))

    def unbalanced(record: dict) -> dict:
        lines = [dict(line) for line in record["journalTransactionLines"]]
        lines[0]["debitAmount"] = lines[0]["debitAmount"] + Decimal("0.01")
        return {"journalTransactionLines": lines}

    sandbox.modify(COMPANY, "journal_transactions", (batch["module"], batch["batchNumber"]), unbalanced)
    return batch


def test_an_unbalanced_batch_fails_the_check_and_is_not_published(copy_of_built: Built, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    """The blocking check in action: Visma answers with a batch that does not balance; the
    journal is read and gl_transactions built, the check fails naming the batch and the cent,
    and the Tableau data source is published neither in that run nor by its automation
    condition after a run that built gl_transactions alone."""
    batch = _unbalance_a_batch(copy_of_built.sandbox)
    sync_all(get_settings(), resolved_companies(get_settings())[:1], defs().resources["state"].db())
    with serving_tableau(tmp_path, monkeypatch) as tableau:
        gl, published = mart_asset_key(mart_table("gl_transactions")), tableau_asset_key("gl_transactions")
        suppliers = mart_asset_key(mart_table("suppliers"))
        instance = dg.DagsterInstance.ephemeral()
        before = dg.evaluate_automation_conditions(defs=defs(), instance=instance)
        result = defs().resolve_implicit_job_def_def_for_assets([gl, published]).execute_in_process(
            instance=instance, asset_selection=[gl, published], raise_on_error=False)

        evaluation = _evaluations(result)[dg.AssetCheckKey(gl, "journal_batches_balance")]
        assert not evaluation.passed
        assert f"{COMPANY} {batch['module']} {batch['batchNumber']}: 0.01 document currency" \
            in evaluation.description
        materialized = {event.asset_key for event in result.get_asset_materialization_events()}
        assert gl in materialized and published not in materialized
        with pytest.raises(KeyError):
            tableau.datasource_path("gl_transactions")

        for alone in (gl, suppliers):  # as when the tables are built by a run of their own
            defs().resolve_implicit_job_def_def_for_assets([alone]).execute_in_process(
                instance=instance, asset_selection=[alone], raise_on_error=False)
        after = dg.evaluate_automation_conditions(defs=defs(), instance=instance, cursor=before.cursor)
        assert after.get_requested_partitions(tableau_asset_key("suppliers")) == {None}
        assert not after.get_requested_partitions(published)


@pytest.mark.parametrize(("days_unused", "passed", "severity"), [
    (1, True, dg.AssetCheckSeverity.WARN),
    (12, False, dg.AssetCheckSeverity.WARN),
    (16, False, dg.AssetCheckSeverity.ERROR),
])
def test_pat_expiry_warns_then_fails_as_the_cloud_pat_goes_unused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days_unused: int, passed: bool,
        severity: dg.AssetCheckSeverity):
    """Tableau Cloud revokes a PAT unused for 15 days: the check warns 5 days ahead, then fails."""
    for name, value in {"TABLEAU_SERVER_URL": "https://prod-uk-a.online.tableau.com", "TABLEAU_SITE": "nordic",
                        "TABLEAU_PAT_NAME": "vtp", "TABLEAU_PAT_SECRET": "secret",
                        "TABLEAU_DEPLOYMENT": "cloud"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VTP_SANDBOX_URL", "http://127.0.0.1:9")  # never read: the check asks only the file
    _point_at(tmp_path / "vtp", monkeypatch)
    PatUsageFile.under(get_settings().home).record_use("vtp", datetime.now(UTC) - timedelta(days=days_unused))

    evaluation = _run_check(dg.AssetCheckKey(tableau_asset_key("suppliers"), "pat_expiry"))

    assert evaluation.passed is passed
    assert evaluation.severity == severity
    if not passed:
        assert "'vtp'" in evaluation.description


def test_the_checks_that_guard_numbers_in_tableau_are_blocking():
    """Blocking: duplicate keys, unbalanced batches, an aging off its ledger, a subledger off its
    control account, unresolved entitlements, a P&L off the GL, a balance sheet that does not
    balance, actual cash off the payments (each means wrong or wrongly visible numbers in
    Tableau). Not blocking: expected cash off the open balances, a projection compared with
    invoice tables perhaps built on another day; the
    PAT's expiry, a warning about the next publish; records held back, a warning that the rest
    of the company was delivered; and Tableau's own refresh of a data source, which nothing of
    this project's is downstream of."""
    graph = defs().resolve_asset_graph()
    blocking = {key.name for key in graph.asset_check_keys if graph.get(key).blocking}
    warnings = {key.name for key in graph.asset_check_keys if not graph.get(key).blocking}
    assert blocking == {"unique_keys", "journal_batches_balance", "reconciles_to_open_invoices",
                        "subledgers_reconcile_to_gl", "entitlements_resolve", "result_equals_gl_movement",
                        "balances_at_every_period_end", "actual_cash_equals_payments"}
    assert warnings == {"pat_expiry", "no_records_held_back", "tableau_refresh", "expected_cash_equals_open_balances"}


def _post_to_the_ap_control_account(sandbox: VismaSandbox, amount: Decimal) -> str:
    """A manual batch in Visma that moves `amount` from the bank to the AP control account with
    no supplier document behind it (what a wrong manual entry does); returns its period."""
    template = next(b for b in sandbox.records(COMPANY, "journal_transactions") if b["module"] == "ModuleGL"
                    and b["financialPeriod"] == "202610")
    roles = sandbox.company(COMPANY).profile.roles
    line = template["journalTransactionLines"][0]
    lines = [{**line, "lineNumber": 1, "accountNumber": roles["bank"], "debitAmount": amount,
              "debitAmountInCurrency": amount, "creditAmount": Decimal(0), "creditAmountInCurrency": Decimal(0)},
             {**line, "lineNumber": 2, "accountNumber": roles["ap"], "debitAmount": Decimal(0),
              "debitAmountInCurrency": Decimal(0), "creditAmount": amount, "creditAmountInCurrency": amount}]
    sandbox.create(COMPANY, "journal_transactions", {**template, "batchNumber": "900001",
                                                     "journalTransactionLines": lines})
    return template["financialPeriod"]


def test_period_close_rows_balance_and_reconcile(built: Built, monkeypatch: pytest.MonkeyPatch):
    """The trial balance of every company and period balances, each account's closing balance is
    its opening balance plus debits minus credits, and AP and AR equal their control accounts."""
    _point_at(built.home, monkeypatch)
    close = _extract("period_close")
    assert close["company_id"].nunique() == 2 and close["financial_period"].nunique() > 12
    totals = close.groupby(["company_id", "financial_period"])[["debits_base_currency", "credits_base_currency"]].sum()
    assert (totals["debits_base_currency"] == totals["credits_base_currency"]).all()
    assert (close["closing_balance_base_currency"] == close["opening_balance_base_currency"]
            + close["debits_base_currency"] - close["credits_base_currency"]).all()
    lines = close[close["control_ledger"].notna()]
    assert set(zip(lines["company_id"], lines["control_ledger"])) == {
        (company, ledger) for company in ("nordic-no", "nordic-se") for ledger in ("AP", "AR")}
    assert (lines["subledger_open_balance_base_currency"] != 0).sum() > len(lines) // 2  # reconciled, not empty
    assert (lines["reconciliation_difference_base_currency"] == 0).all()
    evaluation = _evaluations(built.result)[_check_key("period_close", "subledgers_reconcile_to_gl")]
    assert evaluation.passed and "equals its control account" in evaluation.description


def test_a_manual_entry_on_the_ap_control_account_fails_the_reconciliation_and_is_not_published(
        copy_of_built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A GL line on the AP control account with no document: the subledger no longer equals the
    GL; the check names the company, period, ledger and amount, and period_close stays out of Tableau."""
    period = _post_to_the_ap_control_account(copy_of_built.sandbox, Decimal("123.45"))
    sync_all(get_settings(), resolved_companies(get_settings())[:1], defs().resources["state"].db())
    with serving_tableau(tmp_path, monkeypatch) as tableau:
        close, published = mart_asset_key(mart_table("period_close")), tableau_asset_key("period_close")
        result = defs().resolve_implicit_job_def_def_for_assets([close, published]).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), asset_selection=[close, published], raise_on_error=False)

        evaluation = _evaluations(result)[dg.AssetCheckKey(close, "subledgers_reconcile_to_gl")]
        assert not evaluation.passed
        assert f"{COMPANY} {period} AP (account 2400): -123.45" in evaluation.description
        assert evaluation.metadata["difference_by_company_period_ledger"].value == {f"{COMPANY} {period} AP": "-123.45"}
        materialized = {event.asset_key for event in result.get_asset_materialization_events()}
        assert close in materialized and published not in materialized
        with pytest.raises(KeyError):
            tableau.datasource_path("period_close")


STATEMENTS = ("cash_flow", "profit_and_loss", "balance_sheet")


def test_the_statements_hold_both_companies_and_their_checks_passed(built: Built, monkeypatch: pytest.MonkeyPatch):
    """Cash flow, P&L and balance sheet on the demo data: both companies, income positive and
    costs negative, a result line per period end, actual and expected cash; their checks passed."""
    _point_at(built.home, monkeypatch)
    pnl, sheet, cash = _extract("profit_and_loss"), _extract("balance_sheet"), _extract("cash_flow")
    assert pnl["company_id"].nunique() == sheet["company_id"].nunique() == cash["company_id"].nunique() == 2
    by_type = pnl.groupby(["company_id", "financial_period", "account_type"])["period_amount_base_currency"].sum()
    assert (by_type.xs("Income", level="account_type") > 0).all()
    assert (by_type.xs("Expense", level="account_type") < 0).all()
    assert pnl["same_period_last_year_base_currency"].notna().any()
    assert {"Asset", "Liability"} == set(sheet["account_type"].dropna())
    results = sheet[sheet["line_type"] == "result"]
    assert len(results) == len(sheet[["company_id", "financial_period"]].drop_duplicates())
    assert {"actual", "expected"} == set(cash["cash_kind"])
    assert (cash[cash["source"] == "customer_payments"]["amount_doc_currency"] > 0).any()
    assert (cash[cash["source"] == "supplier_payments"]["amount_doc_currency"] < 0).all()
    evaluations = _evaluations(built.result)
    for table, name, said in (("profit_and_loss", "result_equals_gl_movement", "equals the GL"),
                              ("balance_sheet", "balances_at_every_period_end", "balances at every period end"),
                              ("cash_flow", "actual_cash_equals_payments", "equals the payments"),
                              ("cash_flow", "expected_cash_equals_open_balances", "equals the open balances")):
        evaluation = evaluations[_check_key(table, name)]
        assert evaluation.passed and said in evaluation.description, (table, name)


def _spoil(name: str, row_filter: str) -> pd.Series:
    """Add one cent to the money column of the first row of extract `name` that `row_filter`
    (a pandas query) selects; returns that row as it was."""
    frame = _extract(name)
    column = {"profit_and_loss": "period_amount_base_currency", "balance_sheet": "closing_balance_base_currency",
              "cash_flow": "amount_base_currency"}[name]
    row = frame.query(row_filter).index[0]
    before = frame.loc[row].copy()
    frame.loc[row, column] += Decimal("0.01")
    if name == "cash_flow":
        frame.loc[row, "amount_doc_currency"] += Decimal("0.01")
    write_hyper(frame, get_settings().extracts_dir, name)
    return before


@pytest.mark.parametrize(("table", "check", "row_filter", "named"), [
    ("profit_and_loss", "result_equals_gl_movement", "account_type == 'Expense'",
     "{company_id} {financial_period}: result_base_currency 0.01"),
    ("balance_sheet", "balances_at_every_period_end", "statement_side == 'assets'",
     "{company_id} {financial_period}: closing_balance_base_currency 0.01"),
    ("cash_flow", "actual_cash_equals_payments", "cash_kind == 'actual' and currency == 'NOK'",
     "{company_id} {financial_period} NOK: amount_doc_currency 0.01, amount_base_currency 0.01"),
    ("cash_flow", "expected_cash_equals_open_balances", "cash_kind == 'expected' and currency == 'NOK'",
     "{company_id} NOK: amount_doc_currency 0.01, amount_base_currency 0.01"),
])
def test_a_cent_off_in_a_statement_fails_its_check_naming_where_and_how_much(
        copy_of_built: Built, table: str, check: str, row_filter: str, named: str):
    spoiled = _spoil(table, row_filter)

    evaluation = _run_check(_check_key(table, check))

    assert not evaluation.passed
    assert named.format(**spoiled.to_dict()) in evaluation.description


def test_the_statements_are_published_to_tableau(copy_of_built: Built, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    """Built, checked and published: each statement's Tableau data source holds its extract's rows."""
    with serving_tableau(tmp_path, monkeypatch) as tableau:
        selection = [key for table in STATEMENTS
                     for key in (mart_asset_key(mart_table(table)), tableau_asset_key(table))]
        result = defs().resolve_implicit_job_def_def_for_assets(selection).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), asset_selection=selection, raise_on_error=False)

        assert result.success
        assert all(evaluation.passed for evaluation in _evaluations(result).values())
        for table in STATEMENTS:
            published = frame_from_hyper(tableau.datasource_path(table))
            assert len(published) == len(_extract(table)) > 0, table
