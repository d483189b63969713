"""The demo data set: deterministic, two different companies, and the accounting facts the
dashboards rely on (exact conversions, balanced journals, reconciling GL balances, aging)."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import islice

import pytest

from visma_tableau_pipeline.sandbox.visma import DemoSize, VismaSandbox
from visma_tableau_pipeline.sandbox.visma.documents import DocumentSource, figures_of
from visma_tableau_pipeline.sandbox.visma.store import Query, RecordExists, RecordNotFound
from visma_tableau_pipeline.sandbox.visma.wire import clean
from visma_tableau_pipeline.visma.catalogue import ENTITIES, record_key

AS_OF = date(2026, 11, 24)  # an aging date a little after the data ends


@pytest.fixture(scope="module")
def sandbox() -> VismaSandbox:
    return VismaSandbox(DemoSize(supplier_invoices=300), seed=21)


def _first(sandbox: VismaSandbox, company: str, entity: str, n: int) -> list[dict]:
    return list(islice(sandbox.records(company, entity), n))


def test_same_seed_same_data_and_another_seed_other_data(sandbox):
    again = VismaSandbox(DemoSize(supplier_invoices=300), seed=21)
    other = VismaSandbox(DemoSize(supplier_invoices=300), seed=22)
    for entity in ("supplier_invoices", "customer_invoices", "journal_transactions", "time_cards", "suppliers"):
        assert list(sandbox.records("nordic-se", entity)) == list(again.records("nordic-se", entity))
        assert _first(sandbox, "nordic-se", entity, 20) != _first(other, "nordic-se", entity, 20)


def test_the_two_companies_differ(sandbox):
    assert sandbox.count("nordic-no", "supplier_invoices") == 300
    assert sandbox.count("nordic-se", "supplier_invoices") == 180
    no = list(sandbox.records("nordic-no", "supplier_invoices"))
    se = list(sandbox.records("nordic-se", "supplier_invoices"))
    assert {r["currencyId"] for r in no} == {"NOK", "EUR", "SEK"}
    assert {r["currencyId"] for r in se} == {"SEK", "EUR", "NOK"}
    assert {r["supplier"]["name"] for r in no} != {r["supplier"]["name"] for r in se}
    names = " ".join(r["supplier"]["name"] for r in no + se)
    assert all(ch in names for ch in "æøåäö")


def test_every_entity_has_records_with_unique_keys(sandbox):
    for company in sandbox.companies:
        for entity in ENTITIES:
            keys = [record_key(entity, r) for r in sandbox.records(company, entity.name)]
            assert keys, f"{company} {entity.name} is empty"
            assert len(keys) == len(set(keys)), f"{company} {entity.name} has duplicate keys"


def _to_base(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_base_currency_amounts_are_document_amounts_times_the_rate(sandbox):
    for company in sandbox.companies:
        for invoice in sandbox.records(company, "supplier_invoices"):
            rate = invoice["exchangeRate"]
            assert invoice["detailTotalInCurrency"] == _to_base(invoice["detailTotal"], rate)
            assert invoice["balanceInCurrency"] == _to_base(invoice["balance"], rate)
            assert invoice["amount"] == invoice["detailTotal"] + invoice["vatTotal"]
            assert invoice["detailTotal"] == sum(line["cost"] for line in invoice["invoiceLines"])
            assert len(invoice["invoiceLines"]) == 3
            for line in invoice["invoiceLines"]:
                assert line["costInCurrency"] == _to_base(line["cost"], rate)
        for invoice in sandbox.records(company, "customer_invoices"):
            assert invoice["amountInCurrency"] == _to_base(invoice["amount"], invoice["exchangeRate"])


def test_small_negative_amounts_exist(sandbox):
    small = [line["cost"] for r in sandbox.records("nordic-no", "supplier_invoices") for line in r["invoiceLines"]
             if Decimal("-0.10") < line["cost"] < 0]
    assert len(small) > 10
    credit_adjustments = [r for r in sandbox.records("nordic-no", "supplier_invoices") if r["documentType"] == "CreditAdj"]
    assert credit_adjustments


def _bucket(due: str) -> str:
    days = (AS_OF - datetime.fromisoformat(due).date()).days
    if days <= 0:
        return "current"
    return "1-30" if days <= 30 else "31-60" if days <= 60 else "61-90" if days <= 90 else "over 90"


@pytest.mark.parametrize("entity, due_field", [("supplier_invoices", "dueDate"), ("customer_invoices", "documentDueDate")])
def test_open_items_fill_every_aging_bucket(sandbox, entity, due_field):
    for company in sandbox.companies:
        records = list(sandbox.records(company, entity))
        open_items = [r for r in records if r["status"] == "Open"]
        assert all(r["balance"] > 0 for r in open_items)
        assert all(r["balance"] == 0 for r in records if r["status"] == "Closed")
        buckets = {_bucket(r[due_field]) for r in open_items}
        assert buckets == {"current", "1-30", "31-60", "61-90", "over 90"}, (company, buckets)


def test_timestamps_are_in_the_past_and_in_visma_form(sandbox):
    for entity in ("supplier_invoices", "journal_transactions", "suppliers", "time_cards", "gl_balances"):
        stamps = [r["lastModifiedDateTime"] for r in sandbox.records("nordic-no", entity)]
        assert max(stamps) < "2026-11-01"
        assert all(len(s) == 23 and s[10] == "T" for s in stamps)


def test_gl_balances_reconcile_with_the_journal(sandbox):
    for company in sandbox.companies:
        movements: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for batch in sandbox.records(company, "journal_transactions"):
            lines = batch["journalTransactionLines"]
            assert sum(x["debitAmount"] for x in lines) == sum(x["creditAmount"] for x in lines) == batch["debitTotal"]
            for line in lines:
                entry = movements[(batch["financialPeriod"], line["accountNumber"], line["subaccount"]["subaccountNumber"])]
                entry[0] += line["debitAmount"]
                entry[1] += line["creditAmount"]
        balances = list(sandbox.records(company, "gl_balances"))
        previous: dict[tuple, dict] = {}
        for row in balances:
            key = (row["financialPeriod"], row["account"]["number"], row["subAccountCd"])
            debit, credit = movements.get(key, (0, 0))
            assert (row["periodToDateDebit"], row["periodToDateCredit"]) == (debit, credit)
            assert row["yearToDateBalance"] == row["beginningBalance"] + debit - credit
            combo = key[1:]
            if combo in previous and not row["financialPeriod"].endswith("01"):
                assert row["beginningBalance"] == previous[combo]["yearToDateBalance"]
            previous[combo] = row
        assert {k for k, v in movements.items() if any(v)} <= {
            (r["financialPeriod"], r["account"]["number"], r["subAccountCd"]) for r in balances}


def test_mutations_move_delete_and_add_records():
    sandbox = VismaSandbox(DemoSize(supplier_invoices=50), seed=1)
    newest = max(r["lastModifiedDateTime"] for r in sandbox.records("nordic-no", "supplier_invoices"))
    open_invoice = next(r for r in sandbox.records("nordic-no", "supplier_invoices") if r["status"] == "Open")
    key = (open_invoice["documentType"], open_invoice["referenceNumber"])
    changed = sandbox.modify("nordic-no", "supplier_invoices", key)
    assert changed["status"] == "Closed" and changed["balance"] == 0
    assert changed["lastModifiedDateTime"] > newest
    created = sandbox.create("nordic-no", "supplier_invoices")
    assert created["referenceNumber"] == "000051" and created["status"] == "Open"
    assert created["lastModifiedDateTime"] > changed["lastModifiedDateTime"]
    victim = list(sandbox.records("nordic-no", "supplier_invoices"))[3]
    sandbox.delete("nordic-no", "supplier_invoices", (victim["documentType"], victim["referenceNumber"]))
    records = list(sandbox.records("nordic-no", "supplier_invoices"))
    assert len(records) == 50 and victim not in records
    assert [r["referenceNumber"] for r in records[-2:]] == [key[1], "000051"]
    assert sum(r["referenceNumber"] == key[1] for r in records) == 1
    with pytest.raises(RecordNotFound):
        sandbox.modify("nordic-no", "supplier_invoices", ("Invoice", "999999"))
    with pytest.raises(RecordExists):
        sandbox.create("nordic-no", "supplier_invoices", records[0])
    with pytest.raises(ValueError):
        sandbox.modify("nordic-no", "supplier_invoices", key, {"referenceNumber": "X"})


def test_deleting_a_record_hides_it_and_journal_changes_move_gl_balances():
    sandbox = VismaSandbox(DemoSize(supplier_invoices=50), seed=1)
    first = next(sandbox.records("nordic-no", "suppliers"))
    sandbox.delete("nordic-no", "suppliers", first["number"])
    assert first["number"] not in {r["number"] for r in sandbox.records("nordic-no", "suppliers")}
    before = {(r["financialPeriod"], r["account"]["number"], r["subAccountCd"]): r
              for r in sandbox.records("nordic-no", "gl_balances")}
    batch = sandbox.create("nordic-no", "journal_transactions")
    assert batch["financialPeriod"] == "202611"
    after = list(sandbox.records("nordic-no", "gl_balances"))
    touched = [r for r in after if r["financialPeriod"] == "202611"]
    assert touched and all(r["lastModifiedDateTime"] >= "2026-11-01" for r in touched)
    line = batch["journalTransactionLines"][0]
    row = next(r for r in touched if (r["account"]["number"], r["subAccountCd"]) ==
               (line["accountNumber"], line["subaccount"]["subaccountNumber"]))
    assert row["periodToDateDebit"] >= line["debitAmount"] and row["periodToDateCredit"] >= line["creditAmount"]
    assert len(after) >= len(before)


def test_a_million_invoices_cost_nothing_until_read():
    started = time.perf_counter()
    big = VismaSandbox(DemoSize(supplier_invoices=1_000_000), seed=0)
    assert big.count("nordic-no", "supplier_invoices") == 1_000_000
    store = big.company("nordic-no").store("supplier_invoices")
    page = store.page(Query(), 999_000, 1000, 1000)
    assert len(page.texts) == 1000 and page.total_units == 1_000_000
    delta = store.page(Query(modified=(">=", 1_790_000_000_000)), 0, 10, 1000)  # 2026-09 onwards
    assert 0 < delta.total_units < 1_000_000
    assert time.perf_counter() - started < 10


def test_document_figures_worked_out_without_the_record_are_what_the_record_says(sandbox):
    """The journal posts documents from figures worked out without writing them (fast path);
    they must be the figures of the records the API serves, or the GL and subledgers part."""
    for company in sandbox.companies:
        stores = sandbox.company(company).stores
        for entity in ("supplier_invoices", "customer_invoices", "customer_credit_notes"):
            source = stores[entity].source
            assert isinstance(source, DocumentSource)
            for index in range(len(source)):
                assert source.figures(index) == figures_of(clean(source.build(index))), (company, entity, index)
