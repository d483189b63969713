"""The close derived from the document, payment line and GL balance extracts equals the close
built from the records: partial payments after a period end, a payment in a later period, a
payment of a document the store does not hold, a document held back, periods without documents."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from visma_tableau_pipeline.delivery.extracts import build_extract, build_table
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.registry import mart_table, tables_read
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.state.quarantine import held_records
from visma_tableau_pipeline.state.record_store import upsert_records
from visma_tableau_pipeline.visma.catalogue import entity, key_values

COMPANY = "c"
AS_OF = date(2025, 5, 31)
PERIODS = ("202501", "202502", "202503", "202504", "202505")  # 202505: no document, no payment
CLOSE = mart_table("period_close")
BUILD_ORDER = [*tables_read(CLOSE), CLOSE.name]


def _ap(reference: str, period: str, amount: str, base: str, balance: str, balance_base: str,
        document_type: str = "Invoice", detail: str | None = None) -> dict[str, Any]:
    return {"documentType": document_type, "referenceNumber": reference, "financialPeriod": period,
            "status": "Open", "amount": Decimal(amount), "detailTotal": Decimal(detail or amount),
            "detailTotalInCurrency": Decimal(base), "balance": Decimal(balance), "balanceInCurrency": Decimal(balance_base)}


def _ar(reference: str, period: str, amount: str, base: str, balance: str, balance_base: str,
        document_type: str = "Invoice") -> dict[str, Any]:
    return {"documentType": document_type, "referenceNumber": reference, "financialPeriod": period, "status": "Open",
            "amount": Decimal(amount), "amountInCurrency": Decimal(base), "balance": Decimal(balance),
            "balanceInCurrency": Decimal(balance_base)}


def _payment(reference: str, period: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "Payment", "refNbr": reference, "applicationPeriod": period, "paymentLines": lines}


def _ap_line(reference: str, paid: str) -> dict[str, Any]:
    return {"docType": "Invoice", "invoiceRefNbr": reference, "amountPaid": Decimal(paid)}


def _ar_line(reference: str, paid: str) -> dict[str, Any]:
    return {"documentType": "Invoice", "refNbr": reference, "amountPaid": Decimal(paid)}


def _balance(account: str, period: str, debit: str, balance_type: str = "Actual") -> dict[str, Any]:
    return {"branch": {"number": "1"}, "ledger": {"id": "L"}, "balanceType": balance_type, "financialPeriod": period,
            "account": {"number": account}, "subAccountCd": "0", "beginningBalanceInCurrency": Decimal(0),
            "periodToDateDebitInCurrency": Decimal(debit), "periodToDateCreditInCurrency": Decimal(0)}


RECORDS: dict[str, list[dict[str, Any]]] = {
    "gl_accounts": [{"accountCD": "2400", "description": "Suppliers", "type": "Liability",
                     "controlAccountModule": "AP"},
                    {"accountCD": "1500", "description": "Customers", "type": "Asset", "controlAccountModule": "AR"}],
    "financial_periods": [{"year": 2025, "period": period, "closedInGeneralLedger": period < "202504"}
                          for period in PERIODS],
    "gl_balances": [*(_balance(account, period, "1.00") for account in ("2400", "1500") for period in PERIODS),
                    _balance("2400", "202501", "999.00", "Budget")],
    "supplier_invoices": [
        _ap("S1", "202501", "100.00", "1150.00", "40.00", "460.00"),  # 100 EUR, paid 30 in 202502 and in 202503
        _ap("S2", "202502", "50.00", "50.00", "0.00", "0.00"),  # paid whole in 202503
        _ap("S3", "202502", "20.00", "20.00", "20.00", "20.00", document_type="DebitAdj"),
        _ap("S4", "202501", "100.00", "100.00", "40.00", "40.00", detail="80.00"),  # no base total: held back
    ],
    "supplier_payments": [
        _payment("P1", "202502", [_ap_line("S1", "30.00"), _ap_line("S9", "5.00")]),  # S9: not in the store
        _payment("P2", "202503", [_ap_line("S1", "30.00"), _ap_line("S2", "50.00")]),
        _payment("P3", "202502", [_ap_line("S4", "60.00")]),
    ],
    "customer_invoices": [
        _ar("A1", "202501", "200.00", "200.00", "0.00", "0.00"),  # paid in its own period
        _ar("A2", "202502", "100.00", "110.00", "25.00", "27.50"),  # paid 75 in 202504
    ],
    "customer_credit_notes": [_ar("C1", "202503", "10.00", "10.00", "10.00", "10.00", document_type="CreditNote")],
    "customer_payments": [_payment("R1", "202501", [_ar_line("A1", "200.00")]),
                          _payment("R2", "202504", [_ar_line("A2", "75.00")])],
}


def _store(db: StateDB, name: str, records: list[dict[str, Any]], run_id: str) -> None:
    rows = [(key_string(key_values(entity(name).key, record)), None, None, record) for record in records]
    with db.transaction() as conn:
        upsert_records(conn, COMPANY, name, rows, run_id)


def _run(db: StateDB, extracts: Path, run_id: str) -> dict[str, str]:
    """The close and the tables it reads built in `vtp sync`'s order; mode per table."""
    return {name: build_extract(db, [COMPANY], mart_table(name), AS_OF, extracts, run_id).mode
            for name in BUILD_ORDER}


def _subledger(close: pd.DataFrame, account: str) -> list[Decimal]:
    rows = close[close["account_number"] == account].sort_values("financial_period")
    return [Decimal(value) for value in rows["subledger_open_balance_base_currency"]]


def _assert_equals_build_from_records(db: StateDB, extracts: Path) -> pd.DataFrame:
    derived = frame_from_hyper(extracts / "period_close.hyper")
    whole = build_table(db, [COMPANY], CLOSE, AS_OF)
    key = list(CLOSE.key)
    pd.testing.assert_frame_equal(derived[list(whole.columns)].sort_values(key).reset_index(drop=True),
                                  whole.sort_values(key).reset_index(drop=True), check_dtype=False)
    return derived


@pytest.fixture
def books(tmp_path: Path) -> Iterator[tuple[StateDB, Path]]:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    for name, records in RECORDS.items():
        _store(db, name, records, "sync-1")
    yield db, tmp_path / "extracts"
    db.dispose()


def test_the_close_derived_from_extracts_equals_the_close_built_from_the_records(
    books: tuple[StateDB, Path], caplog: pytest.LogCaptureFixture
) -> None:
    db, extracts = books
    _run(db, extracts, "run-1")  # S4 is refused by the close: built from the records, S4 held back
    with db.connect() as conn:
        held = held_records(conn, [COMPANY])
    assert [(item.key, item.field, item.table) for item in held] == [("Invoice|S4", "amount", "period_close")]
    close = _assert_equals_build_from_records(db, extracts)
    # S1 open at its base total until paid, then at its rate; S2 until paid; S3 a debit adjustment
    assert _subledger(close, "2400") == [Decimal(v) for v in ("1150.00", "835.00", "440.00", "440.00", "440.00")]
    assert _subledger(close, "1500") == [Decimal(v) for v in ("0.00", "110.00", "100.00", "17.50", "17.50")]

    # a later payment of S1 (10 EUR in 202504) and a partial one of A2 in 202505
    _store(db, "supplier_invoices", [_ap("S1", "202501", "100.00", "1150.00", "30.00", "345.00")], "sync-2")
    _store(db, "supplier_payments", [_payment("P4", "202504", [_ap_line("S1", "10.00")])], "sync-2")
    _store(db, "customer_invoices", [_ar("A2", "202502", "100.00", "110.00", "5.00", "5.50")], "sync-2")
    _store(db, "customer_payments", [_payment("R3", "202505", [_ar_line("A2", "20.00")])], "sync-2")
    with caplog.at_level(logging.INFO, logger="visma_tableau_pipeline.delivery.extracts"):
        modes = _run(db, extracts, "run-2")
    assert modes["period_close"] == "built" and "building from the records" not in caplog.text  # derived
    assert modes["ap_invoices"] == "updated"  # S4's row is still in its extract, left out of the close
    close = _assert_equals_build_from_records(db, extracts)
    assert _subledger(close, "2400") == [Decimal(v) for v in ("1150.00", "835.00", "440.00", "325.00", "325.00")]
    # A2: 25 EUR open at 202504's end is 27.50 at its rate (110/100), 5 EUR now
    assert _subledger(close, "1500") == [Decimal(v) for v in ("0.00", "110.00", "100.00", "17.50", "-4.50")]
