"""The client against the Visma sandbox over real HTTP: complete reads, delta, faults, auth, limits.

The sandbox is a real server on 127.0.0.1 (port 0) speaking Visma's wire format, with the demo
group's data. Sleeps are injected (recorded, not slept) so that retries and pacing stay fast; the
sandbox's faults are counted by request, not by time, so this changes nothing it sees.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator

import httpx
import pytest

from visma_tableau_pipeline.sandbox.visma import FaultPlan, VismaSandbox
from visma_tableau_pipeline.sandbox.visma.companies import CUSTOMER_TENANT_ID
from visma_tableau_pipeline.settings import CompanySettings, sandbox_companies
from visma_tableau_pipeline.state.keys import key_parts
from visma_tableau_pipeline.visma.catalogue import ENTITIES, entity, record_key
from visma_tableau_pipeline.visma.client import Presence, VismaClient
from visma_tableau_pipeline.visma.errors import VismaAuthError, VismaTenantError
from visma_tableau_pipeline.visma.pacing import Pacer
from visma_tableau_pipeline.visma.retrying import RetryPolicy
from visma_tableau_pipeline.visma.timestamps import max_modified

COMPANY = "nordic-no"
# Small maxima force many pages, and a maximum below the requested 1000 is the stop-rule trap.
MAX_PAGE_SIZES = {"/v1/supplierInvoice": 25, "/v1/customerinvoice": 40, "/v2/journaltransaction": 30}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[VismaSandbox]:
    with VismaSandbox(240, seed=7, max_page_sizes=MAX_PAGE_SIZES) as served:
        yield served


@pytest.fixture
def settings(sandbox: VismaSandbox) -> CompanySettings:
    sandbox.faults = FaultPlan()
    return next(c for c in sandbox_companies(sandbox.base_url) if c.company_id == COMPANY)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(settings: CompanySettings, sleeps: Sleeps | None = None, **options) -> VismaClient:
    sleeps = sleeps if sleeps is not None else Sleeps()
    return VismaClient(
        settings,
        pacer=Pacer(sleep=sleeps),
        sleep=sleeps,
        retry_policy=RetryPolicy(backoff_initial=0.01, backoff_max=0.05),
        **options,
    )


def read_all(client: VismaClient, name: str, **kwargs) -> list[dict]:
    return [record for batch in client.read_entity(entity(name), **kwargs) for record in batch]


def truth(sandbox: VismaSandbox, name: str) -> list[dict]:
    return list(sandbox.records(COMPANY, name))


@pytest.mark.parametrize("name", [e.name for e in ENTITIES])
def test_every_entity_is_read_completely(sandbox, settings, name):
    with make_client(settings) as client:
        records = read_all(client, name)
    expected = truth(sandbox, name)
    assert len(records) == len(expected) > 0
    keys = [record_key(entity(name), r) for r in records]
    assert len(set(keys)) == len(keys)
    assert set(keys) == {record_key(entity(name), r) for r in expected}


def test_journal_batches_split_over_pages_arrive_whole(sandbox, settings):
    with make_client(settings, max_concurrency=3) as client:
        batches = read_all(client, "journal_transactions")
    lines = {(b["module"], b["batchNumber"]): len(b["journalTransactionLines"]) for b in batches}
    expected = {(b["module"], b["batchNumber"]): len(b["journalTransactionLines"]) for b in truth(sandbox, "journal_transactions")}
    assert lines == expected
    assert sum(expected.values()) > 30  # more lines than one page holds


def test_delta_read_returns_what_changed_since_the_watermark(sandbox, settings):
    with make_client(settings) as client:
        watermark = max_modified(read_all(client, "supplier_invoices"))
        changed = sandbox.modify(COMPANY, "supplier_invoices", record_key(entity("supplier_invoices"), truth(sandbox, "supplier_invoices")[3]))
        delta = read_all(client, "supplier_invoices", modified_since=watermark)
    keys = {record_key(entity("supplier_invoices"), r) for r in delta}
    assert record_key(entity("supplier_invoices"), changed) in keys
    assert len(delta) < sandbox.count(COMPANY, "supplier_invoices")
    assert max_modified(delta, current=watermark) == changed["lastModifiedDateTime"]


def test_a_read_survives_server_errors_throttling_and_dropped_connections(sandbox, settings):
    sandbox.faults = FaultPlan(error_burst_start=2, error_burst_length=3, throttle_every=4, drop_at=(9,))
    sleeps = Sleeps()
    with make_client(settings, sleeps) as client:
        records = read_all(client, "supplier_invoices")
        stats = client.stats.as_metadata()
    assert len(records) == sandbox.count(COMPANY, "supplier_invoices")
    assert stats["retries"] >= 5 and stats["throttled_seconds"] >= 1
    assert any(seconds >= 1 for seconds in sleeps)  # the 429's Retry-After was honoured


def test_rows_moving_during_the_read_end_in_their_newest_version(sandbox, settings):
    sandbox.faults = FaultPlan(shift_after_page=1, shift_modify=3, shift_entity="customer_invoices")
    latest: dict[tuple[str, ...], dict] = {}
    with make_client(settings, max_concurrency=1) as client:
        for record in read_all(client, "customer_invoices"):
            latest[record_key(entity("customer_invoices"), record)] = record  # a keyed upsert
    expected = {record_key(entity("customer_invoices"), r): r for r in truth(sandbox, "customer_invoices")}
    assert set(latest) == set(expected)
    assert all(latest[k]["lastModifiedDateTime"] == r["lastModifiedDateTime"] for k, r in expected.items())


@pytest.mark.parametrize("name", [e.name for e in ENTITIES if e.by_key_path])
def test_a_record_read_by_its_key_is_stored_as_its_list_wrote_it_and_a_missing_one_is_gone(
    sandbox, settings, name
):
    with make_client(settings) as client:
        *_, listed = client.read_entity(entity(name), as_stored=True)
        key = key_parts(listed.keys[-1])
        found = client.read_by_key(entity(name), key)
        missing = client.read_by_key(entity(name), (*key[:-1], f"{key[-1]}NOSUCH"))
    assert found.presence is Presence.EXISTS and found.records is not None
    assert (found.records.keys, found.records.texts) == (listed.keys[-1:], listed.texts[-1:])
    assert missing.presence is Presence.GONE and "not found" in missing.detail


def test_a_deleted_record_read_by_its_key_is_gone_and_a_path_that_matches_no_route_is_unclear(
    sandbox, settings
):
    invoices = entity("supplier_invoices")
    created = record_key(invoices, sandbox.create(COMPANY, "supplier_invoices"))
    with make_client(settings) as client:
        assert client.read_by_key(invoices, created).presence is Presence.EXISTS
        sandbox.delete(COMPANY, "supplier_invoices", created)
        gone = client.read_by_key(invoices, created)
        unclear = client.read_by_key(invoices, ("Invoice", "000001/lines"))  # %2F: two segments
    assert gone.presence is Presence.GONE
    assert f"/v1/supplierInvoice/{created[0]}/{created[1]}: 404" in gone.detail
    assert unclear.presence is Presence.UNCLEAR and "routing" in unclear.detail


def test_expired_tokens_are_renewed(sandbox, settings):
    with make_client(settings) as client:
        read_all(client, "suppliers")
        sandbox.expire_tokens()
        assert len(read_all(client, "suppliers")) == sandbox.count(COMPANY, "suppliers")
        assert client.stats.token_requests == 2


def test_the_customer_tenant_id_is_explained(settings):
    with make_client(settings.model_copy(update={"tenant_id": CUSTOMER_TENANT_ID})) as client:
        with pytest.raises(VismaTenantError, match="company tenant id"):
            read_all(client, "suppliers")


def test_a_wrong_secret_is_refused_at_login(settings):
    wrong = settings.model_copy(update={"client_secret": type(settings.client_secret)("nope")})
    with make_client(wrong) as client, pytest.raises(VismaAuthError, match="VISMA_CLIENT_SECRET"):
        read_all(client, "suppliers")


def test_the_client_paces_itself_instead_of_running_into_the_limit(settings):
    with VismaSandbox(240, seed=7, rate_limit_per_hour=12, max_page_sizes={"/v1/supplierInvoice": 25}) as limited:
        company = next(c for c in sandbox_companies(limited.base_url) if c.company_id == COMPANY)
        sleeps = Sleeps()
        with make_client(company, sleeps, max_concurrency=1) as client:
            records = read_all(client, "supplier_invoices")
        assert len(records) == limited.count(COMPANY, "supplier_invoices")
        assert sleeps, "the pacer never slowed down"
        assert all(status != 429 for _, _, status in limited.request_history)


def test_pages_already_read_are_freed_without_waiting_for_the_cyclic_collector(sandbox, settings):
    """A long read holds no more than a window of pages, however rarely Python's GC runs."""
    gc.collect()
    gc.disable()
    try:
        before = {id(o) for o in gc.get_objects() if isinstance(o, httpx.Response)}
        with make_client(settings, max_concurrency=2) as client:
            batches = 0
            for _ in client.read_entity(entity("supplier_invoices"), as_stored=True):
                batches += 1
            pages_left = [
                o for o in gc.get_objects()
                if isinstance(o, httpx.Response) and id(o) not in before
                and o.request.url.path == "/v1/supplierInvoice"
            ]
    finally:
        gc.enable()
    assert batches == math.ceil(len(truth(sandbox, "supplier_invoices")) / MAX_PAGE_SIZES["/v1/supplierInvoice"])
    assert pages_left == []
