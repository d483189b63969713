"""The Visma sandbox posts signed change notifications to a real receiver over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from visma_tableau_pipeline.sandbox.server import ServerThread
from visma_tableau_pipeline.sandbox.visma import DemoSize, FaultPlan, VismaSandbox
from visma_tableau_pipeline.settings import SANDBOX_TENANT_IDS

SECRET = "subscription-secret-for-tests"


@pytest.fixture()
def receiver():
    """A tiny webhook receiver: keeps (headers, raw body) of every POST."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    with ServerThread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        yield f"{url}/hook", received


def _sandbox(url: str, **faults: object) -> VismaSandbox:
    return VismaSandbox(DemoSize(supplier_invoices=60), seed=2, webhook_url=url, webhook_secret=SECRET,
                        faults=FaultPlan(**faults))


def test_changes_are_notified_with_a_valid_signature(receiver):
    url, received = receiver
    sandbox = _sandbox(url)
    sandbox.modify("nordic-no", "supplier_invoices", ("Invoice", "000003"))
    sandbox.create("nordic-se", "customers")
    sandbox.delete("nordic-no", "suppliers", "50002")
    batch = next(sandbox.records("nordic-no", "journal_transactions"))
    sandbox.modify("nordic-no", "journal_transactions", (batch["module"], batch["batchNumber"]))  # no GL events
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    assert len(received) == 3
    for headers, body in received:
        expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(headers["x-vwd-signature-v1"], expected)
        for name in ("x-vwd-notification-id", "x-vwd-event-id", "x-vwd-notification-timestamp"):
            assert headers[name]
    bodies = [json.loads(body) for _, body in received]
    assert bodies[0] == {"tenantId": SANDBOX_TENANT_IDS["nordic-no"], "event": "SupplierInvoice", "action": "Update",
                         "id": "Invoice/000003", "key": {"documentType": "Invoice", "referenceNumber": "000003"},
                         "timestamp": bodies[0]["timestamp"]}
    assert received[0][0]["x-vwd-tenant-id"] == SANDBOX_TENANT_IDS["nordic-no"]
    assert (bodies[1]["event"], bodies[1]["action"]) == ("Customer", "Create")
    assert (bodies[2]["event"], bodies[2]["action"], bodies[2]["id"]) == ("Supplier", "Delete", "50002")
    changed = next(r for r in sandbox.records("nordic-no", "supplier_invoices") if r["referenceNumber"] == "000003")
    assert bodies[0]["timestamp"] == changed["lastModifiedDateTime"]


def test_a_fraction_is_dropped_deterministically(receiver):
    url, received = receiver

    def run() -> int:
        received.clear()
        sandbox = _sandbox(url, webhook_drop_rate=0.5, seed=4)
        for number in range(1, 21):
            sandbox.modify("nordic-no", "customer_invoices", ("Invoice", f"{number:06d}"))
        sandbox.webhooks.wait_idle()
        sandbox.stop()
        assert sandbox.webhooks.stats.dropped + sandbox.webhooks.stats.delivered == 20
        return len(received)

    delivered = run()
    assert 3 < delivered < 17
    assert run() == delivered


def test_duplicates_repeat_the_same_notification(receiver):
    url, received = receiver
    sandbox = _sandbox(url, webhook_duplicate_rate=1.0)
    sandbox.modify("nordic-no", "customers", "10001")
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    assert len(received) == 2
    assert received[0] == received[1]


def test_admin_mutations_notify_too(receiver):
    url, received = receiver
    sandbox = _sandbox(url)
    with sandbox:
        answer = httpx.post(f"{sandbox.base_url}/_sandbox/modify",
                            json={"company_id": "nordic-no", "entity": "suppliers", "key": ["50001"],
                                  "changes": {"name": "Bjørnstad Data & Sønn AS"}})
        assert answer.status_code == 200 and answer.json()["name"] == "Bjørnstad Data & Sønn AS"
        missing = httpx.post(f"{sandbox.base_url}/_sandbox/delete",
                             json={"company_id": "nordic-no", "entity": "suppliers", "key": ["99999"]})
        assert missing.status_code == 404
        sandbox.webhooks.wait_idle()
    assert [json.loads(body)["id"] for _, body in received] == ["50001"]


def test_a_receiver_that_is_down_loses_the_event():
    sandbox = VismaSandbox(DemoSize(supplier_invoices=20), webhook_url="http://127.0.0.1:9/hook",
                           webhook_secret=SECRET)
    sandbox.modify("nordic-no", "customers", "10001")
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    assert (sandbox.webhooks.stats.failed, sandbox.webhooks.stats.delivered) == (1, 0)
