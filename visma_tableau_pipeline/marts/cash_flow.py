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

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal, localcontext

import pandas as pd

from visma_tableau_pipeline.marts.ap import SUPPLIER_PAYMENTS, build_ap_invoices
from visma_tableau_pipeline.marts.ar import CUSTOMER_PAYMENTS, build_ar_invoices
from visma_tableau_pipeline.marts.decimals import EXACT, total_differences
from visma_tableau_pipeline.marts.fields import day, text
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.schema import DATE, INT, MONEY, TEXT, TableSchema, columns
from visma_tableau_pipeline.marts.signs import AR_NEGATIVE_DOCUMENT_TYPES

ACTUAL, EXPECTED = "actual", "expected"
HORIZON = timedelta(weeks=13)  # how far ahead expected cash reaches
# Which way each payment type moves cash (types without one move none: credit notes, write-offs)
CASH_SIGNS: dict[str, dict[str, int]] = {
    "customer_payments": {"Payment": 1, "Prepayment": 1, "VoidRefund": 1, "Refund": -1, "VoidPayment": -1},
    "supplier_payments": {"Payment": -1, "Prepayment": -1, "VoidRefund": -1, "Refund": 1, "VoidPayment": 1},
}
# Open documents by ledger: (document table, cash sign, source entity of a document type). An AR
# document listed by both customer entities counts once (as in `ar_invoices`), under its type's entity.
_OPEN_DOCUMENTS: tuple[tuple[str, int, Callable[[str], str]], ...] = (
    ("ar_invoices", 1,
     lambda kind: "customer_credit_notes" if kind in AR_NEGATIVE_DOCUMENT_TYPES else "customer_invoices"),
    ("ap_invoices", -1, lambda kind: "supplier_invoices"),
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


def build_cash_flow(inputs: MartInputs) -> pd.DataFrame:
    """Actual and expected cash per company, day, currency, source, type, bank account and method."""
    return cash_flow_of({
        "customer_payments": CUSTOMER_PAYMENTS.build(inputs), "supplier_payments": SUPPLIER_PAYMENTS.build(inputs),
        "ar_invoices": build_ar_invoices(inputs), "ap_invoices": build_ap_invoices(inputs),
    }, inputs)


def cash_flow_of(tables: Mapping[str, pd.DataFrame], inputs: MartInputs) -> pd.DataFrame:
    """Cash flow of the payment and document tables (whole, or the rows of them it needs: the
    payments, and documents with a balance due by the horizon), periods from `inputs`.

    Column-wise from the tables rather than from the records, so that it can be derived from
    their extracts (`marts/registry.py`, `FromExtracts`) as well as built from the records.
    """
    parts = [_actual(tables[source], source, signs) for source, signs in CASH_SIGNS.items()]
    periods = _periods(inputs)
    parts += [_expected(tables[name], inputs.as_of, cash_sign, source_of, periods)
              for name, cash_sign, source_of in _OPEN_DOCUMENTS]
    parts = [part for part in parts if len(part)]
    if not parts:
        return CASH_FLOW.frame([])
    rows = pd.concat(parts, ignore_index=True)
    with localcontext(EXACT):
        grouped = rows.groupby(list(KEY), dropna=False, sort=True).agg(
            financial_period=("financial_period", "max"),
            amount_doc_currency=("amount_doc_currency", "sum"),
            amount_base_currency=("amount_base_currency", "sum"),
            base_known=("amount_base_currency", "count"),
            documents=("amount_doc_currency", "size"),
            as_of_date=("as_of_date", "first"),
        ).reset_index()
    # a sum in base currency is known only when every amount in it is
    grouped["amount_base_currency"] = grouped["amount_base_currency"].where(
        grouped["base_known"] == grouped["documents"])
    return CASH_FLOW.conform(grouped)


def payments_query(as_of: date, unchanged: str) -> str:
    """The payments of a payment extract that move cash (and `unchanged`), as SQL."""
    types = ", ".join(f"'{kind}'" for kind in sorted({kind for signs in CASH_SIGNS.values() for kind in signs}))
    return f"SELECT * FROM {{extract}} WHERE t.payment_type IN ({types}) AND {unchanged}"


def documents_due_query(as_of: date, unchanged: str) -> str:
    """The documents of a document extract with a balance due by the horizon (and `unchanged`), as SQL."""
    return ("SELECT * FROM {extract} WHERE t.balance_doc_currency <> 0 AND t.due_date IS NOT NULL "
            f"AND t.due_date <= DATE '{horizon_end(as_of).isoformat()}' AND {unchanged}")


def _actual(payments: pd.DataFrame, source: str, signs: Mapping[str, int]) -> pd.DataFrame:
    """Payments that move cash, signed, on their application date."""
    sign = payments["payment_type"].map(signs)
    moving, sign = payments[sign.notna()], sign[sign.notna()].astype("int64")
    return pd.DataFrame({
        "company_id": moving["company_id"], "cash_date": moving["application_date"], "cash_kind": ACTUAL,
        "source": source, "document_type": moving["payment_type"], "currency": moving["currency"],
        "cash_account": moving["cash_account"], "payment_method": moving["payment_method"],
        "financial_period": moving["financial_period"],
        "amount_doc_currency": _times(moving["amount_doc_currency"].fillna(Decimal(0)), sign),
        "amount_base_currency": _times(moving["amount_base_currency"], sign),
        "as_of_date": pd.NaT,
    })


def _expected(documents: pd.DataFrame, as_of: date, cash_sign: int, source_of: Callable[[str], str],
              periods: _Periods) -> pd.DataFrame:
    """Documents with a balance due by the horizon, on the day their cash is expected (an overdue
    one on the as-of day), signed by the way their cash moves."""
    due = documents[documents["balance_doc_currency"].fillna(0).ne(0) & documents["due_date"].notna()
                    & (documents["due_date"] <= horizon_end(as_of)).fillna(False).astype(bool)]
    expected_on = due["due_date"].where(due["due_date"] > as_of, as_of)
    return pd.DataFrame({
        "company_id": due["company_id"], "cash_date": expected_on, "cash_kind": EXPECTED,
        "source": due["document_type"].map(source_of), "document_type": due["document_type"],
        "currency": due["currency"], "cash_account": None, "payment_method": due["payment_method"],
        "financial_period": [periods.of(company, day) for company, day in zip(due["company_id"], expected_on,
                                                                               strict=True)],
        "amount_doc_currency": _times(due["balance_doc_currency"], cash_sign),
        "amount_base_currency": _times(due["balance_base_currency"], cash_sign),
        "as_of_date": as_of,
    })


def _times(amounts: pd.Series, sign: pd.Series | int) -> pd.Series:
    """Amounts times a sign, exactly (Decimals; a null stays null)."""
    signs = sign.tolist() if isinstance(sign, pd.Series) else [sign] * len(amounts)
    return pd.Series([None if pd.isna(value) else value * factor
                      for value, factor in zip(amounts.astype(object), signs, strict=True)],
                     index=amounts.index, dtype=MONEY.dtype)


class _Periods:
    """Which financial period holds a day, per company (expected cash has no period of its own)."""

    def __init__(self, periods: dict[str, list[tuple[date, date, str]]]) -> None:
        self._periods = periods

    def of(self, company: str, moment: date) -> str | None:
        return next((period for start, end, period in self._periods.get(company, []) if start <= moment <= end), None)


def _periods(inputs: MartInputs) -> _Periods:
    periods: dict[str, list[tuple[date, date, str]]] = {}
    for record in inputs.of("financial_periods"):
        start, end, period = day(record, "startDate"), day(record, "endDate"), text(record, "period")
        if start and end and period:
            periods.setdefault(str(record.get("company_id", "")), []).append((start, end, period))
    return _Periods(periods)


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
