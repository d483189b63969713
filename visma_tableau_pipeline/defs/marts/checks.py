"""Asset checks an accountant trusts, run on the extracts as written.

Every table: no duplicate keys (Tableau upserts by key, so a duplicate would double a row).
GL: every journal batch balances, in document and base currency. Aging: the snapshot reconciles
to the open balances of the invoice table it was built from. Close: the AP and AR subledgers'
open balances equal their GL control accounts at every period end (`period_close`). (Freshness of the Visma
entities is their FreshnessPolicy, in defs/visma/assets.py.)

Statements: the P&L result equals the GL's income and expense movement, the balance sheet
balances at every period end, actual cash equals the payments, expected cash the open balances.

All but the last are blocking: each failure means numbers in Tableau that are wrong, so the Tableau data
source downstream is not published in that run (nor later by its automation condition, see
defs/tableau/assets.py). A failure says what is wrong in its description (keys, amounts) and
keeps examples in its metadata. Expected cash is a warning: a projection, compared with invoice
tables that may have been built on another day.
"""

from collections.abc import Iterable, Sequence
from datetime import date

import dagster as dg
import pandas as pd

from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.resources import StateResource
from visma_tableau_pipeline.marts.aging import DAILY, aging_differences
from visma_tableau_pipeline.marts.cash_flow import actual_cash_differences, expected_cash_differences
from visma_tableau_pipeline.marts.decimals import decimal_totals
from visma_tableau_pipeline.marts.gl import unbalanced_journal_batches
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.period_close import unreconciled
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable, duplicate_keys, mart_table
from visma_tableau_pipeline.marts.statements import balance_sheet_differences, gl_result_differences

EXAMPLES = 5  # rows named in a failure's description; the metadata table holds ten


def read_extract(state: StateResource, name: str) -> pd.DataFrame | None:
    """The extract `name` as last written (here or on another machine), or None before its first
    materialization."""
    path = state.extract(name)
    return frame_from_hyper(path) if path.exists() else None


def _missing(name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description=f"{name}.hyper has not been written yet")


def _examples(rows: Iterable[str], total: int) -> str:
    """The first few of `total` problems, for a description a user can act on."""
    listed = list(rows)[:EXAMPLES]
    return "; ".join(listed) + (f"; and {total - len(listed)} more" if total > len(listed) else "")


def _examples_table(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(10).astype(str).to_markdown(index=False))


def _unique_keys_check(table: MartTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=mart_asset_key(table), name="unique_keys", blocking=True,
        description=f"No two rows share the key ({', '.join(table.key)}).",
    )
    def _check(state: StateResource) -> dg.AssetCheckResult:
        """Blocking: Tableau upserts by this key, so a duplicate doubles or drops a row there."""
        frame = read_extract(state, table.name)
        if frame is None:
            return _missing(table.name)
        duplicates = duplicate_keys(table, frame)
        keys = duplicates[list(table.key)].astype(str).drop_duplicates()
        return dg.AssetCheckResult(
            passed=duplicates.empty,
            description=f"every key of {table.name} is unique" if duplicates.empty else
            f"{len(duplicates)} rows of {table.name} share a key ({', '.join(table.key)}) with "
            "another row: "
            + _examples((" ".join(key) for key in keys.itertuples(index=False)), len(keys)),
            metadata={"duplicate_rows": len(duplicates), "examples": _examples_table(duplicates)},
        )

    return _check


@dg.asset_check(
    asset=mart_asset_key(mart_table("gl_transactions")), blocking=True,
    description="Every journal batch balances: debits equal credits, in both currencies.",
)
def journal_batches_balance(state: StateResource) -> dg.AssetCheckResult:
    """Blocking: an unbalanced batch makes every GL total built from it wrong in Tableau."""
    frame = read_extract(state, "gl_transactions")
    if frame is None:
        return _missing("gl_transactions")
    unbalanced = unbalanced_journal_batches(frame)
    return dg.AssetCheckResult(
        passed=unbalanced.empty,
        description="every journal batch balances" if unbalanced.empty else
        f"{len(unbalanced)} journal batches do not balance (debit minus credit): " + _examples((
            f"{row.company_id} {row.module} {row.batch_number}: {row.difference_doc_currency} "
            f"document currency, {row.difference_base_currency} base currency"
            for row in unbalanced.itertuples()), len(unbalanced)),
        metadata={"unbalanced_batches": len(unbalanced), "examples": _examples_table(unbalanced)},
    )


def _snapshot_built(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, aging: pd.DataFrame,
                    company_ids: Sequence[str]) -> tuple[date, str, list[str]]:
    """(day, kind, companies) of the snapshot the table's latest materialization built, which
    this check reconciles: a snapshot built earlier was right for the balances of its own day.
    Before any materialization it names the newest daily snapshot of every company."""
    event = context.instance.get_latest_materialization_event(key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if "snapshot_date" in metadata:
        return (date.fromisoformat(metadata["snapshot_date"].value), metadata["snapshot_kind"].value,
                str(metadata["snapshot_companies"].value).split(", "))
    daily = aging[aging["snapshot_kind"] == DAILY]
    as_of = daily["snapshot_date"].max() if not daily.empty else date.today()
    return as_of, DAILY, list(company_ids)


def _aging_reconciles(aging_name: str, invoices_name: str, company_ids: Sequence[str]) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=mart_asset_key(mart_table(aging_name)), name="reconciles_to_open_invoices",
        additional_deps=[mart_asset_key(mart_table(invoices_name))], blocking=True,
        description=f"The {aging_name} snapshot built last (daily or close) totals the open balances in "
        f"{invoices_name}, per company, to the cent (base currency).",
    )
    def _check(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
        """Blocking: an aging that does not match the subledger shows finance a payable or
        receivable that is not the one in its ledger."""
        aging, invoices = read_extract(state, aging_name), read_extract(state, invoices_name)
        if aging is None or invoices is None:
            return _missing(aging_name if aging is None else invoices_name)
        as_of, kind, companies = _snapshot_built(context, mart_asset_key(mart_table(aging_name)), aging, company_ids)
        aging = aging[(aging["snapshot_kind"] == kind) & aging["company_id"].isin(companies)]
        invoices = invoices[invoices["company_id"].isin(companies)]
        differences = aging_differences(aging, invoices, as_of)
        by_company = dict(decimal_totals(differences, ["company_id"], ["difference_base_currency"])
                          .itertuples(index=False))
        return dg.AssetCheckResult(
            passed=differences.empty,
            description=f"the {aging_name} {kind} snapshot of {as_of} matches the open {invoices_name}"
            if differences.empty else
            f"the {aging_name} {kind} snapshot of {as_of} differs from the open {invoices_name} "
            "(aged minus open, base currency): "
            + ", ".join(f"{company} {difference}" for company, difference in by_company.items())
            + "; documents: " + _examples((
                f"{row.company_id} {row.document_type} {row.reference_number} aged "
                f"{row.aged_base_currency}, open {row.open_base_currency}"
                for row in differences.itertuples()), len(differences)),
            metadata={
                "snapshot_date": str(as_of),
                "snapshot_kind": kind,
                "difference_by_company": {str(c): str(d) for c, d in by_company.items()},
                "documents_differing": len(differences),
                "examples": _examples_table(differences),
            },
        )

    return _check


@dg.asset_check(
    asset=mart_asset_key(mart_table("period_close")), blocking=True,
    description="Subledgers equal the GL: per company and period, the AP open balance (supplier "
    "documents open at the period end) equals the supplier ledger's control account, and the AR "
    "open balance the customer ledger's, to the cent in base currency.",
)
def subledgers_reconcile_to_gl(state: StateResource) -> dg.AssetCheckResult:
    """Blocking: a payable or receivable that is not the one in the GL means the close is wrong
    (a document not posted, a manual entry on a control account), and a close must not be
    published until a controller has found it."""
    frame = read_extract(state, "period_close")
    if frame is None:
        return _missing("period_close")
    differing = unreconciled(frame)
    return dg.AssetCheckResult(
        passed=differing.empty,
        description="every AP and AR subledger equals its control account at every period end"
        if differing.empty else
        f"{len(differing)} subledger balances differ from their GL control accounts (subledger minus GL, "
        "base currency): " + _examples((
            f"{row.company_id} {row.financial_period} {row.control_ledger} (account {row.account_number}): "
            f"{row.reconciliation_difference_base_currency}, subledger {row.subledger_open_balance_base_currency}, "
            f"GL {row.gl_control_balance_base_currency}"
            for row in differing.itertuples()), len(differing)),
        metadata={
            "differences": len(differing),
            "difference_by_company_period_ledger": {
                f"{row.company_id} {row.financial_period} {row.control_ledger}":
                    str(row.reconciliation_difference_base_currency) for row in differing.itertuples()},
            "examples": _examples_table(differing),
        },
    )


def _extracts(state: StateResource, *names: str) -> tuple[list[pd.DataFrame], dg.AssetCheckResult | None]:
    """The extracts `names`, or the failure that names the first one not yet written."""
    frames = [read_extract(state, name) for name in names]
    missing = next((name for name, frame in zip(names, frames, strict=True) if frame is None), None)
    return [frame for frame in frames if frame is not None], None if missing is None else _missing(missing)


def _differences_result(differing: pd.DataFrame, agree: str, differ: str, by: list[str],
                        columns: list[str], how: str = "table minus source") -> dg.AssetCheckResult:
    """Passed when `differing` (from `decimals.total_differences`) is empty; else `differ`, each
    group with its differences (`how` they are taken), the first few named in the description."""
    described = (" ".join(str(getattr(row, name)) for name in by) + ": "
                 + ", ".join(f"{column} {getattr(row, column + '_difference')}" for column in columns)
                 for row in differing.itertuples(index=False))
    return dg.AssetCheckResult(
        passed=differing.empty,
        description=agree if differing.empty else f"{len(differing)} {differ} ({how}): "
        + _examples(described, len(differing)),
        metadata={"differences": len(differing),
                  "difference_by_group": {" ".join(str(getattr(row, name)) for name in by):
                                          {column: str(getattr(row, column + "_difference")) for column in columns}
                                          for row in differing.head(50).itertuples(index=False)},
                  "examples": _examples_table(differing)},
    )


@dg.asset_check(
    asset=mart_asset_key(mart_table("profit_and_loss")), blocking=True,
    additional_deps=[mart_asset_key(mart_table("gl_balances"))],
    description="The P&L result of every company and period equals the GL's net movement (credits minus "
    "debits) on its income and expense accounts in gl_balances, to the cent in base currency.",
)
def result_equals_gl_movement(state: StateResource) -> dg.AssetCheckResult:
    """Blocking: a P&L that does not add up to the GL shows finance a result the books do not have."""
    frames, missing = _extracts(state, "profit_and_loss", "gl_balances")
    if missing:
        return missing
    return _differences_result(gl_result_differences(*frames), "every period's P&L result equals the GL's",
                               "company periods' P&L results differ from the GL's net income and expense movement",
                               ["company_id", "financial_period"], ["result_base_currency"])


@dg.asset_check(
    asset=mart_asset_key(mart_table("balance_sheet")), blocking=True,
    description="At every period end of every company, assets equal liabilities and equity plus the "
    "year's result to date, to the cent in base currency.",
)
def balances_at_every_period_end(state: StateResource) -> dg.AssetCheckResult:
    """Blocking: a balance sheet that does not balance is missing an account or a result."""
    frame = read_extract(state, "balance_sheet")
    if frame is None:
        return _missing("balance_sheet")
    return _differences_result(balance_sheet_differences(frame), "the balance sheet balances at every period end",
                               "period ends do not balance", ["company_id", "financial_period"],
                               ["closing_balance_base_currency"],
                               "assets minus liabilities, equity and result, base currency")


@dg.asset_check(
    asset=mart_asset_key(mart_table("cash_flow")), blocking=True,
    additional_deps=[mart_asset_key(mart_table("customer_payments")), mart_asset_key(mart_table("supplier_payments"))],
    description="Actual cash in and out per company, period and currency equals the customer and supplier "
    "payments of the period, to the cent in document and base currency.",
)
def actual_cash_equals_payments(state: StateResource) -> dg.AssetCheckResult:
    """Blocking: cash that is not the payments' is cash the bank did not see."""
    frames, missing = _extracts(state, "cash_flow", "customer_payments", "supplier_payments")
    if missing:
        return missing
    cash, customer, supplier = frames
    differing = actual_cash_differences(cash, {"customer_payments": customer, "supplier_payments": supplier})
    return _differences_result(differing, "actual cash equals the payments of every period",
                               "company periods' actual cash differs from their payments",
                               ["company_id", "financial_period", "currency"],
                               ["amount_doc_currency", "amount_base_currency"])


@dg.asset_check(
    asset=mart_asset_key(mart_table("cash_flow")), blocking=False,
    additional_deps=[mart_asset_key(mart_table("ap_invoices")), mart_asset_key(mart_table("ar_invoices"))],
    description="Expected cash per company and currency equals the open balances of ar_invoices (in) and "
    "ap_invoices (out) due within 13 weeks of its as-of day, to the cent in document and base currency.",
)
def expected_cash_equals_open_balances(state: StateResource) -> dg.AssetCheckResult:
    """A warning, not blocking: expected cash is a projection, and the invoice tables it is held to
    may have been built on another day than the cash flow; a difference tells a user to look, while
    the actual cash stays delivered."""
    frames, missing = _extracts(state, "cash_flow", "ap_invoices", "ar_invoices")
    if missing:
        return missing
    return _differences_result(expected_cash_differences(*frames), "expected cash equals the open balances",
                               "companies' expected cash differs from their open balances",
                               ["company_id", "currency"], ["amount_doc_currency", "amount_base_currency"])


def mart_checks(company_ids: Sequence[str]) -> list[dg.AssetChecksDefinition]:
    """Every check on the dashboard tables; the aging ones reconcile these companies' snapshots."""
    return [
        *(_unique_keys_check(table) for table in MART_TABLES),
        journal_batches_balance,
        _aging_reconciles("ap_aging", "ap_invoices", company_ids),
        _aging_reconciles("ar_aging", "ar_invoices", company_ids),
        subledgers_reconcile_to_gl,
        result_equals_gl_movement,
        balances_at_every_period_end,
        actual_cash_equals_payments,
        expected_cash_equals_open_balances,
    ]
