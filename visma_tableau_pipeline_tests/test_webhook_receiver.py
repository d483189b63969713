"""The webhook receiver over real HTTP: the sandboxes notify it, and the inbox holds what arrived.

Each test runs the receiver on uvicorn (127.0.0.1, free port) over a SQLite state database in
tmp_path; the Visma sandbox posts signed notifications to it and the Tableau sandbox fires its
webhooks at it, exactly as the real services would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tableauserverclient as TSC

from visma_tableau_pipeline.sandbox.server import ServerThread
from visma_tableau_pipeline.sandbox.tableau import TableauSandbox
from visma_tableau_pipeline.sandbox.visma import DemoSize, FaultPlan, VismaSandbox
from visma_tableau_pipeline.settings import SANDBOX_TENANT_IDS
from visma_tableau_pipeline.state import Notification, StateDB, pending
from visma_tableau_pipeline.visma.webhooks import sign
from visma_tableau_pipeline.webhook_receiver import MAX_BODY_BYTES, ReceiverConfigError, build_receiver_app

SECRET = "visma-subscription-secret-for-tests"
TOKEN = "tableau-url-token-0123456789abcdefghij"
PAT_NAME, PAT_SECRET = "ci-token", "ci-secret-value"
# nordic-se is left out on purpose: its notifications come from a tenant the receiver does not know.
TENANTS = {SANDBOX_TENANT_IDS["nordic-no"]: "nordic-no"}


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.dispose()


@pytest.fixture
def receiver(state: StateDB, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    caplog.set_level(logging.DEBUG, logger="visma_tableau_pipeline")
    app = build_receiver_app(state, visma_secret=SECRET, tableau_token=TOKEN, tenant_companies=TENANTS)
    with ServerThread(app) as url:
        yield url
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert SECRET not in logged and TOKEN not in logged


def inbox(state: StateDB, expected: int, timeout: float = 5.0) -> list[Notification]:
    """The pending notifications once `expected` have arrived (or whatever is there at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        with state.connect() as conn:
            notes = pending(conn)
        if len(notes) >= expected or time.monotonic() > deadline:
            return notes
        time.sleep(0.02)


def visma_sandbox(receiver_url: str, **faults: object) -> VismaSandbox:
    return VismaSandbox(DemoSize(supplier_invoices=20), seed=3, webhook_url=f"{receiver_url}/webhooks/visma",
                        webhook_secret=SECRET, faults=FaultPlan(**faults))


def signed_post(url: str, body: bytes, secret: str = SECRET, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/webhooks/visma", content=body,
                      headers={"x-vwd-signature-v1": sign(body, secret), **headers})


# -- Visma ------------------------------------------------------------------------------------


def test_a_change_in_visma_lands_in_the_inbox_with_its_company(receiver: str, state: StateDB) -> None:
    sandbox = visma_sandbox(receiver)
    sandbox.modify("nordic-no", "supplier_invoices", ("Invoice", "000003"))
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    [note] = inbox(state, 1)
    assert (note.source, note.company_id, note.entity, note.record_key) == (
        "visma", "nordic-no", "supplier_invoices", "Invoice/000003")
    assert json.loads(note.raw_body)["event"] == "SupplierInvoice"
    assert sandbox.webhooks.stats.delivered == 1


def test_a_duplicate_notification_is_stored_once(receiver: str, state: StateDB) -> None:
    sandbox = visma_sandbox(receiver, webhook_duplicate_rate=1.0)
    sandbox.modify("nordic-no", "customers", "10001")
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    assert sandbox.webhooks.stats.delivered == 2  # both deliveries were answered 2xx
    [note] = inbox(state, 2, timeout=0.3)
    assert (note.entity, note.record_key) == ("customers", "10001")


def test_an_unknown_tenant_is_kept_without_a_company(
    receiver: str, state: StateDB, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = visma_sandbox(receiver)
    sandbox.delete("nordic-se", "suppliers", "50002")
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    [note] = inbox(state, 1)
    assert (note.company_id, note.entity, note.record_key) == (None, "suppliers", "50002")
    assert any(r.levelno == logging.WARNING and "unknown tenant" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("signature", [sign(b'{"tenantId": "x"}', "another-secret"), None])
def test_a_forged_or_missing_signature_is_refused_and_not_stored(
    receiver: str, state: StateDB, caplog: pytest.LogCaptureFixture, signature: str | None
) -> None:
    headers = {"x-vwd-notification-id": "n-1"} | ({"x-vwd-signature-v1": signature} if signature else {})
    answer = httpx.post(f"{receiver}/webhooks/visma", content=b'{"tenantId": "x"}', headers=headers)
    assert answer.status_code == 401 and answer.json() == {"error": "invalid signature"}
    assert inbox(state, 1, timeout=0.2) == []
    assert any(r.levelno == logging.WARNING and "rejected a Visma webhook" in r.getMessage()
               for r in caplog.records)


REPLAYS = {
    "another notification id": {"x-vwd-notification-id": "replayed-1"},
    "no notification id": {},
    "another tenant": {"x-vwd-notification-id": "replayed-2", "x-vwd-tenant-id": SANDBOX_TENANT_IDS["nordic-se"]},
}


@pytest.mark.parametrize("replay_headers", REPLAYS.values(), ids=list(REPLAYS))
def test_a_replayed_signed_body_is_a_duplicate_whatever_its_unsigned_headers(
    receiver: str, state: StateDB, replay_headers: dict[str, str]
) -> None:
    sandbox = visma_sandbox(receiver)
    sandbox.modify("nordic-no", "supplier_invoices", ("Invoice", "000003"))
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    [original] = inbox(state, 1)
    replay = signed_post(receiver, original.raw_body.encode("utf-8"), **replay_headers)  # same body, same signature
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
    [note] = inbox(state, 2, timeout=0.3)
    assert (note.id, note.company_id) == (original.id, "nordic-no")


def test_a_second_change_of_the_same_record_is_a_new_notification(receiver: str, state: StateDB) -> None:
    sandbox = visma_sandbox(receiver)
    for _ in range(2):
        sandbox.modify("nordic-no", "customers", "10001")
    sandbox.webhooks.wait_idle()
    sandbox.stop()
    assert [(n.entity, n.record_key) for n in inbox(state, 2)] == [("customers", "10001")] * 2


def test_the_tenant_named_in_the_signed_body_wins_over_the_header(receiver: str, state: StateDB) -> None:
    body = json.dumps({"tenantId": SANDBOX_TENANT_IDS["nordic-no"], "event": "Customer", "id": "10002"}).encode()
    answer = signed_post(receiver, body, **{"x-vwd-tenant-id": SANDBOX_TENANT_IDS["nordic-se"]})
    assert answer.status_code == 202
    [note] = inbox(state, 1)
    assert (note.company_id, note.entity, note.record_key) == ("nordic-no", "customers", "10002")


def test_a_signed_body_that_is_not_json_is_still_kept(receiver: str, state: StateDB) -> None:
    body = b"SupplierInvoice 000007 changed"
    answer = signed_post(receiver, body,
                         **{"x-vwd-notification-id": "n-2", "x-vwd-tenant-id": SANDBOX_TENANT_IDS["nordic-no"]})
    assert answer.status_code == 202
    [note] = inbox(state, 1)
    assert (note.notification_id, note.company_id, note.raw_body) == (
        hashlib.sha256(body).hexdigest(), "nordic-no", "SupplierInvoice 000007 changed")


def test_raw_body_is_logged_at_debug(receiver: str, caplog: pytest.LogCaptureFixture) -> None:
    signed_post(receiver, b'{"event": "Customer", "id": "10002"}', **{"x-vwd-notification-id": "n-3"})
    assert any(r.levelno == logging.DEBUG and '"id": "10002"' in r.getMessage() for r in caplog.records)


# -- Tableau ----------------------------------------------------------------------------------


def test_a_tableau_webhook_lands_in_the_inbox(receiver: str, state: StateDB, tmp_path: Path) -> None:
    sandbox = TableauSandbox(tmp_path / "tableau", pats={PAT_NAME: PAT_SECRET}, webhook_retry_delay_s=0.01)
    with sandbox.serve() as tableau_url:
        server = TSC.Server(tableau_url, use_server_version=True)
        server.auth.sign_in(TSC.PersonalAccessTokenAuth(PAT_NAME, PAT_SECRET, site_id="demo"))
        for name, url in (("good", f"{receiver}/webhooks/tableau/{TOKEN}"),
                          ("stale", f"{receiver}/webhooks/tableau/{TOKEN[:-1]}x")):
            hook = TSC.WebhookItem()
            hook.name, hook.url, hook.event = name, url, "datasource-refresh-succeeded"
            server.webhooks.create(hook)
        sandbox.state.webhooks.fire("DatasourceRefreshSucceeded", "ap_invoices", "ds-luid-1")
        sandbox.wait_for_webhooks()
        statuses = sorted((d.status_code, d.attempts) for d in sandbox.webhook_deliveries)
    assert statuses == [(202, 1), (404, 4)]  # the wrong token is refused, and Tableau retried 3 times
    [note] = inbox(state, 1)
    assert (note.source, note.company_id, note.entity, note.record_key) == (
        "tableau", None, "DatasourceRefreshSucceeded", "ds-luid-1")
    assert json.loads(note.raw_body)["resource_name"] == "ap_invoices"


def test_an_identical_tableau_payload_is_stored_once(receiver: str, state: StateDB) -> None:
    payload = {"resource": "DATASOURCE", "event_type": "DatasourceUpdated", "resource_name": "ar_aging",
               "site_luid": "site-1", "resource_luid": "ds-2", "created_at": "2026-05-01T08:00:00Z"}
    url = f"{receiver}/webhooks/tableau/{TOKEN}"
    assert [httpx.post(url, json=payload).status_code for _ in range(2)] == [202, 200]
    [note] = inbox(state, 2, timeout=0.3)
    assert (note.entity, note.record_key) == ("DatasourceUpdated", "ds-2")


def test_a_wrong_token_looks_like_an_unknown_path(receiver: str, state: StateDB) -> None:
    wrong = httpx.post(f"{receiver}/webhooks/tableau/not-the-token", json={"event_type": "DatasourceCreated"})
    unknown = httpx.post(f"{receiver}/webhooks/nowhere", json={"event_type": "DatasourceCreated"})
    assert (wrong.status_code, wrong.content) == (404, unknown.content)
    assert inbox(state, 1, timeout=0.2) == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe{"])
def test_a_tableau_body_that_is_not_a_json_object_is_refused(receiver: str, state: StateDB, body: bytes) -> None:
    answer = httpx.post(f"{receiver}/webhooks/tableau/{TOKEN}", content=body)
    assert answer.status_code == 400
    assert inbox(state, 1, timeout=0.2) == []


# -- both -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/visma", f"/webhooks/tableau/{TOKEN}"])
def test_a_body_over_one_megabyte_is_refused(receiver: str, state: StateDB, path: str) -> None:
    body = b'{"padding": "' + b"x" * MAX_BODY_BYTES + b'"}'
    chunked = httpx.post(f"{receiver}{path}", content=iter([body]))  # no content-length: read and cut off
    declared = signed_post(receiver, body) if "visma" in path else httpx.post(f"{receiver}{path}", content=body)
    assert (chunked.status_code, declared.status_code) == (413, 413)
    assert inbox(state, 1, timeout=0.2) == []


def test_health(receiver: str) -> None:
    assert httpx.get(f"{receiver}/healthz").status_code == 200


def test_a_source_without_a_secret_has_no_route(state: StateDB) -> None:
    app = build_receiver_app(state, visma_secret=None, tableau_token=TOKEN, tenant_companies={})
    with ServerThread(app) as url:
        body = b'{"event": "Customer"}'
        assert signed_post(url, body, secret="").status_code == 404


@pytest.mark.parametrize(("secret", "token"), [(None, None), (SECRET, "short")])
def test_settings_that_would_accept_anyone_are_refused(state: StateDB, secret: str | None, token: str | None) -> None:
    with pytest.raises(ReceiverConfigError):
        build_receiver_app(state, visma_secret=secret, tableau_token=token, tenant_companies={})
