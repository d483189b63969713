"""The column-wise build of one-row-per-record tables gives what the record-by-record build gives.

The record-by-record build (each value read by its getter) is the reference: its values, its
errors, and so the records held back. Records drawn from Visma's OpenAPI contract, and records
taken outside it, are built both ways, from dicts and from stored JSON texts; the frames must be
equal to the last digit and dtype, or both builds must fail with the same error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visma_tableau_pipeline.marts import ap, ar, gl, people
from visma_tableau_pipeline.marts.flat import BATCH
from visma_tableau_pipeline.marts.holdback import build_holding_back
from visma_tableau_pipeline.marts.inputs import MartInputs, StoredRecord
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.state.payloads import canonical_json
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline_tests.contract.openapi_records import malformed_records
from visma_tableau_pipeline_tests.contract.test_generated_records import PROFILE, SOURCE
from visma_tableau_pipeline_tests.marts.test_tables import AS_OF, supplier_invoice

Build = Callable[[MartInputs], pd.DataFrame]

# table -> (its rows' entity, its column-wise build, the record-by-record reference)
TABLES: dict[str, tuple[str, Build, Build]] = {
    "ar_invoices": ("customer_invoices", ar.build_ar_invoices, ar.build_ar_invoices_record_by_record),
    "gl_transactions": ("journal_transactions", gl.build_gl_transactions,
                        gl.build_gl_transactions_record_by_record),
    "gl_balances": ("gl_balances", gl.build_gl_balances, gl.build_gl_balances_record_by_record),
    **{table.name: (table.entity, table.build, table.build_record_by_record) for table in (
        ap.AP_INVOICES, ap.AP_INVOICE_LINES, ap.SUPPLIERS, ap.SUPPLIER_PAYMENTS, ap.PURCHASE_ORDERS,
        ap.PURCHASE_RECEIPTS, ar.CUSTOMERS, ar.CUSTOMER_PAYMENTS, gl.GL_ACCOUNTS, people.EMPLOYEES,
        people.TIMECARDS)},
}


def _outcome(build: Build, inputs: MartInputs) -> tuple[str, Any]:
    try:
        return "built", build(inputs)
    except Exception as error:  # the reference's own error is what must be matched
        return "failed", (type(error), str(error))


def _assert_same(name: str, records: dict[str, list[dict]]) -> None:
    """Both builds of `name`, from dicts and from their stored texts, against the reference."""
    _, columnwise, reference = TABLES[name]
    tagged = {source: [{**record, "company_id": "c1"} for record in listed] for source, listed in records.items()}
    expected = _outcome(reference, MartInputs(tagged, AS_OF))
    stored = {source: [StoredRecord("c1", canonical_json(record).encode()) for record in listed]
              for source, listed in records.items()}
    for inputs in (MartInputs(tagged, AS_OF), MartInputs(stored, AS_OF)):
        got = _outcome(columnwise, inputs)
        assert got[0] == expected[0], (got, expected)
        if got[0] == "failed":
            assert got[1] == expected[1]
        else:
            assert [str(dtype) for dtype in got[1].dtypes] == [str(dtype) for dtype in expected[1].dtypes]
            pd.testing.assert_frame_equal(got[1], expected[1], check_exact=True)


@pytest.mark.parametrize("name", sorted(TABLES))
@settings(PROFILE, max_examples=4 * PROFILE.max_examples)
@given(data=st.data())
def test_records_drawn_from_the_contract_build_column_wise_as_record_by_record(name: str, data: st.DataObject) -> None:
    entity = catalogue_entity(TABLES[name][0])
    records = data.draw(SOURCE.records(entity, max_size=5))
    _assert_same(name, {entity.name: records})


@pytest.mark.parametrize("name", sorted(TABLES))
@settings(PROFILE, max_examples=4 * PROFILE.max_examples)
@given(data=st.data())
def test_records_outside_the_contract_build_or_fail_column_wise_as_record_by_record(
        name: str, data: st.DataObject) -> None:
    entity = catalogue_entity(TABLES[name][0])
    records, _ = data.draw(malformed_records(SOURCE, entity))
    _assert_same(name, {entity.name: records})


_LINES = """[{"lineNumber": 1, "cost": 80.00, "costInCurrency": 80.00, "quantity": 2, "unitCost": 40.00,
             "account": {"number": "6300", "description": "Leie"}}, {"lineNumber": 2, "cost": -0.05}]"""


def _invoice(reference: str, **values: Any) -> dict:
    return {**supplier_invoice(reference, lines=_LINES), **values}


@pytest.mark.parametrize("changed", [
    {"amount": "12.50"},  # an amount as a JSON string: the reader alone would take it as a number
    {"amount": Decimal("1234.5600000000002")},  # a double's noise: the per-record rule keeps 1234.56
    {"amount": Decimal("100.005")},  # below the cent: refused
    {"amount": 10**17},  # beyond NUMERIC(18,2): refused
    {"date": "2025-03-14T00:00:00+06:00"}, {"date": "2025-03-14T10:11:12.1234567"}, {"date": "2025-03-14"},
    {"date": "2025-03-14 10:11:12"}, {"date": "0000-01-01T00:00:00"}, {"date": "2025-02-30T00:00:00"},
    {"date": ""}, {"exchangeRate": Decimal("1.0275229357798166")}, {"exchangeRate": Decimal("1E+400")},
    {"documentType": 7}, {"supplier": "50366"}, {"supplier": {"number": 50366}}, {"financialPeriod": ""},
    {"financialPeriod": None, "postPeriod": "132025"}, {"description": "tab\there, quote\" and \u00f8"},
    {"invoiceLines": [None]}, {"invoiceLines": {"lineNumber": 1}}, {"invoiceLines": []},
])
@pytest.mark.parametrize("name", ["ap_invoices", "ap_invoice_lines"])
def test_values_at_the_edges_build_column_wise_as_record_by_record(name: str, changed: dict) -> None:
    _assert_same(name, {"supplier_invoices": [_invoice("1"), _invoice("2", **changed), _invoice("3")]})


def test_an_amount_key_written_with_escapes_is_read_as_the_per_record_path_reads_it() -> None:
    text = json.dumps({**json.loads(canonical_json(_invoice("1"))), "amount": "12.50"})
    escaped = text.replace('"amount"', '"\\u0061mount"').encode()
    inputs = MartInputs({"supplier_invoices": [StoredRecord("c1", escaped)]}, AS_OF)
    frame, held = build_holding_back(mart_table("ap_invoices"), inputs)
    assert frame.empty and [(h.field, h.value) for h in held] == [("amount", "'12.50'")]


def test_a_bad_record_among_many_batches_is_held_alone_and_the_rows_keep_their_order() -> None:
    invoices = [_invoice(f"{number:06d}") for number in range(2 * BATCH + 10)]
    invoices[BATCH + 3]["dueDate"] = "yesterday"
    stored = [StoredRecord("c1", canonical_json(invoice).encode()) for invoice in invoices]
    frame, held = build_holding_back(mart_table("ap_invoices"), MartInputs({"supplier_invoices": stored}, AS_OF))
    assert [(h.key, h.field) for h in held] == [(f"Invoice|{BATCH + 3:06d}", "dueDate")]
    assert frame["reference_number"].tolist() == [f"{n:06d}" for n in range(2 * BATCH + 10) if n != BATCH + 3]
    _assert_same("ap_invoices", {"supplier_invoices": invoices[:BATCH + 3] + invoices[BATCH + 4:]})
