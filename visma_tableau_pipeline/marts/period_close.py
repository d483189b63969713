"""The month-end close: the trial balance per company, period and account, and the AP and AR
subledgers reconciled to their GL control accounts. All in base currency, to the cent.

Every period, not only closed ones, is built in every run: a controller watches the open month's
trial balance and reconciliation move towards the close, and a closed period's rows change only if
Visma's GL for it changes (a reopened period), which is exactly when a controller must see it.
`period_closed` says whether the period is closed in the general ledger. The close run builds the
same table after its full re-read of the closed period, so its rows are the close's numbers.

Trial balance (from `/v2/generalLedgerBalance`, actual balances summed over branches and
subaccounts): `opening_balance` is the period's beginning balance, `debits` and `credits` its
movements, `closing_balance` = opening + debits - credits (debit positive; income and expense
accounts open each fiscal year at zero, as Visma's balances do).

Reconciliation (rows of the control accounts, `controlAccountModule` AP or AR): the subledger's
open balance at the period end, the control account's closing balance in the subledger's sign
(AP: credit positive, AR: debit positive), and `reconciliation_difference` = subledger - GL.

Open at a period end: a document of that period or earlier, with its balance now plus what
payments applied after the period end paid of it (payment lines in document currency). In base
currency that is the document's `balanceInCurrency` when no later payment exists, its base total
when later payments paid all that is now settled, and otherwise the open document amount at the
document's own base/document ratio, rounded half up to the cent (partial payments after the
period end: the rule written here, as Visma posts applications at the document's rate).
Payments of documents the store does not hold are left out, and so are their documents' amounts.

The rule reads tables, not records: the documents (`ap_invoices`, `ar_invoices`), the payment
lines (`supplier_payment_lines`, `customer_payment_lines`) and the GL balances (`gl_balances`),
with the chart of accounts and the financial periods. A build from the records makes those
tables from the records (`build_period_close`: a first build, and the reference); a nightly run
derives the table from their extracts (`period_close_of`, `marts/registry.py` `FromExtracts`),
reading the few columns it needs, so that its cost and memory follow those columns rather than
every record decoded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, NamedTuple

import pandas as pd

from visma_tableau_pipeline.marts.ap import SUPPLIER_PAYMENT_LINES, build_ap_invoices
from visma_tableau_pipeline.marts.ar import CUSTOMER_PAYMENT_LINES, build_ar_invoices
from visma_tableau_pipeline.marts.decimals import EXACT, decimal_totals
from visma_tableau_pipeline.marts.fields import boolean, text
from visma_tableau_pipeline.marts.gl import GL_BALANCES
from visma_tableau_pipeline.marts.inputs import MartInputs, Record
from visma_tableau_pipeline.marts.schema import BOOL, MONEY, TEXT, RejectedValue, TableSchema, columns

_CENT = Decimal("0.01")
_RATIO = Context(prec=40)  # a document amount at its base/document ratio, rounded to the cent after
LEDGERS = ("AP", "AR")  # controlAccountModule values this table reconciles

PERIOD_CLOSE = TableSchema("period_close", columns(
    ("company_id", TEXT), ("financial_period", TEXT), ("period_closed", BOOL),
    ("account_number", TEXT), ("account_description", TEXT), ("account_type", TEXT),
    ("control_ledger", TEXT),
    ("opening_balance_base_currency", MONEY), ("debits_base_currency", MONEY),
    ("credits_base_currency", MONEY), ("closing_balance_base_currency", MONEY),
    ("subledger_open_balance_base_currency", MONEY), ("gl_control_balance_base_currency", MONEY),
    ("reconciliation_difference_base_currency", MONEY),
))

# The columns the rule reads of each table it is built from.
DOCUMENT_COLUMNS = ("company_id", "document_type", "reference_number", "financial_period", "sign",
                    "amount_doc_currency", "amount_base_currency", "balance_doc_currency", "balance_base_currency")
PAYMENT_LINE_COLUMNS = ("company_id", "document_type", "document_reference_number", "financial_period",
                        "amount_paid_doc_currency")
BALANCE_COLUMNS = ("company_id", "financial_period", "account_number", "balance_type",
                   "beginning_balance_base_currency", "period_debit_base_currency", "period_credit_base_currency")
ACTUAL = "Actual"  # the balance type of the trial balance (a balance without a type counts as actual)


@dataclass(frozen=True)
class _Ledger:
    """Where one subledger's documents and payment lines are, and how its amounts read."""

    name: str
    documents: str  # document table (amounts signed, see `marts/signs.py`)
    payment_lines: str
    gl_sign: int  # +1: the control account's debit balance is what the subledger says is open
    no_base_total: tuple[str, str]  # (field, why) a document without a base total is held back for


_SUBLEDGERS = (
    _Ledger("AP", "ap_invoices", "supplier_payment_lines", -1,
            ("amount", "its detail and VAT totals do not add up to it, so it has no base total")),
    _Ledger("AR", "ar_invoices", "customer_payment_lines", 1, ("amountInCurrency", "it has no base total")),
)
TABLES_READ = ("gl_balances", *(name for ledger in _SUBLEDGERS for name in (ledger.documents, ledger.payment_lines)))


class _Document(NamedTuple):
    """A document's amounts as Visma gives them (unsigned; a missing amount None)."""

    company_id: str
    period: str
    sign: int
    balance: Decimal | None
    balance_base: Decimal | None
    amount: Decimal | None
    amount_base: Decimal | None


def _open_base(document: _Document, ledger: _Ledger, paid_later: Decimal) -> Decimal:
    """The document's open balance in base currency when `paid_later` (document currency) was
    still to be paid (see the module docstring), signed as the AP and AR tables sign it."""
    balance, total = document.balance or Decimal(0), document.amount or Decimal(0)
    if paid_later == 0:
        value = document.balance_base or Decimal(0)
    elif balance + paid_later == total and document.amount_base is not None:
        value = document.amount_base
    elif document.amount_base is None or total == 0:
        # the record cannot say what was open in base currency then: a record error, so the
        # build holds the document back with this reason and reconciles the rest
        field, why = ledger.no_base_total if total else ("amount", "a zero amount gives no rate")
        raise RejectedValue(field, document.amount if field == "amount" else document.amount_base,
                            f"paid after a period end, but {why}: what was open at that period end cannot be "
                            "converted to base currency")
    else:
        with localcontext(_RATIO):
            value = ((balance + paid_later) * document.amount_base / total).quantize(_CENT, ROUND_HALF_UP)
    return document.sign * value


def _values(column: pd.Series) -> list[Any]:
    """A column's values as Python objects, a missing one None."""
    return [None if pd.isna(value) else value for value in column.astype(object)]


def _unsigned(amounts: pd.Series, signs: list[int]) -> list[Decimal | None]:
    return [None if value is None else sign * value for value, sign in zip(_values(amounts), signs, strict=True)]


def _document_key(frame: pd.DataFrame, type_column: str, reference_column: str) -> pd.Series:
    """The document a row names, as one text (a missing part empty, as the store's keys have it)."""
    return (frame["company_id"].astype(object).fillna("").astype(str) + "\x00"
            + frame[type_column].astype(object).fillna("").astype(str) + "\x00"
            + frame[reference_column].astype(object).fillna("").astype(str))


def _open_balance_changes(documents: pd.DataFrame, lines: pd.DataFrame,
                          ledger: _Ledger) -> dict[tuple[str, str], Decimal]:
    """What the ledger's open balance in base currency changes by, per (company, period): at each
    document's period, and at the period of each payment applied to it after that.

    A document no payment line pays after its period is open by its base balance from its
    period on: those are summed as columns. The others (paid in a later period) change at each
    later payment's period, by `_open_base` before and after it."""
    documents = documents[documents["financial_period"].notna()].reset_index(drop=True)
    keys = _document_key(documents, "document_type", "reference_number")
    unique = ~keys.duplicated(keep="last").to_numpy()  # a key the table holds twice (a missing part): the last
    documents, keys = documents[unique].reset_index(drop=True), keys[unique].reset_index(drop=True)
    own = pd.Series(documents["financial_period"].astype(str).to_numpy(), index=keys.to_numpy())
    paid = pd.DataFrame({"document": _document_key(lines, "document_type", "document_reference_number"),
                         "period": lines["financial_period"].astype(object).fillna("").astype(str),
                         "paid": lines["amount_paid_doc_currency"]})
    paid = paid[paid["document"].isin(own.index)]
    paid = paid[(paid["period"] > own.reindex(paid["document"]).to_numpy()).to_numpy()]
    later = decimal_totals(paid, ["document", "period"], ["paid"])  # sorted by document, then period
    paid_later = keys.isin(later["document"]).to_numpy()

    changes: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    simple = documents[~paid_later]
    with localcontext(EXACT):
        for row in decimal_totals(simple, ["company_id", "financial_period"], ["balance_base_currency"]).itertuples():
            changes[(str(row.company_id), str(row.financial_period))] += row.balance_base_currency
        for document, payments in _paid_later(documents[paid_later], keys[paid_later], later):
            previous = Decimal(0)
            for point, still_to_pay in payments:
                value = _open_base(document, ledger, still_to_pay)
                changes[(document.company_id, point)] += value - previous
                previous = value
    return changes


def _paid_later(documents: pd.DataFrame, keys: pd.Series, later: pd.DataFrame,
                ) -> list[tuple[_Document, list[tuple[str, Decimal]]]]:
    """Each document with its points: its own period and each later payment's, with what was
    still to be paid after each (summed in the caller's `EXACT` context)."""
    signs = [int(sign) for sign in documents["sign"].fillna(1)]
    amounts = [_unsigned(documents[column], signs) for column in
               ("balance_doc_currency", "balance_base_currency", "amount_doc_currency", "amount_base_currency")]
    found = {key: _Document(str(company), str(period), sign, *values) for key, company, period, sign, *values
             in zip(keys, documents["company_id"], documents["financial_period"], signs, *amounts, strict=True)}
    by_document: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for key, period, amount in zip(later["document"], later["period"], later["paid"], strict=True):
        by_document[key].append((period, amount))
    result = []
    for key, payments in by_document.items():
        document = found[key]
        still_to_pay = sum((amount for _, amount in payments), Decimal(0))
        points = [(document.period, still_to_pay)]
        for period, amount in payments:
            still_to_pay -= amount
            points.append((period, still_to_pay))
        result.append((document, points))
    return result


def subledger_open_balances(tables: Mapping[str, pd.DataFrame],
                            periods: dict[str, list[str]]) -> dict[tuple[str, str, str], Decimal]:
    """Open balance in base currency per (company, ledger, period) at each of `periods`' ends
    (per company, sorted YYYYPP), from the document and payment line tables (`TABLES_READ`)."""
    open_at: dict[tuple[str, str, str], Decimal] = {}
    for ledger in _SUBLEDGERS:
        changes = _open_balance_changes(tables[ledger.documents], tables[ledger.payment_lines], ledger)
        for company, company_periods in periods.items():
            points = sorted((period, change) for (owner, period), change in changes.items() if owner == company)
            running, taken = Decimal(0), 0
            with localcontext(EXACT):
                for period in company_periods:
                    while taken < len(points) and points[taken][0] <= period:
                        running += points[taken][1]
                        taken += 1
                    open_at[(company, ledger.name, period)] = running
    return open_at


def actual_balances(gl_balances: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `gl_balances` table the trial balance sums (`BALANCE_COLUMNS` of actual balances)."""
    actual = gl_balances["balance_type"].astype(object).fillna("").isin([ACTUAL, ""])
    return gl_balances.loc[actual.to_numpy(), list(BALANCE_COLUMNS)].reset_index(drop=True)


def actual_balances_query(as_of: date, unchanged: str) -> str:
    """`actual_balances` as SQL over the `gl_balances` extract (and `unchanged`)."""
    return (f"SELECT {_selected(BALANCE_COLUMNS)} FROM {{extract}} WHERE (t.balance_type IS NULL OR "
            f"t.balance_type IN ('{ACTUAL}', '')) AND {unchanged}")


def documents_query(as_of: date, unchanged: str) -> str:
    """The `DOCUMENT_COLUMNS` of every row of a document extract (and `unchanged`), as SQL."""
    return f"SELECT {_selected(DOCUMENT_COLUMNS)} FROM {{extract}} WHERE {unchanged}"


def payment_lines_query(as_of: date, unchanged: str) -> str:
    """The `PAYMENT_LINE_COLUMNS` of every row of a payment line extract (and `unchanged`), as SQL."""
    return f"SELECT {_selected(PAYMENT_LINE_COLUMNS)} FROM {{extract}} WHERE {unchanged}"


def document_columns(documents: pd.DataFrame) -> pd.DataFrame:
    """The `DOCUMENT_COLUMNS` of document rows (what `documents_query` reads)."""
    return documents[list(DOCUMENT_COLUMNS)]


def payment_line_columns(lines: pd.DataFrame) -> pd.DataFrame:
    """The `PAYMENT_LINE_COLUMNS` of payment line rows (what `payment_lines_query` reads)."""
    return lines[list(PAYMENT_LINE_COLUMNS)]


def _selected(names: tuple[str, ...]) -> str:
    return ", ".join(f"t.{name}" for name in names)


def trial_balance_of(gl_balances: pd.DataFrame) -> pd.DataFrame:
    """Actual GL balances per company, period and account, in base currency: opening, debits and
    credits summed over branches and subaccounts, of `gl_balances` rows. A missing period or
    account is an empty text, as the table's key has it."""
    actual = actual_balances(gl_balances)
    frame = pd.DataFrame({
        **{name: actual[name].astype(object).fillna("").astype(str) for name in
           ("company_id", "financial_period", "account_number")},
        "opening": actual["beginning_balance_base_currency"], "debits": actual["period_debit_base_currency"],
        "credits": actual["period_credit_base_currency"]})
    return decimal_totals(frame, ["company_id", "financial_period", "account_number"], ["opening", "debits", "credits"])


def trial_balance(inputs: MartInputs) -> pd.DataFrame:
    """`trial_balance_of` the GL balance records (the statements read the same totals)."""
    return trial_balance_of(GL_BALANCES.build(inputs))


def chart_of_accounts(inputs: MartInputs) -> dict[tuple[str, str], Record]:
    """Each company's accounts by (company, account number; empty when missing)."""
    return {(str(a.get("company_id", "")), text(a, "accountCD") or ""): a for a in inputs.of("gl_accounts")}


def tables_of(inputs: MartInputs) -> dict[str, pd.DataFrame]:
    """The tables the close is built from (`TABLES_READ`), made from the records."""
    return {"ap_invoices": build_ap_invoices(inputs), "ar_invoices": build_ar_invoices(inputs),
            "supplier_payment_lines": SUPPLIER_PAYMENT_LINES.build(inputs),
            "customer_payment_lines": CUSTOMER_PAYMENT_LINES.build(inputs), "gl_balances": GL_BALANCES.build(inputs)}


def build_period_close(inputs: MartInputs) -> pd.DataFrame:
    """The trial balance and the subledger reconciliation per company, period and account."""
    return period_close_of(tables_of(inputs), inputs)


def period_close_of(tables: Mapping[str, pd.DataFrame], inputs: MartInputs) -> pd.DataFrame:
    """The close of the tables it reads (`TABLES_READ`, whole or the columns it needs), the
    chart of accounts and financial periods from `inputs`."""
    accounts = chart_of_accounts(inputs)
    closed = {(str(p.get("company_id", "")), text(p, "period")): bool(boolean(p, "closedInGeneralLedger"))
              for p in inputs.of("financial_periods")}
    totals = trial_balance_of(tables["gl_balances"])
    periods: dict[str, list[str]] = defaultdict(list)
    for company, period in sorted(set(zip(totals["company_id"], totals["financial_period"], strict=True))):
        periods[company].append(period)
    open_at = subledger_open_balances(tables, periods)
    rows = []
    with localcontext(EXACT):
        for row in totals.itertuples(index=False):
            account = accounts.get((row.company_id, row.account_number)) or {}
            ledger = text(account, "controlAccountModule") or ""
            closing = row.opening + row.debits - row.credits
            reconciled: dict[str, Decimal | None] = dict.fromkeys(
                ("subledger_open_balance_base_currency", "gl_control_balance_base_currency",
                 "reconciliation_difference_base_currency"))
            if ledger in LEDGERS:
                subledger = open_at.get((row.company_id, ledger, row.financial_period), Decimal(0))
                control = closing * next(s.gl_sign for s in _SUBLEDGERS if s.name == ledger)
                reconciled = {"subledger_open_balance_base_currency": subledger,
                              "gl_control_balance_base_currency": control,
                              "reconciliation_difference_base_currency": subledger - control}
            rows.append({
                "company_id": row.company_id, "financial_period": row.financial_period,
                "period_closed": closed.get((row.company_id, row.financial_period)),
                "account_number": row.account_number, "account_description": text(account, "description"),
                "account_type": text(account, "type"), "control_ledger": ledger or None,
                "opening_balance_base_currency": row.opening, "debits_base_currency": row.debits,
                "credits_base_currency": row.credits, "closing_balance_base_currency": closing,
                **reconciled,
            })
    return PERIOD_CLOSE.frame(rows)


def reconciliation_lines(period_close: pd.DataFrame) -> pd.DataFrame:
    """The control-account rows: company, period, ledger, subledger, GL and difference."""
    lines = period_close[period_close["control_ledger"].isin(LEDGERS)]
    return lines[["company_id", "financial_period", "control_ledger", "account_number",
                  "subledger_open_balance_base_currency", "gl_control_balance_base_currency",
                  "reconciliation_difference_base_currency"]].reset_index(drop=True)


def unreconciled(period_close: pd.DataFrame) -> pd.DataFrame:
    """Reconciliation lines whose subledger and control account differ (empty when they agree)."""
    lines = reconciliation_lines(period_close)
    return lines[lines["reconciliation_difference_base_currency"].fillna(0) != 0].reset_index(drop=True)


def trial_balance_totals(period_close: pd.DataFrame) -> pd.DataFrame:
    """Debits and credits per company and period, as exact Decimals, with their difference."""
    totals = decimal_totals(period_close, ["company_id", "financial_period"],
                            ["debits_base_currency", "credits_base_currency"])
    with localcontext(EXACT):
        totals["difference_base_currency"] = totals["debits_base_currency"] - totals["credits_base_currency"]
    return totals
