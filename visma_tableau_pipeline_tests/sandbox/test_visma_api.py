"""The Visma sandbox behaves as Visma.net ERP and Visma Connect do, seen from an HTTP client."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

import httpx
import pytest

from visma_tableau_pipeline.sandbox.visma import DemoSize, VismaSandbox
from visma_tableau_pipeline.sandbox.visma.companies import CUSTOMER_TENANT_ID
from visma_tableau_pipeline.sandbox.visma.wire import parse_json
from visma_tableau_pipeline.settings import SANDBOX_TENANT_IDS, sandbox_companies
from visma_tableau_pipeline_tests.sandbox.visma_support import SandboxClient, strip_metadata, token_form

NO = SANDBOX_TENANT_IDS["nordic-no"]


@pytest.fixture(scope="module")
def sandbox():
    with VismaSandbox(DemoSize(supplier_invoices=240), seed=11,
                      max_page_sizes={"/v1/supplierInvoice": 50}) as running:
        yield running


@pytest.fixture(scope="module")
def client(sandbox):
    c = SandboxClient(sandbox, "nordic-no")
    yield c
    c.close()


# --- Visma Connect -------------------------------------------------------------------------

def test_token_grants_bearer_with_lifetime_and_scope(sandbox):
    body = httpx.post(f"{sandbox.base_url}/connect/token", data=token_form(NO)).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "vismanet_erp_service_api:read"
    assert len(body["access_token"]) > 20


@pytest.mark.parametrize("form, status, error", [
    (token_form(NO, secret="wrong"), 401, "invalid_client"),
    (token_form("11111111-2222-3333-4444-555555555555"), 401, "invalid_grant"),
    ({**token_form(NO), "grant_type": "password"}, 400, "unsupported_grant_type"),
    ({**token_form(NO), "tenant_id": ""}, 400, "invalid_request"),
    ({**token_form(NO), "scope": "openid"}, 400, "invalid_scope"),
])
def test_token_failures_answer_oauth_errors(sandbox, form, status, error):
    response = httpx.post(f"{sandbox.base_url}/connect/token", data=form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "error_description" in response.json()


def test_expired_or_unknown_token_is_refused(sandbox):
    short = VismaSandbox(DemoSize(supplier_invoices=20), token_lifetime=0.3)
    with short:
        client = SandboxClient(short)
        assert client.get("/v1/account").status_code == 200
        time.sleep(0.4)
        expired = client.get("/v1/account")
        assert expired.status_code == 401
        assert expired.json() == {"Message": "Authorization has been denied for this request."}
        client.close()
    bogus = httpx.get(f"{sandbox.base_url}/v1/account", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401


def test_expire_tokens_forces_renewal(sandbox):
    client = SandboxClient(sandbox)
    sandbox.expire_tokens()
    assert client.get("/v1/account").status_code == 401
    client.close()


def test_customer_tenant_gets_a_token_and_then_401_everywhere(sandbox):
    token = httpx.post(f"{sandbox.base_url}/connect/token", data=token_form(CUSTOMER_TENANT_ID))
    assert token.status_code == 200
    response = httpx.get(f"{sandbox.base_url}/v1/supplier",
                         headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert response.status_code == 401


def test_one_token_reaches_exactly_one_company(sandbox):
    no, se = SandboxClient(sandbox, "nordic-no"), SandboxClient(sandbox, "nordic-se")
    names_no = {s["name"] for s in no.json("/v1/supplier", pageSize=500)}
    names_se = {s["name"] for s in se.json("/v1/supplier", pageSize=500)}
    assert "Grønli Data AS" in names_no and "Grønli Data AS" not in names_se
    assert "Jönköping Data AB" in names_se and "Jönköping Data AB" not in names_no
    assert no.json("/v1/currency")[0]["id"] and {c["id"] for c in no.json("/v1/currency") if c["isBaseCurrency"]} == {"NOK"}
    assert {c["id"] for c in se.json("/v1/currency") if c["isBaseCurrency"]} == {"SEK"}
    no.close()
    se.close()


def test_sandbox_companies_point_at_the_sandbox():
    companies = sandbox_companies("http://127.0.0.1:9999")
    assert [c.company_id for c in companies] == ["nordic-no", "nordic-se"]
    assert companies[0].token_url == "http://127.0.0.1:9999/connect/token"
    assert companies[1].tenant_id == SANDBOX_TENANT_IDS["nordic-se"]


# --- paging --------------------------------------------------------------------------------

def test_page_size_is_capped_silently_and_metadata_is_on_every_item(client):
    page = client.json("/v1/supplierInvoice", pageNumber=1, pageSize=5000)
    assert len(page) == 50
    assert {tuple(r["metadata"].values()) for r in page} == {(240, 50)}


def test_last_page_is_short_and_pages_cover_the_list_once(sandbox, client):
    pages = list(client.pages("/v1/supplierInvoice", 70))  # applied size is 50
    assert [len(p) for p in pages] == [50, 50, 50, 50, 40]
    served = [r for page in pages for r in strip_metadata(page)]
    assert served == list(sandbox.records("nordic-no", "supplier_invoices"))


def test_page_beyond_the_end_is_empty(client):
    assert client.json("/v1/supplierInvoice", pageNumber=99, pageSize=50) == []


def test_unpaged_endpoints_return_the_whole_list(sandbox, client):
    for path, entity in [("/v1/account", "gl_accounts"), ("/v1/financialPeriod", "financial_periods"),
                         ("/v1/branch", "branches"), ("/v1/ledger", "ledgers"), ("/v1/currency", "currencies")]:
        body = client.json(path)
        assert body == list(sandbox.records("nordic-no", entity))
        assert all("metadata" not in r for r in body)


# --- delta and period filters --------------------------------------------------------------

def _modified(records):
    return [r["lastModifiedDateTime"] for r in records]


@pytest.mark.parametrize("condition, keep", [
    (">", lambda value, bound: value > bound), (">=", lambda value, bound: value >= bound),
    ("<", lambda value, bound: value < bound), ("<=", lambda value, bound: value <= bound),
])
def test_delta_conditions_select_by_last_modified(sandbox, client, condition, keep):
    truth = list(sandbox.records("nordic-no", "suppliers"))
    bound = truth[5]["lastModifiedDateTime"]  # an exact record timestamp: > and >= differ
    body = client.json("/v1/supplier", lastModifiedDateTime=bound, lastModifiedDateTimeCondition=condition,
                       pageSize=500)
    assert _modified(body) == [v for v in _modified(truth) if keep(v, bound)]


@pytest.mark.parametrize("text", ["2025-06-01", "2025-06-01 00:00:00", "2025-06-01 00:00:00.000",
                                  "2025-06-01T00:00:00", "2025-06-01T00:00:00.5"])
def test_delta_accepts_the_documented_formats(sandbox, client, text):
    body = client.json("/v1/customerinvoice", lastModifiedDateTime=text, lastModifiedDateTimeCondition=">=",
                       pageSize=1000)
    truth = [r for r in sandbox.records("nordic-no", "customer_invoices") if r["lastModifiedDateTime"] >= "2025-06-01T00:00:00"]
    assert [r["referenceNumber"] for r in body] == [r["referenceNumber"] for r in truth]
    assert 0 < len(body) < 180


def test_gl_endpoints_take_last_modified_alone_as_at_least(sandbox, client):
    truth = list(sandbox.records("nordic-no", "journal_transactions"))
    bound = truth[10]["lastModifiedDateTime"]
    body = client.json("/v2/journaltransaction", lastModifiedDateTime=bound, lastModifiedDateTimeCondition="<",
                       pageSize=2000)  # the condition is not a parameter of this endpoint: ignored
    assert body[0]["batchNumber"] == truth[10]["batchNumber"]


def test_period_filters_select_one_financial_period(sandbox):
    for company in ("nordic-no", "nordic-se"):
        client = SandboxClient(sandbox, company)
        for path, param, field in [("/v1/supplierInvoice", "financialPeriod", "financialPeriod"),
                                   ("/v1/customerPayment", "financialPeriod", "applicationPeriod"),
                                   ("/v2/journaltransaction", "periodId", "financialPeriod"),
                                   ("/v2/generalLedgerBalance", "periodId", "financialPeriod")]:
            rows = [r for page in client.pages(path, 2000, **{param: "202603"}) for r in page]
            assert rows and {r[field] for r in rows} == {"202603"}
        receipts = client.json("/v2/PurchaseReceipt", finPeriod="202603", pageSize=500)
        assert receipts and {r["postPeriod"] for r in receipts} == {"032026"}
        client.close()


def test_second_company_fiscal_year_starts_in_july(sandbox):
    client = SandboxClient(sandbox, "nordic-se")
    periods = {p["period"]: p for p in client.json("/v1/financialPeriod")}
    assert periods["202501"]["startDate"] == "2025-07-01T00:00:00"
    assert periods["202512"]["endDate"] == "2026-06-30T00:00:00"
    invoices = client.json("/v1/supplierInvoice", financialPeriod="202501", pageSize=50)
    assert invoices and all(r["date"].startswith("2025-07") for r in invoices)
    client.close()


def test_other_filters_and_unknown_parameters(sandbox, client):
    credits = client.json("/v1/supplierInvoice", documentType="CreditAdj", pageSize=50)
    assert credits and {r["documentType"] for r in credits} == {"CreditAdj"}
    truth = [r for r in sandbox.records("nordic-no", "supplier_invoices") if r["documentType"] == "CreditAdj"]
    assert credits[0]["metadata"]["totalCount"] == len(truth)
    open_ones = client.json("/v1/customerinvoice", status="Open", pageSize=1000)
    assert open_ones and {r["status"] for r in open_ones} == {"Open"}
    supplier = truth[0]["supplier"]["number"]
    assert {r["supplier"]["number"] for r in client.json("/v1/supplierInvoice", supplier=supplier, pageSize=50)} == {supplier}
    unfiltered = client.json("/v1/supplierInvoice", pageSize=50, noSuchFilter="x", lastModifiedDate="2030-01-01")
    assert len(unfiltered) == 50


# --- journals and dimensions ----------------------------------------------------------------

def test_journal_batches_span_pages_and_balance(sandbox, client):
    pages = list(client.pages("/v2/journaltransaction", 7))
    total_lines = pages[0][0]["metadata"]["totalCount"]
    assert sum(len(b["journalTransactionLines"]) for p in pages for b in p) == total_lines
    split = [p[-1]["batchNumber"] for p, nxt in itertools.pairwise(pages) if nxt and nxt[0]["batchNumber"] == p[-1]["batchNumber"]]
    assert split, "no batch was split across pages"
    merged: dict[tuple, list] = {}
    for page in pages:
        for batch in page:
            merged.setdefault((batch["module"], batch["batchNumber"]), []).extend(batch["journalTransactionLines"])
    truth = list(sandbox.records("nordic-no", "journal_transactions"))
    assert len(merged) == len(truth)
    for batch in truth:
        lines = merged[(batch["module"], batch["batchNumber"])]
        assert lines == batch["journalTransactionLines"]
        assert sum(line["debitAmount"] for line in lines) == sum(line["creditAmount"] for line in lines) > 0
        assert all(line["subaccount"]["segments"] for line in lines)


def test_dimensions_list_ids_and_carry_segments_with_values(client):
    assert client.json("/v1/dimension") == ["ACCOUNT", "SUBACCOUNT"]
    subaccount = client.json("/v1/dimension/SUBACCOUNT")
    segments = {s["segmentId"]: s for s in subaccount["segments"]}
    assert segments[1]["description"] == "Avdeling" and segments[2]["description"] == "Prosjekt"
    assert any(v["description"] == "ERP-utrulling Tromsø" for v in segments[2]["segmentValues"])
    assert all(v["lastModified"] and "lastModifiedDateTime" not in v for v in segments[1]["segmentValues"])
    assert client.get("/v1/dimension/NOPE").status_code == 404


def test_time_cards_need_a_filter(sandbox, client):
    response = client.get("/v1/timeCard")
    assert response.status_code == 400
    assert response.json()["ExceptionMessage"]
    body = client.json("/v1/timeCard", status="Open")
    assert body and {r["status"] for r in body} == {"Open"}
    mine = client.json("/v1/employee/1001/timecards")
    assert mine and {r["employee"]["number"] for r in mine} == {"1001"}
    assert client.get("/v1/employee/9999/timecards").status_code == 404


# --- errors and limits --------------------------------------------------------------------

@pytest.mark.parametrize("path, params", [
    ("/v1/supplierInvoice", {"pageNumber": 0}),
    ("/v1/supplierInvoice", {"pageNumber": -2}),
    ("/v1/supplierInvoice", {"pageSize": "ten"}),
    ("/v1/supplierInvoice", {"documentType": "Bill"}),
    ("/v1/supplierInvoice", {"financialPeriod": "2026-03"}),
    ("/v1/supplierInvoice", {"financialPeriod": "202613"}),
    ("/v1/supplierInvoice", {"lastModifiedDateTime": "yesterday"}),
    ("/v1/supplierInvoice", {"lastModifiedDateTime": "2025-02-30"}),
    ("/v1/supplierInvoice", {"lastModifiedDateTime": "2025-02-01", "lastModifiedDateTimeCondition": "%3E"}),
    ("/v2/journaltransaction", {"periodId": "03-2026"}),
    ("/v1/account", {"active": "yes"}),
])
def test_bad_input_answers_400_in_visma_exception_shape(client, path, params):
    response = client.get(path, **params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"ExceptionType", "ExceptionMessage", "ExceptionFaultCode", "ExceptionMessageID",
                         "ExceptionDetails"}
    assert body["ExceptionMessageID"].startswith(body["ExceptionFaultCode"] + "_")


def test_unknown_path_is_404(client):
    assert client.get("/v1/supplierInvoices").status_code == 404
    assert client.get("/v3/supplier").status_code == 404


def test_paths_are_case_insensitive(client):
    assert client.get("/v1/SUPPLIERINVOICE", pageSize=1).status_code == 200


def test_rate_limit_headers_and_429_with_retry_after():
    with VismaSandbox(DemoSize(supplier_invoices=20), rate_limit_per_hour=3) as small:
        client = SandboxClient(small)
        first = client.get("/v1/account")
        assert first.headers["X-RateLimit-Limit"] == "3"
        assert first.headers["X-RateLimit-Remaining"] == "2"
        assert 3500 < int(first.headers["X-RateLimit-Reset"]) <= 3600
        assert first.headers["X-RateLimit-Policy"]
        client.get("/v1/account")
        client.get("/v1/account")
        throttled = client.get("/v1/account")
        assert throttled.status_code == 429
        assert 0 < int(throttled.headers["Retry-After"]) <= 3600
        assert throttled.headers["X-RateLimit-Remaining"] == "0"
        other = SandboxClient(small, "nordic-se")  # the budget is per company and client
        assert other.get("/v1/account").status_code == 200
        assert small.request_log == {"nordic-no": 4, "nordic-se": 1}
        assert small.throttled == {"nordic-no": 1}  # what `GET /_sandbox/requests` shows a benchmark
        client.close()
        other.close()


def test_rate_window_renews():
    with VismaSandbox(DemoSize(supplier_invoices=20), rate_limit_per_hour=1, rate_window_seconds=1) as small:
        client = SandboxClient(small)
        assert client.get("/v1/account").status_code == 200
        assert client.get("/v1/account").status_code == 429
        time.sleep(1.1)
        assert client.get("/v1/account").status_code == 200
        client.close()


def test_amounts_are_exact_decimals_on_the_wire(client):
    raw = client.get("/v1/supplierInvoice", pageSize=50).content
    invoices = parse_json(raw)
    amounts = [line["cost"] for r in invoices for line in r["invoiceLines"]]
    assert all(isinstance(a, Decimal) and a == a.quantize(Decimal("0.01")) for a in amounts)
    assert b'"cost":-0.0' in raw or any(Decimal("-0.10") < a < 0 for a in amounts)
