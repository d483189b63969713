"""Auth, retries and errors: what a user sees when Visma or the network misbehaves."""

from __future__ import annotations

import logging

import httpx
import pytest

from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.errors import (
    VismaAuthError,
    VismaPayloadError,
    VismaRateLimited,
    VismaRequestError,
    VismaServerError,
    VismaTenantError,
    VismaTransportError,
    visma_message,
)
from visma_tableau_pipeline.visma.pacing import Pacer
from visma_tableau_pipeline.visma.retrying import RetryPolicy

from .fake_visma import SECRET, FakeClock, FakeVisma, company, json_response, suppliers

SUPPLIERS = "/v1/supplier"


def make_client(fake: FakeVisma, clock: FakeClock, **options) -> VismaClient:
    settings = company(**options.pop("settings", {}))
    return VismaClient(
        settings,
        transport=httpx.MockTransport(fake.handle),
        pacer=Pacer(clock=clock, sleep=clock.sleep),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def read_suppliers(client: VismaClient) -> list[dict]:
    return [r for batch in client.read_entity(entity("suppliers")) for r in batch]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake() -> FakeVisma:
    return FakeVisma(lists={SUPPLIERS: suppliers(3)})


def test_token_request_is_the_client_credentials_form_of_the_company(fake, clock):
    with make_client(fake, clock) as client:
        read_suppliers(client)
    assert fake.token_forms == [{
        "grant_type": "client_credentials", "client_id": "app-client-id", "client_secret": SECRET,
        "tenant_id": "company-tenant-1", "scope": "vismanet_erp_service_api:read",
    }]


def test_token_is_reused_until_a_minute_before_it_expires(fake, clock):
    with make_client(fake, clock) as client:
        read_suppliers(client)
        clock.now += 3500  # 100 s left of 3600: still good
        read_suppliers(client)
        assert len(fake.token_forms) == 1
        clock.now += 50  # 50 s left: renewed before it expires
        read_suppliers(client)
    assert len(fake.token_forms) == 2
    assert fake.api_requests()[-1].headers["Authorization"] == "Bearer token-2"


def test_a_token_refused_by_the_api_is_renewed_once(fake, clock):
    with make_client(fake, clock) as client:
        read_suppliers(client)
        fake.revoke_tokens()
        assert len(read_suppliers(client)) == 3
    assert len(fake.token_forms) == 2


def test_a_fresh_token_refused_by_the_api_means_the_wrong_tenant_id(fake, clock, caplog):
    fake.reject_all_tokens = True
    with make_client(fake, clock) as client, pytest.raises(VismaTenantError) as raised:
        read_suppliers(client)
    message = str(raised.value)
    assert "company tenant id" in message and "customer (contract) tenant id" in message
    assert "VISMA_TENANT_ID" in message and raised.value.status == 401
    assert len(fake.token_forms) == 2  # renewed once, then gave up
    assert len(fake.api_requests(SUPPLIERS)) == 2


def test_wrong_secret_names_the_setting_and_never_the_secret(clock, caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeVisma()
    with make_client(fake, clock, settings={"client_secret": "wrong-" + SECRET}) as client:
        with pytest.raises(VismaAuthError) as raised:
            read_suppliers(client)
    message = str(raised.value)
    assert "VISMA_CLIENT_SECRET" in message and "invalid_client" in message
    assert SECRET not in message and SECRET not in caplog.text
    assert len(fake.token_forms) == 1  # a refused login is not retried


def test_wrong_tenant_at_login_names_the_tenant_setting(clock):
    with make_client(FakeVisma(), clock, settings={"tenant_id": "customer-tenant"}) as client:
        with pytest.raises(VismaAuthError, match="VISMA_TENANT_ID"):
            read_suppliers(client)


def test_429_waits_as_long_as_retry_after_says(fake, clock):
    fake.fail(SUPPLIERS, httpx.Response(429, headers={"Retry-After": "7"}, text="Too many requests"))
    with make_client(fake, clock) as client:
        assert len(read_suppliers(client)) == 3
        stats = client.stats.as_metadata()
    assert 7 in clock.sleeps
    assert stats["retries"] == 1 and stats["throttled_seconds"] >= 7


def test_a_wait_beyond_the_time_budget_gives_up_at_once(fake, clock):
    fake.fail(SUPPLIERS, httpx.Response(429, headers={"Retry-After": "3600"}))
    with make_client(fake, clock, retry_policy=RetryPolicy(max_seconds=600)) as client:
        with pytest.raises(VismaRateLimited) as raised:
            read_suppliers(client)
    assert raised.value.retry_after == 3600 and clock.sleeps == []


def test_a_burst_of_server_errors_is_retried_until_it_passes(fake, clock):
    fake.fail(SUPPLIERS, *[json_response(500, {"Message": "An error has occurred."})] * 3)
    with make_client(fake, clock) as client:
        assert len(read_suppliers(client)) == 3
        assert client.stats.retries == 3
    assert len(fake.api_requests(SUPPLIERS)) == 4
    assert len(clock.sleeps) == 3 and all(0 <= s <= 60 for s in clock.sleeps)


def test_server_errors_beyond_the_attempt_bound_raise_with_context(fake, clock):
    fake.fail(SUPPLIERS, *[httpx.Response(503, text="Service Unavailable")] * 10)
    with make_client(fake, clock, retry_policy=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(VismaServerError) as raised:
            read_suppliers(client)
    assert len(fake.api_requests(SUPPLIERS)) == 3
    message = str(raised.value)
    assert "attempts 3" in message and "entity suppliers" in message and "page 1" in message
    assert "Service Unavailable" in message and "company acme" in message


def test_a_bad_request_is_not_retried(fake, clock):
    fake.fail(SUPPLIERS, json_response(400, {
        "ExceptionType": "IPPException", "ExceptionMessage": "Invalid pageSize",
        "ExceptionFaultCode": "12001", "ExceptionMessageID": "12001_abc", "ExceptionDetails": "",
    }))
    with make_client(fake, clock) as client, pytest.raises(VismaRequestError) as raised:
        read_suppliers(client)
    assert len(fake.api_requests(SUPPLIERS)) == 1 and clock.sleeps == []
    assert "Invalid pageSize (ExceptionFaultCode 12001" in str(raised.value)


def test_network_errors_are_retried(fake, clock):
    fake.fail(SUPPLIERS, httpx.ConnectError("connection refused"), httpx.ReadTimeout("read timed out"))
    with make_client(fake, clock) as client:
        assert len(read_suppliers(client)) == 3
        assert client.stats.retries == 2


def test_network_failure_that_persists_is_a_transport_error(fake, clock):
    fake.fail(SUPPLIERS, *[httpx.ConnectError("connection refused")] * 5)
    with make_client(fake, clock, retry_policy=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(VismaTransportError, match="ConnectError"):
            read_suppliers(client)


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (httpx.Response(200, text="<html>gateway</html>"), "not JSON"),
        (httpx.Response(200, text='[{"number":"1","creditLimit":NaN}]'), "the number NaN"),
        (httpx.Response(200, text='[{"number":"1","creditLimit":-Infinity}]'), "the number -Infinity"),
        (json_response(200, {"items": []}), "not the list"),
        (json_response(200, [{"name": "no number", "metadata": {"totalCount": 9, "maxPageSize": 3}}]), "no key (number)"),
    ],
)
@pytest.mark.parametrize("as_stored", [False, True])  # decoded whole, or in the form the store takes
def test_a_malformed_page_names_entity_and_page(clock, answer, what, as_stored):
    fake = FakeVisma(lists={SUPPLIERS: suppliers(9)}, max_page_size=3)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("pageNumber") == "2" and "Authorization" in request.headers:
            return answer
        return fake.handle(request)

    client = VismaClient(
        company(), transport=httpx.MockTransport(handler), pacer=Pacer(clock=clock, sleep=clock.sleep),
        clock=clock, sleep=clock.sleep,
    )
    with client, pytest.raises(VismaPayloadError) as raised:
        list(client.read_entity(entity("suppliers"), as_stored=as_stored))
    assert raised.value.entity == "suppliers" and raised.value.page == 2
    assert raised.value.company_id == "acme"
    assert what in str(raised.value) and "page 2" in str(raised.value)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"ExceptionType":"IPPException","ExceptionMessage":"Supplier not found","ExceptionFaultCode":"10001","ExceptionMessageID":"10001_x","ExceptionDetails":""}',
         "Supplier not found (ExceptionFaultCode 10001, ExceptionMessageID 10001_x)"),
        (b'{"Message":"The request is invalid."}', "The request is invalid."),
        (b'{"message":"Authorization has been denied"}', "Authorization has been denied"),
        (b"Bad gateway from proxy", "Bad gateway from proxy"),
        (b"", None),
    ],
)
def test_every_error_body_shape_gives_visma_s_message(fake, clock, body, said):
    assert visma_message(body) == said
    fake.fail(SUPPLIERS, httpx.Response(404, content=body))
    with make_client(fake, clock) as client, pytest.raises(VismaRequestError) as raised:
        read_suppliers(client)
    assert raised.value.visma_message == said
    if said:
        assert said in str(raised.value)


def test_secrets_and_tokens_never_reach_errors_or_logs(fake, clock, caplog):
    caplog.set_level(logging.DEBUG)
    fake.fail(SUPPLIERS, *[httpx.Response(500, text="boom")] * 2)
    errors = []
    with make_client(fake, clock, retry_policy=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(VismaServerError) as raised:
            read_suppliers(client)
        errors.append(str(raised.value))
        fake.reject_all_tokens = True
        with pytest.raises(VismaTenantError) as raised:
            read_suppliers(client)
        errors.append(str(raised.value))
    issued = [f"token-{n}" for n in range(1, len(fake.token_forms) + 1)]
    for text in [*errors, caplog.text]:
        assert SECRET not in text
        assert not any(token in text for token in issued)
