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
"""

from __future__ import annotations

from bisect import insort
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

import pandas as pd

from visma_tableau_pipeline.marts.ap import ap_document_total_base
from visma_tableau_pipeline.marts.decimals import EXACT, decimal_totals
from visma_tableau_pipeline.marts.fields import amount, boolean, financial_period, lenient_period, text
from visma_tableau_pipeline.marts.inputs import MartInputs, Record
from visma_tableau_pipeline.marts.schema import BOOL, MONEY, TEXT, RejectedValue, TableSchema, columns
from visma_tableau_pipeline.marts.signs import AP_NEGATIVE_DOCUMENT_TYPES, AR_NEGATIVE_DOCUMENT_TYPES, document_sign

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


@dataclass(frozen=True)
class _Ledger:
    """Where one subledger's documents and payments are, and how its amounts read."""

    name: str
    documents: tuple[str, ...]
    payments: str
    line_type: str  # payment line field naming the document type
    line_reference: str  # payment line field naming the document's reference number
    negative_types: frozenset[str]
    gl_sign: int  # +1: the control account's debit balance is what the subledger says is open
    no_base_total: tuple[str, str]  # (field, why) a document without a base total is held back for

    def base_total(self, document: Record) -> Decimal | None:
        if self.name == "AP":
            return ap_document_total_base(document)
        return amount(document, "amountInCurrency")


_SUBLEDGERS = (
    _Ledger("AP", ("supplier_invoices",), "supplier_payments", "docType", "invoiceRefNbr",
            AP_NEGATIVE_DOCUMENT_TYPES, -1,
            ("amount", "its detail and VAT totals do not add up to it, so it has no base total")),
    _Ledger("AR", ("customer_invoices", "customer_credit_notes"), "customer_payments", "documentType", "refNbr",
            AR_NEGATIVE_DOCUMENT_TYPES, 1,
            ("amountInCurrency", "it has no base total")),
)


def _open_base(document: Record, ledger: _Ledger, paid_later: Decimal) -> Decimal:
    """The document's open balance in base currency when `paid_later` (document currency) was
    still to be paid (see the module docstring), signed as the AP and AR tables sign it."""
    balance = amount(document, "balance") or Decimal(0)
    balance_base = amount(document, "balanceInCurrency") or Decimal(0)
    total, total_base = amount(document, "amount") or Decimal(0), ledger.base_total(document)
    sign = document_sign(text(document, "documentType"), ledger.negative_types)
    if paid_later == 0:
        value = balance_base
    elif balance + paid_later == total and total_base is not None:
        value = total_base
    elif total_base is None or total == 0:
        # the record cannot say what was open in base currency then: a record error, so the
        # build holds the document back with this reason and reconciles the rest
        field, why = ledger.no_base_total if total else ("amount", "a zero amount gives no rate")
        raise RejectedValue(field, document.get(field), f"paid after a period end, but {why}: what was open at "
                                                        "that period end cannot be converted to base currency")
    else:
        with localcontext(_RATIO):
            value = ((balance + paid_later) * total_base / total).quantize(_CENT, ROUND_HALF_UP)
    return sign * value


def subledger_open_balances(inputs: MartInputs, periods: dict[str, list[str]]) -> dict[tuple[str, str, str], Decimal]:
    """Open balance in base currency per (company, ledger, period) at each of `periods`' ends
    (per company, sorted YYYYPP)."""
    open_at: dict[tuple[str, str, str], Decimal] = {}
    for ledger in _SUBLEDGERS:
        paid: dict[tuple[str, str, str], list[tuple[str, Decimal]]] = defaultdict(list)
        for payment in inputs.of(ledger.payments):
            period = lenient_period(text(payment, "applicationPeriod"))
            for line in payment.get("paymentLines") or []:
                key = (str(payment.get("company_id", "")), text(line, ledger.line_type) or "",
                       text(line, ledger.line_reference) or "")
                paid[key].append((period or "", amount(line, "amountPaid") or Decimal(0)))
        changes: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # (company, period) -> change
        for name in ledger.documents:
            for document in inputs.of(name):
                company = str(document.get("company_id", ""))
                _document_changes(document, ledger, paid[(company, text(document, "documentType") or "",
                                                         text(document, "referenceNumber") or "")], company, changes)
        for company, company_periods in periods.items():
            running = Decimal(0)
            with localcontext(EXACT):
                for period in company_periods:
                    running += changes.get((company, period), Decimal(0))
                    open_at[(company, ledger.name, period)] = running
    return open_at


def _document_changes(document: Record, ledger: _Ledger, payments: list[tuple[str, Decimal]], company: str,
                      changes: dict[tuple[str, str], Decimal]) -> None:
    """Add what the document's open balance changes by at its period and at each later payment's."""
    own_period = financial_period(document)
    if own_period is None:
        return
    points = [own_period]
    for period, _ in payments:
        if period > own_period and period not in points:
            insort(points, period)
    previous = Decimal(0)
    with localcontext(EXACT):
        for point in points:
            paid_later = sum((paid for period, paid in payments if period > point), Decimal(0))
            value = _open_base(document, ledger, paid_later)
            changes[(company, point)] += value - previous
            previous = value


def trial_balance(inputs: MartInputs) -> pd.DataFrame:
    """Actual GL balances per company, period and account, in base currency: opening, debits and
    credits summed over branches and subaccounts (the statements read the same totals)."""
    rows = [{
        "company_id": str(balance.get("company_id", "")),
        "financial_period": text(balance, "financialPeriod"),
        "account_number": text(balance, "account.number"),
        "opening": amount(balance, "beginningBalanceInCurrency") or Decimal(0),
        "debits": amount(balance, "periodToDateDebitInCurrency") or Decimal(0),
        "credits": amount(balance, "periodToDateCreditInCurrency") or Decimal(0),
    } for balance in inputs.of("gl_balances") if (text(balance, "balanceType") or "Actual") == "Actual"]
    frame = pd.DataFrame(rows, columns=["company_id", "financial_period", "account_number", "opening", "debits",
                                        "credits"])
    return decimal_totals(frame, ["company_id", "financial_period", "account_number"], ["opening", "debits", "credits"])


def chart_of_accounts(inputs: MartInputs) -> dict[tuple[str, str | None], Record]:
    """Each company's accounts by (company, account number)."""
    return {(str(a.get("company_id", "")), text(a, "accountCD")): a for a in inputs.of("gl_accounts")}


def build_period_close(inputs: MartInputs) -> pd.DataFrame:
    """The trial balance and the subledger reconciliation per company, period and account."""
    accounts = chart_of_accounts(inputs)
    closed = {(str(p.get("company_id", "")), text(p, "period")): bool(boolean(p, "closedInGeneralLedger"))
              for p in inputs.of("financial_periods")}
    totals = trial_balance(inputs)
    periods: dict[str, list[str]] = defaultdict(list)
    for company, period in sorted(set(zip(totals["company_id"], totals["financial_period"], strict=True))):
        periods[company].append(period)
    open_at = subledger_open_balances(inputs, periods)
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
