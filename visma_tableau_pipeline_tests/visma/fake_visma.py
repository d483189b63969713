"""A wire-faithful stand-in for Visma Connect and the Visma.net ERP API, as an httpx handler.

It replaces the server, never the client: the client under test sends real httpx requests through
`httpx.MockTransport(fake.handle)`, or over a real socket to `OverHttp(fake.handle)` served by
uvicorn. It follows API-FACTS: a form-encoded client-credentials token
endpoint, Bearer tokens, `pageNumber`/`pageSize` silently capped at `maxPageSize`, `metadata`
{totalCount, maxPageSize} on every item, `/v2/journaltransaction` paged by lines, delta filters,
reads of one record by the catalogue's `by_key_path` (404 in Visma's IPPException shape when there
is none), `X-RateLimit-*` headers on every answer, and scripted faults served before normal answers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache
from urllib.parse import parse_qs, unquote

import httpx
from pydantic import SecretStr

from visma_tableau_pipeline.settings import CompanySettings
from visma_tableau_pipeline.visma.catalogue import ENTITIES, record_key
from visma_tableau_pipeline.visma.timestamps import parse_timestamp

API_URL = "https://visma.test"
TOKEN_URL = "https://connect.test/connect/token"
SECRET = "TOPSECRET-client-secret-9f8e"
TENANT = "company-tenant-1"
JOURNAL = "/v2/journaltransaction"

Fault = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def company(**overrides) -> CompanySettings:
    return CompanySettings(
        **{
            "company_id": "acme",
            "client_id": "app-client-id",
            "client_secret": SecretStr(SECRET),
            "tenant_id": TENANT,
            "api_url": API_URL,
            "token_url": TOKEN_URL,
            **overrides,
        }
    )


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value))


def json_response(status: int, document: object, headers: dict | None = None) -> httpx.Response:
    # Visma writes amounts as JSON numbers: serialise Decimals as bare numbers, with their digits.
    text = json.dumps(document, default=_json_default)
    return httpx.Response(
        status, content=text.encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


class FakeVisma:
    def __init__(
        self,
        *,
        lists: dict[str, list[dict]] | None = None,
        unpaged: dict[str, object] | None = None,
        max_page_size: int = 500,
        expires_in: int = 3600,
        rate_limit: int = 10_000,
        rate_reset: int = 3600,
        latency: Callable[[int], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lists = lists or {}
        self.unpaged = unpaged or {}
        self.max_page_size = max_page_size
        self.expires_in = expires_in
        self.rate_limit = rate_limit
        self.rate_remaining = rate_limit
        self.clock = clock
        self.window_end = clock() + rate_reset
        self.latency = latency  # seconds to wait before answering page N
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.requests: list[httpx.Request] = []
        self.token_forms: list[dict[str, str]] = []
        self.valid_tokens: set[str] = set()
        self.reject_all_tokens = False  # the customer-tenant mistake: tokens issued, API says 401
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    # -- test controls ----------------------------------------------------------------------
    def fail(self, path: str, *faults: Fault) -> None:
        self.faults[path].extend(faults)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def api_requests(self, path: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == "visma.test" and (path is None or r.url.path == path)]

    # -- the wire ---------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        if str(request.url) == TOKEN_URL:
            return self._token(request)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._api(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_forms.append(form)
        fault = self._next_fault(TOKEN_URL, request)
        if fault is not None:
            return fault
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != "app-client-id" or form.get("client_secret") != SECRET:
            return json_response(400, {"error": "invalid_client"})
        if form.get("tenant_id") != TENANT:
            return json_response(400, {"error": "invalid_grant", "error_description": "tenant not allowed"})
        token = f"token-{len(self.token_forms)}"
        self.valid_tokens.add(token)
        return json_response(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    def _api(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization", "")
        if self.reject_all_tokens or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return httpx.Response(401, json={"message": "Authorization has been denied for this request."})
        params = request.url.params
        page_number = int(params.get("pageNumber", "1"))
        if self.latency:
            time.sleep(self.latency(page_number))
        fault = self._next_fault(request.url.path, request)
        if fault is not None:
            return fault
        headers = self._rate_headers()
        path = request.url.path
        if path in self.unpaged:
            return json_response(200, self.unpaged[path], headers)
        by_key = self._by_key(path)
        if by_key is not None:
            return by_key
        if path not in self.lists:
            return json_response(404, {"message": f"No HTTP resource was found that matches {path}"})
        records = [r for r in self.lists[path] if self._matches_delta(r, params)]
        applied = min(int(params.get("pageSize", self.max_page_size)), self.max_page_size)
        start = (page_number - 1) * applied
        if path == JOURNAL:
            items, total = self._journal_page(records, start, applied)
        else:
            items, total = [dict(r) for r in records[start : start + applied]], len(records)
        for item in items:
            item["metadata"] = {"totalCount": total, "maxPageSize": self.max_page_size}
        return json_response(200, items, headers)

    def _by_key(self, path: str) -> httpx.Response | None:
        """The answer to a read of one record by its key, or None when `path` is no such read."""
        for listed in ENTITIES:
            match = _by_key_pattern(listed.by_key_path).fullmatch(path) if listed.by_key_path else None
            if match is None or listed.path not in self.lists:
                continue
            key = tuple(unquote(part) for part in match.groups())
            for record in self.lists[listed.path]:
                if record_key(listed, record) == key:
                    return json_response(200, record, self._rate_headers())
            return json_response(404, {
                "ExceptionType": "IPPException", "ExceptionMessage": f"{listed.name} {'/'.join(key)} not found.",
                "ExceptionFaultCode": "12011", "ExceptionMessageID": "12011_fake", "ExceptionDetails": "",
            }, self._rate_headers())
        return None

    def _journal_page(self, batches: list[dict], start: int, applied: int) -> tuple[list[dict], int]:
        """Pages count lines; a batch's lines may continue on the next page."""
        rows = [(batch, line) for batch in batches for line in batch["journalTransactionLines"]]
        items: list[dict] = []
        for batch, line in rows[start : start + applied]:
            if not items or items[-1]["batchNumber"] != batch["batchNumber"]:
                items.append({**batch, "journalTransactionLines": []})
            items[-1]["journalTransactionLines"].append(line)
        return items, len(rows)

    @staticmethod
    def _matches_delta(record: dict, params: httpx.QueryParams) -> bool:
        since = params.get("lastModifiedDateTime")
        if since is None:
            return True
        value: datetime = parse_timestamp(record["lastModifiedDateTime"])
        return value >= parse_timestamp(since)

    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            self.rate_remaining = max(0, self.rate_remaining - 1)
            return {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(self.rate_remaining),
                "X-RateLimit-Reset": str(max(0, round(self.window_end - self.clock()))),
                "X-RateLimit-Policy": f"{self.rate_limit};w=3600",
            }

    def _next_fault(self, key: str, request: httpx.Request) -> httpx.Response | None:
        with self._lock:
            queue = self.faults.get(key)
            fault = queue.popleft() if queue else None
        if fault is None:
            return None
        if isinstance(fault, Exception):
            raise fault
        if callable(fault):
            return fault(request)
        return fault


@cache
def _by_key_pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(path)))


class OverHttp:
    """Serves an httpx handler (`FakeVisma.handle`) over a real socket, as an ASGI app for uvicorn.

    The client then crosses real HTTP (connections, encoding, headers) as it does to Visma. Each
    request reaches the handler as the httpx request it expects: the token path as TOKEN_URL,
    every other path under API_URL, percent-encoding as sent. `handle` may be replaced between
    tests, so one server serves many. Handlers answer at once: they run on the server's loop.
    """

    def __init__(self, handle: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handle = handle

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["raw_path"].decode("ascii")
        query = scope["query_string"].decode("ascii")
        url = TOKEN_URL if path == "/connect/token" else f"{API_URL}{path}{'?' + query if query else ''}"
        headers = [(name, value) for name, value in scope["headers"] if name != b"host"]
        response = self.handle(httpx.Request(scope["method"], url, headers=headers, content=body))
        content = response.read()
        answer_headers = [
            (name.encode(), value.encode()) for name, value in response.headers.items()
            if name.lower() not in ("content-length", "content-encoding")
        ]
        await send({
            "type": "http.response.start", "status": response.status_code,
            "headers": [*answer_headers, (b"content-length", str(len(content)).encode())],
        })
        await send({"type": "http.response.body", "body": content})


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def suppliers(count: int, *, modified: str = "2024-03-01T10:00:00.123") -> list[dict]:
    return [
        {"number": f"{10000 + i}", "name": f"Supplier {i}", "lastModifiedDateTime": modified,
         "creditLimit": Decimal("1234.56")}
        for i in range(count)
    ]
