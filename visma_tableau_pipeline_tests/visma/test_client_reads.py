"""Reading entities completely and exactly: paging, journal batches, dedupe, delta, concurrency."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from visma_tableau_pipeline.visma.catalogue import ENTITIES, entity
from visma_tableau_pipeline.visma.client import PageProgress, Presence, VismaClient
from visma_tableau_pipeline.visma.errors import VismaUnstableReadError
from visma_tableau_pipeline.visma.pacing import Pacer
from visma_tableau_pipeline.visma.paging import Deduplicator

from .fake_visma import JOURNAL, FakeClock, FakeVisma, company, suppliers


def make_client(
    fake: FakeVisma, clock: FakeClock | None = None, handler=None, **options
) -> VismaClient:
    clock = clock or FakeClock()
    return VismaClient(
        company(),
        transport=httpx.MockTransport(handler or fake.handle),
        pacer=Pacer(clock=clock, sleep=clock.sleep),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def read_all(client: VismaClient, name: str, **kwargs) -> list[dict]:
    return [record for batch in client.read_entity(entity(name), **kwargs) for record in batch]


def page_numbers(fake: FakeVisma, path: str) -> list[int]:
    return sorted(int(r.url.params["pageNumber"]) for r in fake.api_requests(path))


def test_page_capped_below_the_requested_size_is_not_mistaken_for_the_last_page():
    # Visma silently caps pageSize=1000 at maxPageSize=500; stopping on the requested size would
    # end the read after 500 of 2,300 suppliers.
    fake = FakeVisma(lists={"/v1/supplier": suppliers(2300)}, max_page_size=500)
    with make_client(fake) as client:
        records = read_all(client, "suppliers", page_size=1000)
    assert len(records) == 2300
    assert {r["number"] for r in records} == {f"{10000 + i}" for i in range(2300)}
    assert page_numbers(fake, "/v1/supplier") == [1, 2, 3, 4, 5]
    assert {r.url.params["pageSize"] for r in fake.api_requests()} == {"1000"}


def test_read_stops_at_total_count_without_asking_for_an_empty_page():
    fake = FakeVisma(lists={"/v1/supplier": suppliers(1000)}, max_page_size=500)
    with make_client(fake) as client:
        assert len(read_all(client, "suppliers")) == 1000
    assert page_numbers(fake, "/v1/supplier") == [1, 2]


def test_empty_list_is_one_request():
    fake = FakeVisma(lists={"/v1/supplier": []})
    with make_client(fake) as client:
        assert read_all(client, "suppliers") == []
    assert page_numbers(fake, "/v1/supplier") == [1]


def _journal_batches() -> list[dict]:
    batches = []
    for number, line_count in ((1, 3), (2, 5), (3, 1), (4, 4)):
        lines = [
            {"lineNumber": n, "accountNumber": "1920", "debitAmount": Decimal(f"{number}.0{n}")}
            for n in range(1, line_count + 1)
        ]
        batches.append({
            "module": "ModuleGL", "batchNumber": f"00000{number}",
            "lastModifiedDateTime": "2024-03-01T10:00:00", "journalTransactionLines": lines,
        })
    return batches


def test_journal_batch_split_over_pages_is_merged_with_all_its_lines():
    # 13 lines, 4 per page: batch 2 spans pages 1-2, batch 4 spans pages 3-4.
    fake = FakeVisma(lists={JOURNAL: _journal_batches()}, max_page_size=4)
    with make_client(fake, max_concurrency=2) as client:
        batches = read_all(client, "journal_transactions", period="202403")
    assert [b["batchNumber"] for b in batches] == ["000001", "000002", "000003", "000004"]
    assert [len(b["journalTransactionLines"]) for b in batches] == [3, 5, 1, 4]
    assert [line["lineNumber"] for line in batches[1]["journalTransactionLines"]] == [1, 2, 3, 4, 5]
    assert page_numbers(fake, JOURNAL) == [1, 2, 3, 4]
    assert all("metadata" not in b for b in batches)


def test_rows_shifted_between_pages_are_yielded_once_and_none_is_missed():
    records = suppliers(6)
    fake = FakeVisma(lists={"/v1/supplier": records}, max_page_size=3)

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.url.params.get("pageNumber") == "1" and not any(r["number"] == "09999" for r in records):
            # A record is inserted at the front while the read goes on: every row moves one
            # place on, so page 2 starts with the last row of page 1.
            records.insert(0, {"number": "09999", "lastModifiedDateTime": "2024-03-01T11:00:00"})
        return response

    with make_client(fake, handler=handler, max_concurrency=1) as client:
        numbers = [r["number"] for r in read_all(client, "suppliers")]
        assert client.stats.extra_passes == 1
    # The first pass saw 10002 twice: a second pass finds the row it could not see.
    assert numbers == ["10000", "10001", "10002", "10003", "10004", "10005", "09999"]
    assert page_numbers(fake, "/v1/supplier") == [1, 1, 2, 2, 3, 3]


def test_a_record_edited_during_the_read_arrives_in_its_newest_version_and_skips_nothing():
    records = [
        {"number": f"1000{i}", "lastModifiedDateTime": "2024-03-01T10:00:00", "name": "old"}
        for i in range(1, 5)
    ]
    fake = FakeVisma(lists={"/v1/supplier": records}, max_page_size=2)

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.url.params.get("pageNumber") == "1" and records[-1]["number"] != "10001":
            # 10001 is edited right after page 1 was served: it moves to the end of the list.
            edited = {**records.pop(0), "lastModifiedDateTime": "2024-03-01T10:05:00", "name": "new"}
            records.append(edited)
        return response

    with make_client(fake, handler=handler, max_concurrency=1) as client:
        read = read_all(client, "suppliers")
    # Pass 1: [10001 old, 10002], then [10004, 10001 new]: 10003 slid onto page 1 and was
    # skipped. Pass 2 finds 10003 and yields nothing twice.
    assert [(r["number"], r["name"]) for r in read] == [
        ("10001", "old"), ("10002", "old"), ("10004", "old"), ("10001", "new"), ("10003", "old"),
    ]


def test_a_list_that_never_stops_moving_is_reported_as_possibly_incomplete():
    records = suppliers(4)
    fake = FakeVisma(lists={"/v1/supplier": records}, max_page_size=2)
    inserted = iter(range(100))

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.url.params.get("pageNumber") == "1":
            records.insert(0, {"number": f"2{next(inserted):04d}", "lastModifiedDateTime": "2024-03-01T11:00:00"})
        return response

    with make_client(fake, handler=handler, max_concurrency=1, max_passes=2) as client:
        with pytest.raises(VismaUnstableReadError, match="2 passes") as raised:
            read_all(client, "suppliers")
    assert raised.value.entity == "suppliers" and "watermark must not advance" in str(raised.value)


def test_delta_query_is_encoded_once_with_the_condition_each_endpoint_takes():
    fake = FakeVisma(lists={"/v1/supplier": suppliers(2), JOURNAL: _journal_batches()})
    with make_client(fake) as client:
        read_all(client, "suppliers", modified_since="2024-03-01T13:00:00.250Z")
        read_all(client, "journal_transactions", modified_since=datetime(2024, 3, 1, 13, 0))
    supplier_request, journal_request = fake.api_requests("/v1/supplier")[0], fake.api_requests(JOURNAL)[0]
    # Watermark minus the 5-minute overlap, in Visma's filter format.
    assert supplier_request.url.params["lastModifiedDateTime"] == "2024-03-01 12:55:00.250"
    assert supplier_request.url.params["lastModifiedDateTimeCondition"] == ">="
    assert "%25" not in str(supplier_request.url)  # not encoded twice
    assert "%3E%3D" in supplier_request.url.query.decode()  # '>=' encoded once
    assert journal_request.url.params["lastModifiedDateTime"] == "2024-03-01 12:55:00"
    assert "lastModifiedDateTimeCondition" not in journal_request.url.params


def test_every_parameter_the_client_sends_is_named_in_the_openapi_document(openapi):
    fake = FakeVisma(
        lists={e.path: [] for e in ENTITIES if e.paging.value == "paged"},
        unpaged={e.path: [] for e in ENTITIES if e.paging.value == "none" and "{" not in e.path}
        | {"/v1/dimension": []},
    )
    with make_client(fake) as client:
        for e in ENTITIES:
            read_all(client, e.name, modified_since="2024-01-01", period="202401" if e.period_param else None)
    for request in fake.api_requests():
        template = request.url.path
        declared = {p["name"] for p in openapi["paths"][template]["get"].get("parameters", [])}
        assert set(request.url.params) <= declared, request.url


def test_full_read_of_time_cards_sends_the_filter_the_endpoint_requires():
    fake = FakeVisma(unpaged={"/v1/timeCard": [{"refNbr": "TC1", "lastModifiedDateTime": "2024-01-01"}]})
    with make_client(fake) as client:
        assert [r["refNbr"] for r in read_all(client, "time_cards")] == ["TC1"]
    params = fake.api_requests("/v1/timeCard")[0].url.params
    assert (params["lastModifiedDateTime"], params["lastModifiedDateTimeCondition"]) == ("1900-01-01", ">=")


def test_dimensions_are_read_id_by_id():
    fake = FakeVisma(unpaged={
        "/v1/dimension": ["DEPARTMENT", "PROJECT"],
        "/v1/dimension/DEPARTMENT": {"id": "DEPARTMENT", "segments": [{"segmentId": 1}]},
        "/v1/dimension/PROJECT": {"id": "PROJECT", "segments": []},
    })
    with make_client(fake) as client:
        assert [d["id"] for d in read_all(client, "dimensions")] == ["DEPARTMENT", "PROJECT"]


def test_amounts_arrive_as_exact_decimals():
    fake = FakeVisma(lists={"/v1/supplier": suppliers(1)})
    fake.lists["/v1/supplier"][0]["creditLimit"] = Decimal("0.10")
    fake.lists["/v1/supplier"][0]["balance"] = Decimal("1234567.89")
    with make_client(fake) as client:
        (record,) = read_all(client, "suppliers")
    assert record["balance"] == Decimal("1234567.89") and isinstance(record["balance"], Decimal)
    assert isinstance(record["creditLimit"], Decimal) and record["creditLimit"] == Decimal("0.1")


def test_pages_are_fetched_in_parallel_and_yielded_in_order():
    # Later pages answer faster than earlier ones; the order must still be the page order.
    fake = FakeVisma(
        lists={"/v1/supplier": suppliers(40)},
        max_page_size=4,
        latency=lambda page: 0.0 if page == 1 else (12 - page % 11) * 0.004 + random.random() * 0.004,
    )
    progress: list[PageProgress] = []
    with make_client(fake, max_concurrency=4) as client:
        numbers = [r["number"] for r in read_all(client, "suppliers", on_page=progress.append)]
    assert numbers == [f"{10000 + i}" for i in range(40)]
    assert fake.max_in_flight > 1
    assert fake.max_in_flight <= 4
    assert [p.page for p in progress] == list(range(1, 11))
    assert progress[-1].records_yielded == 40 and progress[0].total_count == 40


def test_reading_a_huge_list_keeps_only_a_window_of_pages_in_flight():
    fake = FakeVisma(lists={"/v1/supplier": suppliers(200)}, max_page_size=2)
    with make_client(fake, max_concurrency=2) as client:
        batches = client.read_entity(entity("suppliers"))
        next(batches)
        next(batches)
        requested = len(fake.api_requests("/v1/supplier"))
        batches.close()
    assert requested <= 2 + 2 * 2 + 1  # page 1 + the window, not all 100 pages


def test_stats_count_calls_pages_and_bytes():
    fake = FakeVisma(lists={"/v1/supplier": suppliers(10)}, max_page_size=4)
    with make_client(fake) as client:
        read_all(client, "suppliers")
        stats = client.stats.as_metadata()
    assert stats["api_calls"] == 3 and stats["pages"] == 3 and stats["token_requests"] == 1
    assert stats["bytes"] > 0 and stats["retries"] == 0


def test_period_on_an_entity_without_a_period_filter_is_refused():
    with make_client(FakeVisma()) as client, pytest.raises(ValueError, match="no period filter"):
        read_all(client, "suppliers", period="202401")


def test_ipp_company_id_and_accept_headers_are_sent():
    fake = FakeVisma(lists={"/v1/supplier": []})
    client = VismaClient(
        company(ipp_company_id="1234567"), transport=httpx.MockTransport(fake.handle), pacer=Pacer()
    )
    with client:
        read_all(client, "suppliers")
    request = fake.api_requests("/v1/supplier")[0]
    assert request.headers["ipp-company-id"] == "1234567"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == "Bearer token-1"


def test_dedupe_keeps_apart_keys_whose_parts_could_join_alike():
    dedupe = Deduplicator(entity("supplier_invoices"))
    first = {"documentType": "Invoice|1", "referenceNumber": "2"}
    second = {"documentType": "Invoice", "referenceNumber": "1|2"}
    assert dedupe.admit(first) and dedupe.admit(second)
    assert not dedupe.admit(second)  # the same key again, not newer
    assert dedupe.repeats == 1


@pytest.mark.parametrize("listed", [e for e in ENTITIES if e.by_key_path], ids=lambda e: e.name)
def test_a_read_by_key_is_a_get_of_the_openapi_document_naming_every_key_field(openapi, listed):
    """The path answers with the entity's own schema, and each key field fills one placeholder."""
    answer = openapi["paths"][listed.by_key_path]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": f"#/components/schemas/{listed.schema}"}
    assert listed.by_key_path.count("{") == len(listed.key)
    fake = FakeVisma(lists={listed.path: []})
    with make_client(fake) as client:
        answer = client.read_by_key(listed, ("A B&C",) * len(listed.key))
    assert answer.presence is Presence.GONE  # the fake has none: Visma's 404 about the record
    (request,) = fake.api_requests()
    assert request.url.raw_path.decode().count("/A%20B%26C") == len(listed.key)  # each part encoded once
