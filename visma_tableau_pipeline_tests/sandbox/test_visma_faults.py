"""Each kind of fault the Visma sandbox injects is observable from a plain httpx client."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from visma_tableau_pipeline.sandbox.visma import DemoSize, FaultPlan, VismaSandbox
from visma_tableau_pipeline_tests.sandbox.visma_support import SandboxClient


@pytest.fixture()
def sandbox():
    with VismaSandbox(DemoSize(supplier_invoices=240), seed=5) as running:
        yield running


def _statuses(client: SandboxClient, n: int) -> list[int]:
    return [client.get("/v1/account").status_code for _ in range(n)]


def test_burst_of_503s_starting_at_request_m(sandbox):
    client = SandboxClient(sandbox)
    sandbox.faults = FaultPlan(error_burst_start=2, error_burst_length=3)
    assert _statuses(client, 6) == [200, 503, 503, 503, 200, 200]
    client.close()


def test_every_nth_request_fails(sandbox):
    client = SandboxClient(sandbox)
    sandbox.faults = FaultPlan(error_every=3, error_status=502)
    assert _statuses(client, 6) == [200, 200, 502, 200, 200, 502]
    client.close()


def test_throttling_answers_429_with_retry_after(sandbox):
    client = SandboxClient(sandbox)
    sandbox.faults = FaultPlan(throttle_every=2, throttle_retry_after=7)
    first, second = client.get("/v1/account"), client.get("/v1/account")
    assert first.status_code == 200
    assert second.status_code == 429 and second.headers["Retry-After"] == "7"
    client.close()


def test_dropped_connection_is_a_transport_error(sandbox):
    client = SandboxClient(sandbox)
    sandbox.faults = FaultPlan(drop_at=(2,))
    assert client.get("/v1/supplierInvoice", pageSize=100).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/v1/supplierInvoice", pageSize=100)
    assert client.get("/v1/supplierInvoice", pageSize=100).status_code == 200
    client.close()


def test_slow_pages_add_latency_to_paged_lists_only(sandbox):
    client = SandboxClient(sandbox)
    sandbox.faults = FaultPlan(page_latency_ms=300)
    started = time.perf_counter()
    client.get("/v1/supplier", pageSize=10)
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    client.get("/v1/account")
    assert time.perf_counter() - started < 0.3
    client.close()


def _read_all_keys(client: SandboxClient) -> list[str]:
    return [r["referenceNumber"] for page in client.pages("/v1/customerinvoice", 50) for r in page]


def test_records_modified_while_paging_shift_rows_between_pages(sandbox):
    client = SandboxClient(sandbox)
    before = [r["referenceNumber"] for r in sandbox.records("nordic-no", "customer_invoices")]
    sandbox.faults = FaultPlan(shift_after_page=1, shift_modify=2, shift_entity="customer_invoices", seed=1)
    read = _read_all_keys(client)
    seen_twice = [key for key, n in Counter(read).items() if n > 1]
    missed = set(before) - set(read)
    assert len(seen_twice) == 2 and all(before.index(k) < 50 for k in seen_twice)
    assert missed == set(before[50:52])  # the rows that moved up into page 1's tail
    after = list(sandbox.records("nordic-no", "customer_invoices"))
    assert [r["referenceNumber"] for r in after[-2:]] == read[-2:]
    assert all(r["lastModifiedDateTime"] >= "2026-11-01" for r in after[-2:])
    # a second scan (what a later pass does) sees everything exactly once
    assert sorted(_read_all_keys(client)) == sorted(before)
    client.close()


def test_hard_deletes_while_paging_and_deletes_vanish_without_trace(sandbox):
    client = SandboxClient(sandbox)
    before = [r["referenceNumber"] for r in sandbox.records("nordic-no", "customer_invoices")]
    sandbox.faults = FaultPlan(shift_after_page=2, shift_delete=1, shift_entity="customer_invoices")
    read = _read_all_keys(client)
    gone = set(before) - {r["referenceNumber"] for r in sandbox.records("nordic-no", "customer_invoices")}
    assert len(gone) == 1 and gone <= set(read)  # served on page 2, then deleted
    assert len(set(before) - set(read)) == 1  # and one row slipped past the page boundary
    rescan = _read_all_keys(client)
    assert len(rescan) == len(before) - 1 and not gone & set(rescan)
    client.close()


def test_shift_is_deterministic_by_seed():
    def shifted(seed: int) -> list[str]:
        with VismaSandbox(DemoSize(supplier_invoices=120), seed=9) as running:
            running.faults = FaultPlan(shift_after_page=1, shift_modify=3, seed=seed)
            client = SandboxClient(running)
            list(client.pages("/v1/supplierInvoice", 30))
            client.close()
            return [r["referenceNumber"] for r in running.records("nordic-no", "supplier_invoices")][-3:]

    assert shifted(1) == shifted(1)


def test_faults_can_be_set_through_the_admin_api(sandbox):
    client = SandboxClient(sandbox)
    admin = httpx.put(f"{sandbox.base_url}/_sandbox/faults", json={"error_burst_start": 1, "error_burst_length": 1})
    assert admin.status_code == 200 and admin.json()["error_burst_length"] == 1
    assert _statuses(client, 2) == [503, 200]
    assert httpx.put(f"{sandbox.base_url}/_sandbox/faults", json={"explode": True}).status_code == 400
    assert httpx.get(f"{sandbox.base_url}/_sandbox/requests").json()["counts"]["nordic-no"] >= 2
    client.close()
