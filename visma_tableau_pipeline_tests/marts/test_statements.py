"""Cash flow, profit and loss and balance sheet from small literal records: signs, periods, keys."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pandas as pd

from visma_tableau_pipeline.marts.hyper import frame_from_hyper, write_hyper
from visma_tableau_pipeline.marts.registry import build_mart
from visma_tableau_pipeline.marts.statements import gl_result_differences

AS_OF = date(2026, 3, 10)
ACCOUNTS = [{"company_id": "c", "accountCD": number, "type": kind, "accountClass": group,
             "accountClassDescription": group.capitalize(), "description": f"account {number}"}
            for number, kind, group in (("1920", "Asset", "BANK"), ("2050", "Liability", "EGENKAPITAL"),
                                        ("3000", "Income", "SALG"), ("5000", "Expense", "LØNN"))]


def _balance(period: str, account: str, opening: str, debit: str, credit: str) -> dict:
    return {"company_id": "c", "financialPeriod": period, "balanceType": "Actual", "account": {"number": account},
            "beginningBalanceInCurrency": D(opening), "periodToDateDebitInCurrency": D(debit),
            "periodToDateCreditInCurrency": D(credit)}


# 202501: equity 1000 in the bank, sales 300, salary 100; 202601: sales 50, salary 80 (bank net -30)
BALANCES = [
    _balance("202501", "1920", "0", "1300", "100"), _balance("202501", "2050", "0", "0", "1000"),
    _balance("202501", "3000", "0", "0", "300"), _balance("202501", "5000", "0", "100", "0"),
    _balance("202601", "1920", "1200", "50", "80"), _balance("202601", "2050", "-1200", "0", "0"),
    _balance("202601", "3000", "0", "0", "50"), _balance("202601", "5000", "0", "80", "0"),
]
PERIODS = [{"company_id": "c", "period": period, "startDate": f"{period[:4]}-{month}-01T00:00:00",
            "endDate": f"{period[:4]}-{month}-31T00:00:00"} for period, month in (("202501", "01"), ("202601", "01"))]


def test_profit_and_loss_is_credits_minus_debits_with_year_to_date_and_last_year():
    pnl = build_mart("profit_and_loss", {"gl_balances": BALANCES, "gl_accounts": ACCOUNTS}, AS_OF)
    rows = {(r.financial_period, r.account_number): r for r in pnl.itertuples()}
    assert set(rows) == {("202501", "3000"), ("202501", "5000"), ("202601", "3000"), ("202601", "5000")}
    sales, salary = rows[("202601", "3000")], rows[("202601", "5000")]
    assert (sales.period_amount_base_currency, sales.year_to_date_base_currency,
            sales.same_period_last_year_base_currency) == (D("50.00"), D("50.00"), D("300.00"))
    assert (salary.period_amount_base_currency, salary.same_period_last_year_base_currency) == (D("-80.00"), D("-100.00"))
    assert (salary.account_type, salary.account_class, salary.fiscal_year, salary.period_number) == (
        "Expense", "LØNN", 2026, 1)
    assert pd.isna(rows[("202501", "3000")].same_period_last_year_base_currency)  # no GL a year before


def test_the_result_check_compares_tables_read_back_even_before_any_period_is_read(tmp_path):
    """A backfill builds the statements while the periods are still being read: P&L and GL
    balances without a row must compare (and agree), not stop the check with an error."""
    pnl = build_mart("profit_and_loss", {"gl_balances": BALANCES, "gl_accounts": ACCOUNTS}, AS_OF)
    gl = build_mart("gl_balances", {"gl_balances": BALANCES, "gl_accounts": ACCOUNTS}, AS_OF)
    read_back = [frame_from_hyper(write_hyper(frame.iloc[:0], tmp_path, name)) for name, frame in (("pnl", pnl), ("gl", gl))]
    assert gl_result_differences(*read_back).empty
    assert gl_result_differences(pnl, gl.iloc[:0])["result_base_currency_table"].tolist() == [D("200.00"), D("-30.00")]


def test_balance_sheet_has_the_result_as_its_own_line_and_balances():
    sheet = build_mart("balance_sheet", {"gl_balances": BALANCES, "gl_accounts": ACCOUNTS,
                                         "financial_periods": PERIODS}, AS_OF)
    lines = {(r.financial_period, r.line_type, r.account_number): r for r in sheet.itertuples()}
    assert lines[("202501", "account", "1920")].closing_balance_base_currency == D("1200.00")
    assert lines[("202501", "account", "2050")].statement_side == "liabilities_and_equity"
    assert lines[("202501", "account", "2050")].closing_balance_base_currency == D("1000.00")
    assert lines[("202501", "result", "")].closing_balance_base_currency == D("200.00")
    assert lines[("202601", "result", "")].closing_balance_base_currency == D("-30.00")
    assert lines[("202601", "account", "1920")].period_end == date(2026, 1, 31)
    for period in ("202501", "202601"):
        sides = sheet[sheet["financial_period"] == period].groupby("statement_side")["closing_balance_base_currency"].sum()
        assert sides["assets"] == sides["liabilities_and_equity"], period


def _payment(kind: str, reference: str, amount: str, **extra: object) -> dict:
    return {"company_id": "c", "type": kind, "refNbr": reference, "applicationDate": "2026-03-02T00:00:00",
            "applicationPeriod": "202603", "cashAccount": "1920", "paymentAmount": D(amount), **extra}


def _open(reference: str, due: str, balance: str, document_type: str = "Invoice") -> dict:
    return {"company_id": "c", "documentType": document_type, "referenceNumber": reference, "currencyId": "NOK",
            "documentDueDate": f"{due}T00:00:00", "balance": D(balance), "balanceInCurrency": D(balance),
            "paymentMethod": {"id": "BANK"}}


def test_cash_flow_signs_make_a_running_balance_a_plain_sum():
    """Cash in positive, out negative; a foreign supplier payment has no base amount; an overdue
    invoice is expected on the as-of day, one due after 13 weeks not at all, a credit note out."""
    records = {
        "customer_payments": [
            _payment("Payment", "1", "100.00", currency="NOK", paymentMethod={"id": "BANK"},
                     paymentAmountInCurrency=D("100.00")),
            _payment("Refund", "2", "30.00", currency="NOK", paymentMethod={"id": "BANK"},
                     paymentAmountInCurrency=D("30.00")),
            _payment("CreditNote", "3", "999.00", currency="NOK")],  # moves no cash
        "supplier_payments": [_payment("Payment", "4", "40.00", currency={"id": "EUR", "isBaseCurrency": False},
                                       paymentMethod="BANK")],
        "customer_invoices": [_open("10", "2026-02-01", "70.00"), _open("11", "2026-12-01", "500.00")],
        "customer_credit_notes": [_open("12", "2026-04-01", "5.00", "CreditNote")],
        "financial_periods": [{"company_id": "c", "period": "202603", "startDate": "2026-03-01T00:00:00",
                               "endDate": "2026-03-31T00:00:00"}],
    }
    cash = build_mart("cash_flow", records, AS_OF)
    rows = {(r.cash_kind, r.document_type, r.currency): r for r in cash.itertuples()}
    assert set(rows) == {("actual", "Payment", "NOK"), ("actual", "Refund", "NOK"), ("actual", "Payment", "EUR"),
                         ("expected", "Invoice", "NOK"), ("expected", "CreditNote", "NOK")}
    assert rows[("actual", "Refund", "NOK")].amount_doc_currency == D("-30.00")
    eur = rows[("actual", "Payment", "EUR")]
    assert eur.amount_doc_currency == D("-40.00") and pd.isna(eur.amount_base_currency)
    overdue = rows[("expected", "Invoice", "NOK")]
    assert (overdue.cash_date, overdue.amount_base_currency, overdue.financial_period, overdue.as_of_date) == (
        AS_OF, D("70.00"), "202603", AS_OF)
    assert rows[("expected", "CreditNote", "NOK")].amount_doc_currency == D("-5.00")
    assert cash[cash["cash_kind"] == "actual"]["amount_doc_currency"].sum() == D("30.00")
