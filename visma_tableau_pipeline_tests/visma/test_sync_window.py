"""One window from Visma into the state store: what is stored, and when nothing is.

`sync_window` against the fake Visma over httpx, into a real state database (SQLite and
PostgreSQL). The store keeps Visma's own text of each record without its volatile fields, so
these tests look at the stored text itself, not only at what it decodes to.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from visma_tableau_pipeline.state import StateDB, content_hashes, count, get_watermark, iter_records
from visma_tableau_pipeline.state.payloads import canonical_json
from visma_tableau_pipeline.state.schema import records as records_table
from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.errors import VismaPayloadError
from visma_tableau_pipeline.visma.pacing import Pacer
from visma_tableau_pipeline.visma.sync import WindowResult, sync_window

from .fake_visma import JOURNAL, FakeClock, FakeVisma, company, json_response, suppliers

SUPPLIERS = "/v1/supplier"


def sync(handler, db: StateDB, name: str = "suppliers", **options) -> WindowResult:
    clock = FakeClock()
    client = VismaClient(
        company(), transport=httpx.MockTransport(handler), pacer=Pacer(clock=clock, sleep=clock.sleep),
        clock=clock, sleep=clock.sleep, max_concurrency=2,
    )
    with client:
        return sync_window(client, db, entity(name), company_id="acme", run_id="run", **options)


def stored_payloads(db: StateDB, name: str = "suppliers") -> dict[str, str]:
    with db.connect() as conn:
        rows = conn.execute(
            select(records_table.c.record_key, records_table.c.payload).where(records_table.c.entity == name)
        )
        return dict(rows.all())


def raw_page(*items: str) -> httpx.Response:
    return httpx.Response(200, content=f"[{','.join(items)}]".encode(), headers={"Content-Type": "application/json"})


def answering(*items: str):
    """A Visma whose supplier list is one page holding exactly these item texts."""
    tokens = FakeVisma()

    def handler(request: httpx.Request) -> httpx.Response:
        return raw_page(*items) if "Authorization" in request.headers else tokens.handle(request)

    return handler


def test_a_re_read_with_new_totals_and_timestamps_leaves_every_record_unchanged(db):
    records = [{**record, "timeStamp": "AAAAAAAB9xE="} for record in suppliers(7)]
    fake = FakeVisma(lists={SUPPLIERS: records}, max_page_size=3)
    first = sync(fake.handle, db, full=True)
    with db.connect() as conn:
        before = content_hashes(conn, "acme", "suppliers")
    for record in records:
        record["timeStamp"] = "AAAAAAAC1234="  # Visma's row version moves on, the content does not
    records.append({**suppliers(8)[7], "timeStamp": "AAAAAAAC1235="})  # totalCount 7 -> 8

    second = sync(fake.handle, db, full=True)

    assert (first.inserted, first.updated) == (7, 0)
    assert (second.inserted, second.updated, second.unchanged) == (1, 0, 7)
    with db.connect() as conn:
        after = content_hashes(conn, "acme", "suppliers")
    assert {key: after[key] for key in before} == before


def test_the_stored_text_is_visma_s_record_without_volatile_fields_and_decimals_stay_exact(db):
    visma_text = (
        '{"number":"10001","name":"Ørsta Data AS","creditLimit":0.10,"balance":1234567.89,'
        '"rate":1.0000,"lastModifiedDateTime":"2024-03-01T10:00:00.123","timeStamp":"AAE=",'
        '"metadata":{"totalCount":1,"maxPageSize":500}}'
    )
    result = sync(answering(visma_text), db, full=True)

    assert result.inserted == 1
    expected = (
        '{"number":"10001","name":"Ørsta Data AS","creditLimit":0.10,"balance":1234567.89,'
        '"rate":1.0000,"lastModifiedDateTime":"2024-03-01T10:00:00.123"}'
    )
    assert stored_payloads(db) == {"10001": expected}
    with db.connect() as conn:
        (record,) = iter_records(conn, "acme", "suppliers")
        assert content_hashes(conn, "acme", "suppliers") == {
            "10001": hashlib.sha256(expected.encode("utf-8")).hexdigest()
        }
    assert record == {key: value for key, value in json.loads(visma_text, parse_float=Decimal).items()
                      if key not in ("timeStamp", "metadata")}
    assert record["creditLimit"] == Decimal("0.10") and str(record["creditLimit"]) == "0.10"
    assert str(record["rate"]) == "1.0000"


def test_a_record_with_a_nested_volatile_field_is_stored_as_canonical_json(db):
    visma_text = (
        '{"number":"10001","contacts":[{"name":"Kari","timeStamp":"AAI="}],'
        '"lastModifiedDateTime":"2024-03-01T10:00:00","timeStamp":"AAE="}'
    )
    sync(answering(visma_text), db, full=True)
    assert stored_payloads(db) == {
        "10001": '{"contacts":[{"name":"Kari"}],"lastModifiedDateTime":"2024-03-01T10:00:00","number":"10001"}'
    }


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_page_with_nan_is_refused_naming_company_entity_and_page_and_stores_nothing(db, literal):
    good = '{"number":"10001","lastModifiedDateTime":"2024-03-01T10:00:00"}'
    bad = f'{{"number":"10002","creditLimit":{literal},"lastModifiedDateTime":"2024-03-01T10:00:00"}}'

    with pytest.raises(VismaPayloadError) as raised:
        sync(answering(good, bad), db, full=True)

    error = raised.value
    assert (error.company_id, error.entity, error.page) == ("acme", "suppliers", 1)
    assert f"the number {literal}" in str(error) and "company acme" in str(error)
    assert "page 1" in str(error)
    with db.connect() as conn:
        assert count(conn, "acme", "suppliers", include_deleted=True) == 0
        assert get_watermark(conn, "acme", "suppliers") is None


@pytest.mark.parametrize(
    ("bad_page", "answer"),
    [
        (2, raw_page('{"number":"10003","creditLimit":NaN}')),
        (3, httpx.Response(200, text="<html>proxy</html>")),
    ],
)
def test_a_bad_later_page_leaves_the_previous_watermark(db, bad_page, answer):
    records = suppliers(9, modified="2024-03-01T10:00:00")
    fake = FakeVisma(lists={SUPPLIERS: records}, max_page_size=3)
    sync(fake.handle, db)
    for record in records:
        record["lastModifiedDateTime"] = "2024-04-01T10:00:00"

    def bad_answer_on_one_page(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("pageNumber") == str(bad_page) and "Authorization" in request.headers:
            return answer
        return fake.handle(request)

    with pytest.raises(VismaPayloadError) as raised:
        sync(bad_answer_on_one_page, db)

    assert raised.value.page == bad_page
    with db.connect() as conn:
        assert get_watermark(conn, "acme", "suppliers") == "2024-03-01T10:00:00"


def journal_batches() -> list[dict]:
    batches = []
    for number, line_count in ((1, 3), (2, 5), (3, 1), (4, 4)):
        lines = [
            {"lineNumber": n, "accountNumber": "1920", "debitAmount": Decimal(f"{number}.0{n}"),
             "timeStamp": f"AA{number}{n}="}
            for n in range(1, line_count + 1)
        ]
        batches.append({
            "module": "ModuleGL", "batchNumber": f"00000{number}", "financialPeriod": "202403",
            "lastModifiedDateTime": "2024-03-01T10:00:00", "timeStamp": f"AA{number}=",
            "journalTransactionLines": lines,
        })
    return batches


def test_journal_transactions_split_over_pages_sync_exactly(db):
    # 13 lines, 4 a page: batch 2 spans pages 1-2 and batch 4 pages 3-4, and are merged.
    fake = FakeVisma(lists={JOURNAL: journal_batches()}, max_page_size=4)

    result = sync(fake.handle, db, "journal_transactions", period="202403")

    assert (result.records_read, result.inserted) == (4, 4)
    with db.connect() as conn:
        stored = list(iter_records(conn, "acme", "journal_transactions"))
    expected = [json.loads(canonical_json(batch), parse_float=Decimal) for batch in journal_batches()]
    assert stored == expected
    assert [len(batch["journalTransactionLines"]) for batch in stored] == [3, 5, 1, 4]
    payloads = stored_payloads(db, "journal_transactions")
    assert sorted(payloads.values()) == sorted(canonical_json(batch) for batch in journal_batches())


def test_a_record_edited_during_the_read_is_stored_in_its_newest_version(db):
    records = [
        {"number": f"1000{i}", "lastModifiedDateTime": "2024-03-01T10:00:00", "name": "old"}
        for i in range(1, 5)
    ]
    fake = FakeVisma(lists={SUPPLIERS: records}, max_page_size=2)

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.url.params.get("pageNumber") == "1" and records[-1]["number"] != "10001":
            # 10001 is edited right after page 1 was served: it moves to the end of the list.
            records.append({**records.pop(0), "lastModifiedDateTime": "2024-03-01T10:05:00", "name": "new"})
        return response

    result = sync(handler, db, full=True)

    # The old copy (page 1) and the new one (page 2) go to the store in that order.
    assert (result.records_read, result.inserted, result.updated) == (5, 4, 1)
    with db.connect() as conn:
        stored = {record["number"]: record["name"] for record in iter_records(conn, "acme", "suppliers")}
        assert get_watermark(conn, "acme", "suppliers") == "2024-03-01T10:05:00"
    assert stored == {"10001": "new", "10002": "old", "10003": "old", "10004": "old"}


class FailingStore(StateDB):
    """The real state database, whose write transactions fail from the `fail_at`-th on."""

    def __init__(self, url, fail_at: int) -> None:
        self.fail_at = fail_at
        self.transactions = -1  # creating the tables is one
        super().__init__(url)

    @contextmanager
    def transaction(self):
        self.transactions += 1
        if self.transactions >= self.fail_at:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        with super().transaction() as conn:
            yield conn


def test_a_failed_write_is_raised_by_the_sync_and_the_watermark_stays(db):
    # Transactions: 1 reads the watermark, 2 stores page 1, 3 (page 2) fails.
    failing = FailingStore(db.url.render_as_string(hide_password=False), fail_at=3)
    fake = FakeVisma(lists={SUPPLIERS: suppliers(9)}, max_page_size=3)

    with pytest.raises(OperationalError, match="disk I/O error"):
        sync(fake.handle, failing, full=True)

    with db.connect() as conn:
        assert count(conn, "acme", "suppliers") == 3  # page 1; nothing after the failure
        assert get_watermark(conn, "acme", "suppliers") is None
    failing.dispose()


PURCHASE_ORDERS = "/v1/purchaseorder"


def purchase_orders(count: int) -> list[dict]:
    return [
        {"orderType": "RegularOrder", "orderNbr": f"{10000 + i}", "description": f"Order {i}",
         "lastModifiedDateTime": "2024-03-01T10:00:00"}
        for i in range(count)
    ]


def delete_first_and_insert_after_page_1(fake: FakeVisma, path: str, inserted: dict):
    """Visma deletes a record of page 1 once page 1 is served, and inserts one at the end.

    totalCount stays the same and no key is served twice, so the read sees nothing amiss; but the
    first record of page 2 slides onto page 1, already read, and this pass never lists it.
    """
    done = []

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.url.path == path and request.url.params.get("pageNumber") == "1" and not done:
            done.append(fake.lists[path].pop(0))
            fake.lists[path].append(inserted)
        return response

    return handler


def stored_state(db: StateDB, name: str) -> tuple[set[str], set[str]]:
    """(live keys, keys marked deleted)."""
    with db.connect() as conn:
        rows = conn.execute(
            select(records_table.c.record_key, records_table.c.deleted_at).where(records_table.c.entity == name)
        ).all()
    return {key for key, deleted in rows if deleted is None}, {key for key, deleted in rows if deleted is not None}


def test_a_record_that_slid_onto_a_page_already_read_is_read_by_its_key_and_kept(db):
    records = suppliers(9)  # 10000 .. 10008, three a page
    fake = FakeVisma(lists={SUPPLIERS: records}, max_page_size=3)
    sync(fake.handle, db, full=True)

    during = sync(delete_first_and_insert_after_page_1(fake, SUPPLIERS, suppliers(10)[9]), db, full=True)

    # 10000 was listed before Visma deleted it; 10003 slid onto page 1 and was never listed.
    assert (during.missed, during.deleted) == (1, 0)
    assert [r.url.path for r in fake.api_requests() if r.url.path != SUPPLIERS] == ["/v1/supplier/10003"]
    assert stored_state(db, "suppliers") == ({f"{10000 + i}" for i in range(10)}, set())
    assert len(fake.api_requests(SUPPLIERS)) == 3 + 3  # a sync, then one read: no second read needed

    after = sync(fake.handle, db, full=True)  # the next reconciling read misses 10000: Visma says 404

    assert (after.missed, after.deleted) == (1, 1)
    assert fake.api_requests()[-1].url.path == "/v1/supplier/10000"
    assert stored_state(db, "suppliers") == ({f"{10001 + i}" for i in range(9)}, {"10000"})


def test_without_a_read_by_key_a_second_read_confirms_what_the_first_missed(db):
    fake = FakeVisma(lists={PURCHASE_ORDERS: purchase_orders(9)}, max_page_size=3)
    sync(fake.handle, db, "purchase_orders", full=True)

    during = sync(delete_first_and_insert_after_page_1(fake, PURCHASE_ORDERS, purchase_orders(10)[9]), db,
                  "purchase_orders", full=True)

    assert (during.missed, during.deleted) == (1, 0)
    assert len(fake.api_requests(PURCHASE_ORDERS)) == 3 + 3 + 3  # a sync, then the read and a second read
    assert stored_state(db, "purchase_orders") == ({f"RegularOrder|{10000 + i}" for i in range(10)}, set())

    after = sync(fake.handle, db, "purchase_orders", full=True)

    assert (after.missed, after.deleted) == (1, 1)
    assert stored_state(db, "purchase_orders") == (
        {f"RegularOrder|{10001 + i}" for i in range(9)}, {"RegularOrder|10000"}
    )


def test_when_many_records_vanish_one_second_read_confirms_them_instead_of_a_read_each(db):
    records = suppliers(9)
    fake = FakeVisma(lists={SUPPLIERS: records}, max_page_size=3)
    sync(fake.handle, db, full=True)
    records[:] = [{**record, "number": f"2{record['number']}"} for record in records]  # re-keyed

    result = sync(fake.handle, db, full=True, max_key_reads=5)

    live, deleted = stored_state(db, "suppliers")
    assert deleted == {f"{10000 + i}" for i in range(9)}
    assert live == {f"2{10000 + i}" for i in range(9)}
    assert (result.missed, result.deleted) == (9, 9)
    assert {r.url.path for r in fake.api_requests()} == {SUPPLIERS}  # no read by key
    assert len(fake.api_requests(SUPPLIERS)) == 3 + 3 + 3  # a sync, then the read and a second read


def test_a_read_by_key_that_proves_nothing_falls_back_to_a_second_read(db):
    records = suppliers(6)
    fake = FakeVisma(lists={SUPPLIERS: records}, max_page_size=3)
    sync(fake.handle, db, full=True)
    gone = records.pop(4)
    fake.fail(f"{SUPPLIERS}/{gone['number']}", json_response(
        404, {"Message": "No HTTP resource was found that matches the request URI 'https://visma.test/...'."}
    ))

    result = sync(fake.handle, db, full=True)

    assert stored_state(db, "suppliers")[1] == {gone["number"]}
    assert (result.missed, result.deleted) == (1, 1)
    # a sync, the read, a read by key whose routing 404 proves nothing, and so a second read
    assert len(fake.api_requests(SUPPLIERS)) == 2 + 2 + 2
