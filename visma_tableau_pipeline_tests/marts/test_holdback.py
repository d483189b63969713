"""Holding back: a record a table cannot convert is left out with its reason; the rest is built."""

from __future__ import annotations

from decimal import Decimal

import pytest

from visma_tableau_pipeline.marts.holdback import build_holding_back
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.marts.schema import RejectedValue, money_value
from visma_tableau_pipeline_tests.marts.test_tables import (
    AS_OF,
    JOURNAL_BATCH,
    SUBACCOUNT_DIMENSION,
    supplier_invoice,
    visma,
)


@pytest.mark.parametrize(("sent", "kept"), [
    ("12.34", "12.34"), ("-0.05", "-0.05"), ("100", "100.00"),
    ("0.30000000000000004", "0.30"),  # 0.1 + 0.2 as a double
    ("1234.5600000000002", "1234.56"), ("-7.1499999999999995", "-7.15"),
    ("9999999999999999.99", "9999999999999999.99"),
])
def test_amounts_keep_their_cents_and_lose_only_a_double_s_noise(sent: str, kept: str) -> None:
    assert money_value(Decimal(sent), "amount") == Decimal(kept)


@pytest.mark.parametrize(("sent", "reason"), [
    ("100.005", "below the cent"), ("0.001", "below the cent"), ("1E+16", "too large"),
    ("-1.7976931348623157E+308", "too large"), ("NaN", "not a finite number"),
])
def test_amounts_a_cents_column_cannot_hold_are_refused_not_rounded(sent: str, reason: str) -> None:
    with pytest.raises(RejectedValue, match=reason) as refused:
        money_value(Decimal(sent), "amount")
    assert refused.value.field == "amount" and str(refused.value.value) == str(Decimal(sent))


def test_one_bad_invoice_is_held_with_field_value_and_reason_and_the_others_built() -> None:
    good, dated, rated = supplier_invoice("1"), supplier_invoice("2"), supplier_invoice("3")
    dated["date"] = "yesterday"
    rated["exchangeRate"] = "1,02"
    frame, held = build_holding_back(mart_table("ap_invoices"),
                                     MartInputs({"supplier_invoices": [good, dated, rated]}, AS_OF))
    assert frame["reference_number"].tolist() == ["1"]
    assert {(h.key, h.field, h.value) for h in held} == {
        ("Invoice|2", "date", "'yesterday'"), ("Invoice|3", "exchangeRate", "'1,02'")}
    assert all(h.company_id == "c1" and h.entity == "supplier_invoices" and h.reason for h in held)


def test_a_bad_lookup_record_is_found_and_held_too() -> None:
    broken = {**visma(SUBACCOUNT_DIMENSION), "segments": {"id": "x"}}  # an object, not a list
    frame, held = build_holding_back(
        mart_table("gl_transactions"),
        MartInputs({"journal_transactions": [visma(JOURNAL_BATCH)], "dimensions": [broken]}, AS_OF))
    assert len(frame) == 3  # the journal lines arrive, without the segment descriptions
    assert [(h.entity, h.key) for h in held] == [("dimensions", "SUBACCOUNT")]


def test_a_clean_build_holds_nothing() -> None:
    frame, held = build_holding_back(mart_table("ap_invoices"),
                                     MartInputs({"supplier_invoices": [supplier_invoice("1")]}, AS_OF))
    assert len(frame) == 1 and held == []


def _paid_later(document: dict, payments: str, line: dict) -> dict[str, list[dict]]:
    """`document` (of 202501) and a payment of 60 applied in 202502, after the period end."""
    payment = {"company_id": "c1", "type": "Payment", "refNbr": f"P{document['referenceNumber']}",
               "applicationPeriod": "202502", "paymentLines": [{**line, "amountPaid": Decimal("60.00")}]}
    return {payments: [payment]}


def test_documents_paid_after_a_period_end_without_a_base_total_are_held_and_the_close_built() -> None:
    """One AP and one AR document that period_close cannot convert, each failing every build of
    the other's entity: both are held back with field and reason, the rest of the close built."""
    ar = {"company_id": "c1", "documentType": "Invoice", "referenceNumber": "A1", "financialPeriod": "202501",
          "amount": Decimal("100.00"), "balance": Decimal("40.00"), "balanceInCurrency": Decimal("460.00")}
    ap = {**supplier_invoice("S1", balance="40.00", period="202501"), "vatTotal": Decimal("10.00")}
    good = supplier_invoice("S2", period="202501")
    balances = [{"company_id": "c1", "financialPeriod": period, "balanceType": "Actual", "account": {"number": "1500"},
                 "beginningBalanceInCurrency": Decimal(0), "periodToDateDebitInCurrency": Decimal(0),
                 "periodToDateCreditInCurrency": Decimal(0)} for period in ("202501", "202502")]
    records = {"customer_invoices": [ar], "supplier_invoices": [ap, good], "gl_balances": balances,
               **_paid_later(ar, "customer_payments", {"documentType": "Invoice", "refNbr": "A1"}),
               **_paid_later(ap, "supplier_payments", {"docType": "Invoice", "invoiceRefNbr": "S1"})}
    frame, held = build_holding_back(mart_table("period_close"), MartInputs(records, AS_OF))
    assert len(frame) == 2
    assert {(h.entity, h.key, h.field) for h in held} == {
        ("customer_invoices", "Invoice|A1", "amountInCurrency"), ("supplier_invoices", "Invoice|S1", "amount")}
    assert all("paid after a period end" in h.reason and h.table == "period_close" for h in held)
