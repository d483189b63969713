"""Dashboard tables from small literal Visma records (JSON as Visma sends it)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from visma_tableau_pipeline.marts.aging import aging_bucket_totals, aging_differences
from visma_tableau_pipeline.marts.decimals import decimal_totals
from visma_tableau_pipeline.marts.gl import GL_TRANSACTIONS, unbalanced_journal_batches
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.registry import MART_TABLES, build_mart, build_with, duplicate_keys, tables_read
from visma_tableau_pipeline.marts.schema import MartError
from visma_tableau_pipeline.visma.catalogue import BY_NAME as ENTITIES

AS_OF = date(2025, 4, 30)


def visma(text: str, company_id: str = "c1") -> dict[str, Any]:
    """A record parsed the way the client parses Visma JSON, with its company."""
    return {**json.loads(text, parse_float=Decimal), "company_id": company_id}


def supplier_invoice(reference: str, *, document_type: str = "Invoice", due: date | None = None,
                     status: str = "Open", balance: str = "100.00", lines: str = "[]",
                     currency: str = "NOK", period: str = "202503") -> dict[str, Any]:
    due_field = f'"dueDate": "{due.isoformat()}T00:00:00",' if due else ""
    return visma(f"""{{
        "documentType": "{document_type}", "referenceNumber": "{reference}",
        "financialPeriod": "{period}", "postPeriod": "{period[4:]}{period[:4]}",
        "supplier": {{"number": "S1", "name": "Acme AS"}},
        "date": "2025-03-01T00:00:00", {due_field}
        "status": "{status}", "currencyId": "{currency}",
        "amount": 100.00, "detailTotal": 80.00, "vatTotal": 20.00,
        "detailTotalInCurrency": 80.00, "vatTotalInCurrency": 20.00,
        "balance": {balance}, "balanceInCurrency": {balance},
        "invoiceLines": {lines}
    }}""")


def build(name: str, **records: list[dict[str, Any]]) -> pd.DataFrame:
    return build_mart(name, records, AS_OF)


# --- aging -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("days_late", "bucket", "days_past_due"), [
    (-10, "current", 0),  # not yet due
    (0, "current", 0),  # due today
    (1, "1-30", 1), (30, "1-30", 30),
    (31, "31-60", 31), (60, "31-60", 60),
    (61, "61-90", 61), (90, "61-90", 90),
    (91, "over 90", 91),
])
def test_aging_bucket_boundaries(days_late: int, bucket: str, days_past_due: int) -> None:
    invoice = supplier_invoice("001", due=AS_OF - timedelta(days=days_late))
    aging = build("ap_aging", supplier_invoices=[invoice])
    assert aging["aging_bucket"].tolist() == [bucket]
    assert aging["days_past_due"].tolist() == [days_past_due]
    assert aging["snapshot_date"].tolist() == [AS_OF]


def test_aging_keeps_only_open_documents_with_a_balance() -> None:
    invoices = [
        supplier_invoice("open", due=AS_OF),
        supplier_invoice("closed", due=AS_OF, status="Closed", balance="0.00"),
        supplier_invoice("paid", due=AS_OF, balance="0.00"),
        supplier_invoice("draft", due=AS_OF, status="Hold"),
    ]
    aging = build("ap_aging", supplier_invoices=invoices)
    assert aging["reference_number"].tolist() == ["open"]


def test_aging_without_due_date_ages_from_document_date() -> None:
    credit = supplier_invoice("CN1", document_type="DebitAdj", due=None)
    aging = build("ap_aging", supplier_invoices=[credit])
    assert aging["days_past_due"].tolist() == [(AS_OF - date(2025, 3, 1)).days]
    assert aging["aging_bucket"].tolist() == ["31-60"]
    assert aging["open_balance_doc_currency"].tolist() == [Decimal("-100.00")]


def test_aging_reconciles_to_its_invoices_in_base_currency_with_credit_notes_signed_once() -> None:
    euro = supplier_invoice("inv", due=AS_OF, currency="EUR", balance="1000.00")
    credit = supplier_invoice("credit", document_type="DebitAdj", due=AS_OF, balance="250.00")
    invoices = build("ap_invoices", supplier_invoices=[{**euro, "balanceInCurrency": Decimal("11520.00")}, credit])
    aging = build("ap_aging", supplier_invoices=[{**euro, "balanceInCurrency": Decimal("11520.00")}, credit])
    assert aging_differences(aging, invoices, AS_OF).empty

    stale = build("ap_aging", supplier_invoices=[{**euro, "balanceInCurrency": Decimal("11000.00")}, credit])
    differences = aging_differences(stale, invoices, AS_OF)
    assert differences[["reference_number", "aged_base_currency", "open_base_currency",
                        "difference_base_currency"]].values.tolist() == [
        ["inv", Decimal("11000.00"), Decimal("11520.00"), Decimal("-520.00")]]


def test_totals_of_the_largest_amounts_subtract_exactly() -> None:
    """pyarrow widens a decimal sum to precision 38, and refuses arithmetic on two such sums
    (it would need 39); the totals are exact Python Decimals instead."""
    largest = Decimal("9999999999999999.99")  # NUMERIC(18,2) at its limit
    frame = GL_TRANSACTIONS.schema.frame(
        {"company_id": "c1", "module": "GL", "batch_number": str(n % 2),
         "debit_amount_doc_currency": largest, "credit_amount_doc_currency": -largest,
         "debit_amount_base_currency": largest, "credit_amount_base_currency": largest}
        for n in range(4))
    totals = decimal_totals(frame, ["batch_number"], ["debit_amount_doc_currency"])
    assert totals["debit_amount_doc_currency"].tolist() == [2 * largest, 2 * largest]
    unbalanced = unbalanced_journal_batches(frame)
    assert unbalanced["difference_doc_currency"].tolist() == [4 * largest, 4 * largest]
    assert unbalanced["difference_base_currency"].tolist() == [Decimal("0.00"), Decimal("0.00")]


# --- signs and currencies ----------------------------------------------------------------------

AR_INVOICE = """{
    "documentType": "Invoice", "referenceNumber": "10001", "financialPeriod": "202503",
    "customer": {"number": "C9", "name": "Kunde AB"},
    "documentDate": "2025-03-10T00:00:00", "documentDueDate": "2025-04-09T00:00:00",
    "status": "Open", "currencyId": "EUR", "exchangeRate": 11.52,
    "amount": 1000.00, "amountInCurrency": 11520.00,
    "vatTotal": 200.00, "vatTotalInCurrency": 2304.00,
    "balance": 1000.00, "balanceInCurrency": 11520.00
}"""
AR_CREDIT_NOTE = """{
    "documentType": "CreditNote", "referenceNumber": "10002", "financialPeriod": "202503",
    "customer": {"number": "C9", "name": "Kunde AB"},
    "documentDate": "2025-03-12T00:00:00",
    "status": "Open", "currencyId": "EUR",
    "amount": 250.00, "amountInCurrency": 2880.00,
    "balance": 250.00, "balanceInCurrency": 2880.00
}"""


def test_ar_credit_notes_are_negative_and_both_currencies_are_kept() -> None:
    invoices = build("ar_invoices", customer_invoices=[visma(AR_INVOICE)],
                     customer_credit_notes=[visma(AR_CREDIT_NOTE)])
    by_ref = invoices.set_index("reference_number")
    assert by_ref.loc["10001", "amount_doc_currency"] == Decimal("1000.00")
    assert by_ref.loc["10001", "amount_base_currency"] == Decimal("11520.00")
    assert by_ref.loc["10001", "currency"] == "EUR"
    assert by_ref.loc["10002", "amount_doc_currency"] == Decimal("-250.00")
    assert by_ref.loc["10002", "amount_base_currency"] == Decimal("-2880.00")
    assert by_ref.loc["10002", "sign"] == -1
    assert invoices["amount_doc_currency"].sum() == Decimal("750.00")
    assert by_ref.loc["10001", "due_date"] == date(2025, 4, 9)


def test_ar_aging_nets_credit_notes() -> None:
    aging = build("ar_aging", customer_invoices=[visma(AR_INVOICE)],
                  customer_credit_notes=[visma(AR_CREDIT_NOTE)])
    assert aging["open_balance_base_currency"].sum() == Decimal("8640.00")
    assert aging_bucket_totals(aging) == {
        "current": Decimal("0.00"), "1-30": Decimal("11520.00"), "31-60": Decimal("-2880.00"),
        "61-90": Decimal("0.00"), "over 90": Decimal("0.00")}


def test_ap_supplier_credit_note_is_negative_and_base_total_is_derived() -> None:
    invoice = supplier_invoice("1", currency="EUR")
    invoice.update(detailTotalInCurrency=Decimal("920.00"), vatTotalInCurrency=Decimal("230.00"))
    credit = supplier_invoice("2", document_type="DebitAdj")
    frame = build("ap_invoices", supplier_invoices=[invoice, credit]).set_index("reference_number")
    assert frame.loc["1", "amount_base_currency"] == Decimal("1150.00")
    assert frame.loc["1", "amount_doc_currency"] == Decimal("100.00")
    assert frame.loc["2", "amount_doc_currency"] == Decimal("-100.00")
    assert frame.loc["2", "balance_base_currency"] == Decimal("-100.00")


def test_ap_base_total_is_empty_when_totals_do_not_add_up() -> None:
    invoice = supplier_invoice("1")
    invoice["detailTotal"] = Decimal("70.00")  # 70 + 20 is not the amount 100
    frame = build("ap_invoices", supplier_invoices=[invoice])
    assert frame["amount_base_currency"].isna().all()


def test_binary_floats_are_refused() -> None:
    invoice = supplier_invoice("1")
    invoice["amount"] = 100.1
    with pytest.raises(TypeError, match="parse_float=Decimal"):
        build("ap_invoices", supplier_invoices=[invoice])


def test_more_decimals_than_the_column_holds_is_an_error_not_a_rounding() -> None:
    invoice = supplier_invoice("1")
    invoice["balance"] = Decimal("100.005")
    with pytest.raises(MartError, match="balance_doc_currency"):
        build("ap_invoices", supplier_invoices=[invoice])


def test_a_record_read_twice_appears_once() -> None:
    invoice = supplier_invoice("1")
    newer = {**invoice, "status": "Closed"}
    frame = build("ap_invoices", supplier_invoices=[invoice, newer])
    assert frame["status"].tolist() == ["Closed"]


# --- vendor spend ------------------------------------------------------------------------------

def line(number: int, account: str, cost: str, cost_base: str) -> str:
    return (f'{{"lineNumber": {number}, "account": {{"number": "{account}", '
            f'"description": "Account {account}"}}, "cost": {cost}, "costInCurrency": {cost_base}}}')


def test_vendor_spend_sums_lines_exactly_per_supplier_account_period_and_currency() -> None:
    invoices = [
        supplier_invoice("1", lines=f"[{line(1, '4000', '0.10', '1.15')}, "
                                    f"{line(2, '6300', '5.00', '57.50')}]"),
        supplier_invoice("2", status="Closed", lines=f"[{line(1, '4000', '0.20', '2.30')}]"),
        supplier_invoice("3", document_type="DebitAdj", lines=f"[{line(1, '4000', '0.05', '0.55')}]"),
        supplier_invoice("4", status="Voided", lines=f"[{line(1, '4000', '99.00', '99.00')}]"),
        supplier_invoice("5", document_type="Prepayment", lines=f"[{line(1, '4000', '7.00', '7.00')}]"),
        supplier_invoice("6", currency="EUR", lines=f"[{line(1, '4000', '1.00', '11.50')}]"),
        supplier_invoice("7", period="202504", lines=f"[{line(1, '4000', '3.00', '3.00')}]"),
    ]
    spend = build("vendor_spend", supplier_invoices=invoices)
    rows = {(r.financial_period, r.account_number, r.currency):
            (r.amount_doc_currency, r.amount_base_currency, r.invoice_line_count)
            for r in spend.itertuples()}
    assert rows == {
        ("202503", "4000", "NOK"): (Decimal("0.25"), Decimal("2.90"), 3),  # 0.10 + 0.20 - 0.05
        ("202503", "6300", "NOK"): (Decimal("5.00"), Decimal("57.50"), 1),
        ("202503", "4000", "EUR"): (Decimal("1.00"), Decimal("11.50"), 1),
        ("202504", "4000", "NOK"): (Decimal("3.00"), Decimal("3.00"), 1),
    }
    assert str(spend["amount_doc_currency"].dtype) == "decimal128(18, 2)[pyarrow]"
    assert duplicate_keys(_table("vendor_spend"), spend).empty


# --- general ledger ----------------------------------------------------------------------------

SUBACCOUNT_DIMENSION = """{
    "id": "SUBACCOUNT", "description": "Subaccount",
    "segments": [
        {"segmentId": 1, "description": "Cost centre", "length": 2,
         "segmentValues": [{"valueId": "10", "description": "Sales", "active": true}]},
        {"segmentId": 2, "description": "Project", "length": 3,
         "segmentValues": [{"valueId": "200", "description": "Website", "active": true}]}
    ]
}"""
JOURNAL_BATCH = """{
    "module": "ModuleGL", "batchNumber": "000123", "status": "Posted",
    "transactionDate": "2025-03-14T00:00:00", "postPeriod": "032025", "financialPeriod": "202503",
    "currencyId": "EUR", "exchangeRate": 11.5,
    "journalTransactionLines": [
        {"lineNumber": 1, "accountNumber": "6300", "subaccount": {"subaccountNumber": "10200"},
         "debitAmount": 100.05, "creditAmount": 0, "debitAmountInCurrency": 1150.58,
         "creditAmountInCurrency": 0},
        {"lineNumber": 2, "accountNumber": "6300", "subaccount": {"subaccountNumber": "10-300"},
         "debitAmount": 0, "creditAmount": 0.05, "debitAmountInCurrency": 0,
         "creditAmountInCurrency": 0.58},
        {"lineNumber": 3, "accountNumber": "2400",
         "subaccount": {"subaccountNumber": "XX", "segments": [
             {"segmentId": 1, "segmentDescription": "Cost centre", "segmentValue": "20"},
             {"segmentId": 2, "segmentDescription": "Project", "segmentValue": "999"}]},
         "debitAmount": 0, "creditAmount": 100.00, "debitAmountInCurrency": 0,
         "creditAmountInCurrency": 1150.00}
    ]
}"""


def test_gl_transactions_split_subaccount_into_one_column_per_segment() -> None:
    accounts = [visma('{"accountCD": "6300", "description": "Rent", "type": "Expense"}')]
    frame = build("gl_transactions", journal_transactions=[visma(JOURNAL_BATCH)],
                  dimensions=[visma(SUBACCOUNT_DIMENSION)], gl_accounts=accounts)
    assert list(frame.columns[-2:]) == ["segment_cost_centre", "segment_project"]
    assert frame["segment_cost_centre"].tolist() == ["10", "10", "20"]
    assert frame["segment_project"].tolist() == ["200", "300", "999"]
    assert frame["account_description"].tolist()[:2] == ["Rent", "Rent"]
    assert frame["amount_doc_currency"].tolist() == [Decimal("100.05"), Decimal("-0.05"),
                                                     Decimal("-100.00")]
    assert frame["financial_period"].unique().tolist() == ["202503"]


def test_gl_segment_columns_follow_the_company_definition() -> None:
    dimension = visma(SUBACCOUNT_DIMENSION.replace("Cost centre", "Department"), "c2")
    frame = build("gl_transactions", journal_transactions=[], dimensions=[dimension])
    assert frame.empty
    assert list(frame.columns[-2:]) == ["segment_department", "segment_project"]


def test_journal_batches_balance_in_both_currencies() -> None:
    frame = build("gl_transactions", journal_transactions=[visma(JOURNAL_BATCH)])
    assert unbalanced_journal_batches(frame).empty
    for currency in ("doc", "base"):
        assert (frame[f"debit_amount_{currency}_currency"].sum()
                == frame[f"credit_amount_{currency}_currency"].sum())

    broken = visma(JOURNAL_BATCH.replace('"creditAmount": 100.00', '"creditAmount": 99.99'))
    unbalanced = unbalanced_journal_batches(build("gl_transactions", journal_transactions=[broken]))
    assert unbalanced["batch_number"].tolist() == ["000123"]
    assert unbalanced["credit_doc_currency"].tolist() == [Decimal("100.04")]


def test_dimensions_name_the_column_each_segment_value_lands_in() -> None:
    frame = build("dimensions", dimensions=[visma(SUBACCOUNT_DIMENSION)])
    assert frame[["segment_value", "segment_value_description", "segment_column"]].values.tolist() == [
        ["10", "Sales", "segment_cost_centre"], ["200", "Website", "segment_project"]]


def test_gl_balances_keep_both_currencies_and_segments() -> None:
    balance = visma("""{
        "branch": {"number": "1"}, "ledger": {"id": "L"}, "balanceType": "Actual",
        "financialPeriod": "202503", "account": {"number": "6300", "type": "Expense"},
        "subAccountCd": "10200", "currencyId": "EUR",
        "beginningBalance": -0.05, "periodToDateDebit": 10, "periodToDateCredit": 0,
        "yearToDateBalance": 9.95, "beginningBalanceInCurrency": -0.58,
        "yearToDateBalanceInCurrency": 114.42
    }""")
    frame = build("gl_balances", gl_balances=[balance], dimensions=[visma(SUBACCOUNT_DIMENSION)])
    row = frame.iloc[0]
    assert row["beginning_balance_doc_currency"] == Decimal("-0.05")
    assert row["ending_balance_base_currency"] == Decimal("114.42")
    assert (row["segment_cost_centre"], row["segment_project"]) == ("10", "200")


# --- the registry ------------------------------------------------------------------------------

def _table(name: str):  # type: ignore[no-untyped-def]
    return next(table for table in MART_TABLES if table.name == name)


@pytest.mark.parametrize("table", MART_TABLES, ids=lambda table: table.name)
def test_empty_input_gives_the_declared_empty_table(table) -> None:  # type: ignore[no-untyped-def]
    frame = build_with(table, MartInputs({}, AS_OF))
    assert frame.empty
    assert frame.columns[0] == "company_id"
    assert set(table.key) <= set(frame.columns)
    assert table.partition_column is None or table.partition_column in frame.columns
    assert set(table.sources) <= set(ENTITIES)
    assert all(column == column.lower() and " " not in column for column in frame.columns)
    assert not any(str(dtype) in ("object", "float64") for dtype in frame.dtypes)
    again = build_with(table, MartInputs({source: [] for source in table.sources}, AS_OF))
    assert again.dtypes.equals(frame.dtypes)


def test_null_text_keys_become_empty_strings() -> None:
    balance = visma('{"financialPeriod": "202503", "account": {"number": "1920"}}')
    frame = build("gl_balances", gl_balances=[balance])
    assert frame["branch_number"].tolist() == [""]
    assert frame["subaccount_number"].tolist() == [""]


def test_every_table_is_listed_after_the_tables_it_is_derived_from() -> None:
    """`vtp sync` builds MART_TABLES in order: a derived table must find its sources' extracts
    built this run, else it is built from every record (or from yesterday's extract and the changes)."""
    position = {table.name: index for index, table in enumerate(MART_TABLES)}
    for table in MART_TABLES:
        for name in tables_read(table):
            assert position[name] < position[table.name], (table.name, name)
    assert set(tables_read(_table("period_close"))) == {
        "gl_balances", "ap_invoices", "ar_invoices", "supplier_payment_lines", "customer_payment_lines"}


# --- payment lines -----------------------------------------------------------------------------

def test_payment_lines_say_which_documents_each_payment_settled_in_its_application_period() -> None:
    supplier_payment = visma("""{"type": "Payment", "refNbr": "P1", "applicationPeriod": "032025",
        "applicationDate": "2025-03-14T00:00:00", "status": "Closed", "supplier": {"number": "S1", "name": "Acme AS"},
        "currency": {"id": "EUR"}, "paymentLines": [
          {"docType": "Invoice", "invoiceRefNbr": "000101", "amountPaid": 60.00, "cashDiscountTaken": 1.20,
           "balance": 40.00, "currency": "EUR", "dueDate": "2025-03-31T00:00:00"},
          {"docType": "DebitAdj", "invoiceRefNbr": "000102", "amountPaid": 10.00}]}""")
    unapplied = visma("""{"type": "Prepayment", "refNbr": "P2", "applicationPeriod": "202503", "paymentLines": []}""")
    customer_payment = visma("""{"type": "Payment", "refNbr": "R1", "applicationPeriod": "202504",
        "paymentLines": [{"documentType": "Invoice", "refNbr": "A1", "amountPaid": 95.00, "balanceWriteOff": 5.00,
                          "writeOffReasonCode": {"id": "SMALL"}}]}""")
    supplier = build("supplier_payment_lines", supplier_payments=[supplier_payment, unapplied])
    assert supplier[["reference_number", "line_number", "document_type", "document_reference_number",
                     "amount_paid_doc_currency", "financial_period"]].values.tolist() == [
        ["P1", 1, "Invoice", "000101", Decimal("60.00"), "202503"],
        ["P1", 2, "DebitAdj", "000102", Decimal("10.00"), "202503"]]
    assert supplier.loc[0, "cash_discount_taken_doc_currency"] == Decimal("1.20")
    assert supplier.loc[0, "document_due_date"] == date(2025, 3, 31)
    customer = build("customer_payment_lines", customer_payments=[customer_payment])
    assert customer[["reference_number", "line_number", "document_reference_number", "amount_paid_doc_currency",
                     "balance_write_off_doc_currency", "write_off_reason_code"]].values.tolist() == [
        ["R1", 1, "A1", Decimal("95.00"), Decimal("5.00"), "SMALL"]]
