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
