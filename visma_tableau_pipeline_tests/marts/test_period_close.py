"""The subledger's open balance at a period end, from documents and the payments applied after it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.period_close import subledger_open_balances, tables_of

EUR_INVOICE = {"company_id": "c", "documentType": "Invoice", "referenceNumber": "1", "financialPeriod": "202501",
               "amount": D("100.00"), "amountInCurrency": D("1150.00"), "balance": D("40.00"),
               "balanceInCurrency": D("460.00")}
CREDIT_NOTE = {"company_id": "c", "documentType": "CreditNote", "referenceNumber": "2", "financialPeriod": "202502",
               "amount": D("10.00"), "amountInCurrency": D("10.00"), "balance": D("10.00"),
               "balanceInCurrency": D("10.00")}


def _payment(period: str, paid: str) -> dict:
    return {"company_id": "c", "type": "Payment", "refNbr": period, "applicationPeriod": period,
            "paymentLines": [{"documentType": "Invoice", "refNbr": "1", "amountPaid": D(paid)}]}


def test_open_at_each_period_end_rolls_later_payments_back_at_the_documents_rate():
    """Paid 30 in 202502 and 30 in 202503 of 100 EUR (1150 NOK): open 1150 at 202501's end (nothing
    paid yet: the base total), 805 at 202502's (70 EUR at 11.5), 460 now (Visma's base balance);
    a credit note of 202502 lowers AR from then on."""
    inputs = MartInputs({"customer_invoices": [EUR_INVOICE], "customer_credit_notes": [CREDIT_NOTE],
                         "customer_payments": [_payment("202502", "30.00"), _payment("202503", "30.00")]},
                        date(2025, 3, 31))
    open_at = subledger_open_balances(tables_of(inputs), {"c": ["202501", "202502", "202503"]})
    assert [open_at[("c", "AR", period)] for period in ("202501", "202502", "202503")] == [
        D("1150.00"), D("795.00"), D("450.00")]
    assert open_at[("c", "AP", "202503")] == 0
