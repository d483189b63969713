"""Cash flow: cash received and paid, and the cash open invoices are expected to bring.

Per company, day, currency and kind, one row per (source, document or payment type, bank account,
payment method):

- `actual`: customer payments (cash in) and supplier payments (cash out) on their application
  date, in document currency and in base currency. Visma's SupplierPaymentDto carries no base
  amount, so a supplier payment's base amount is known only when it is in the base currency
  (as in the `supplier_payments` table); otherwise the row's base amount is empty.
- `expected`: open AR documents (in) and open AP documents (out), their open balance on their due
  date, for due dates up to 13 weeks after the as-of day; an overdue document is expected on the
  as-of day itself. `as_of_date` says when the expectation was made.

Signs make a running balance a plain sum: cash in positive, cash out negative (`CASH_SIGNS` per
payment type; an AR credit note or AP debit adjustment expected with its document's own sign).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal, localcontext

import pandas as pd

from visma_tableau_pipeline.marts.decimals import EXACT, total_differences
from visma_tableau_pipeline.marts.fields import amount, day, field, lenient_period, text
from visma_tableau_pipeline.marts.inputs import MartInputs, Record
from visma_tableau_pipeline.marts.schema import DATE, INT, MONEY, TEXT, TableSchema, columns
from visma_tableau_pipeline.marts.signs import AP_NEGATIVE_DOCUMENT_TYPES, AR_NEGATIVE_DOCUMENT_TYPES, document_sign

ACTUAL, EXPECTED = "actual", "expected"
HORIZON = timedelta(weeks=13)  # how far ahead expected cash reaches
# Which way each payment type moves cash (types without one move none: credit notes, write-offs)
CASH_SIGNS: dict[str, dict[str, int]] = {
    "customer_payments": {"Payment": 1, "Prepayment": 1, "VoidRefund": 1, "Refund": -1, "VoidPayment": -1},
    "supplier_payments": {"Payment": -1, "Prepayment": -1, "VoidRefund": -1, "Refund": 1, "VoidPayment": 1},
}
# Open documents by ledger: (entities, due date field, types with a negative balance, cash sign)
_OPEN_DOCUMENTS = (
    (("customer_invoices", "customer_credit_notes"), "documentDueDate", AR_NEGATIVE_DOCUMENT_TYPES, 1),
    (("supplier_invoices",), "dueDate", AP_NEGATIVE_DOCUMENT_TYPES, -1),
)

KEY = ("company_id", "cash_date", "cash_kind", "source", "document_type", "currency", "cash_account",
       "payment_method")
CASH_FLOW = TableSchema("cash_flow", columns(
    ("company_id", TEXT), ("cash_date", DATE), ("financial_period", TEXT), ("cash_kind", TEXT),
    ("source", TEXT), ("document_type", TEXT), ("currency", TEXT), ("cash_account", TEXT),
    ("payment_method", TEXT), ("amount_doc_currency", MONEY), ("amount_base_currency", MONEY),
    ("documents", INT), ("as_of_date", DATE),
))


def horizon_end(as_of: date) -> date:
    """The last due date expected cash covers."""
    return as_of + HORIZON


def _payments(inputs: MartInputs) -> Iterable[tuple[tuple, Decimal, Decimal | None, str | None]]:
    """(key, signed amount, signed base amount or None, period) of every payment that moves cash."""
    for source, signs in CASH_SIGNS.items():
        for payment in inputs.of(source):
            sign = signs.get(text(payment, "type") or "")
            if sign is None:
                continue
            if source == "customer_payments":
                currency, method = text(payment, "currency"), text(payment, "paymentMethod.id")
                base = amount(payment, "paymentAmountInCurrency")
            else:
                currency, method = text(payment, "currency.id"), text(payment, "paymentMethod")
                base = amount(payment, "paymentAmount") if field(payment, "currency.isBaseCurrency") else None
            key = (str(payment.get("company_id", "")), day(payment, "applicationDate"), ACTUAL, source,
                   text(payment, "type"), currency, text(payment, "cashAccount"), method)
            value = amount(payment, "paymentAmount") or Decimal(0)
            yield key, sign * value, None if base is None else sign * base, lenient_period(
                text(payment, "applicationPeriod"))


def _open_documents(inputs: MartInputs, periods: dict[str, list[tuple[date, date, str]]]
                    ) -> Iterable[tuple[tuple, Decimal, Decimal | None, str | None]]:
    """(key, signed open balance, signed base balance, period) of every open document due by
    the horizon, on the day its cash is expected."""
    as_of, last = inputs.as_of, horizon_end(inputs.as_of)
    for entities, due_field, negative_types, cash_sign in _OPEN_DOCUMENTS:
        for source in entities:
            for document in inputs.of(source):
                balance = amount(document, "balance") or Decimal(0)
                due = day(document, due_field)
                if balance == 0 or due is None or due > last:
                    continue
                company, expected_on = str(document.get("company_id", "")), max(due, as_of)
                sign = cash_sign * document_sign(text(document, "documentType"), negative_types)
                base = amount(document, "balanceInCurrency")
                key = (company, expected_on, EXPECTED, source, text(document, "documentType"),
                       text(document, "currencyId"), None, text(document, "paymentMethod.id"))
                yield key, sign * balance, None if base is None else sign * base, _period_of(
                    periods.get(company, []), expected_on)


def _period_of(periods: list[tuple[date, date, str]], moment: date) -> str | None:
    return next((period for start, end, period in periods if start <= moment <= end), None)


def build_cash_flow(inputs: MartInputs) -> pd.DataFrame:
    """Actual and expected cash per company, day, currency, source, type, bank account and method."""
    periods: dict[str, list[tuple[date, date, str]]] = {}
    for record in inputs.of("financial_periods"):
        start, end, period = day(record, "startDate"), day(record, "endDate"), text(record, "period")
        if start and end and period:
            periods.setdefault(str(record.get("company_id", "")), []).append((start, end, period))
    groups: dict[tuple, Record] = {}
    with localcontext(EXACT):
        for key, value, base, period in (*_payments(inputs), *_open_documents(inputs, periods)):
            row = groups.setdefault(key, {**dict(zip(KEY, key, strict=True)), "financial_period": period,
                                          "amount_doc_currency": Decimal(0), "amount_base_currency": Decimal(0),
                                          "documents": 0, "as_of_date": inputs.as_of if key[2] == EXPECTED else None})
            row["amount_doc_currency"] += value
            known = row["amount_base_currency"] is not None and base is not None
            row["amount_base_currency"] = row["amount_base_currency"] + base if known else None
            row["documents"] += 1
    return CASH_FLOW.frame(groups[key] for key in sorted(groups, key=lambda key: tuple(str(part) for part in key)))


_COMPARED = ["amount_doc_currency", "amount_base_currency"]


def actual_cash_differences(cash_flow: pd.DataFrame, payments: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Company periods and currencies whose actual cash differs from the payments of the period
    (the `customer_payments` and `supplier_payments` tables by name, signed by `CASH_SIGNS`), in
    document and base currency; empty when they agree."""
    by = ["company_id", "financial_period", "currency"]
    signed = []
    for source, frame in payments.items():
        signs = frame["payment_type"].map(CASH_SIGNS[source])
        moving = frame[signs.notna()]
        with localcontext(EXACT):
            signed.append(pd.DataFrame({
                **{column: moving[column].tolist() for column in by},
                **{column: [None if pd.isna(value) else int(sign) * value for value, sign in
                            zip(moving[column].astype(object), signs[signs.notna()], strict=True)]
                   for column in _COMPARED}}))
    actual = cash_flow[cash_flow["cash_kind"] == ACTUAL]
    return total_differences(actual, pd.concat(signed, ignore_index=True), by, _COMPARED)


def expected_cash_differences(cash_flow: pd.DataFrame, ap_invoices: pd.DataFrame,
                              ar_invoices: pd.DataFrame) -> pd.DataFrame:
    """Companies and currencies whose expected cash differs from the open balances, due by the
    horizon of the rows' as-of day, of the `ap_invoices` (out) and `ar_invoices` (in) tables, in
    document and base currency; empty when they agree (or nothing is expected yet)."""
    expected = cash_flow[cash_flow["cash_kind"] == EXPECTED]
    as_of = expected["as_of_date"].max()
    if pd.isna(as_of):
        return pd.DataFrame(columns=["company_id", "currency"])
    by = ["company_id", "currency"]
    sources = []
    for frame, cash_sign in ((ar_invoices, 1), (ap_invoices, -1)):
        due = frame[(frame["balance_doc_currency"].fillna(0) != 0) & frame["due_date"].notna()
                    & (frame["due_date"] <= horizon_end(as_of))]
        sources.append(pd.DataFrame({
            **{column: due[column].tolist() for column in by},
            "amount_doc_currency": [cash_sign * value for value in due["balance_doc_currency"].astype(object)],
            "amount_base_currency": [None if pd.isna(value) else cash_sign * value
                                     for value in due["balance_base_currency"].astype(object)]}))
    return total_differences(expected, pd.concat(sources, ignore_index=True), by, _COMPARED)
