"""The sandbox over HTTP: Visma Connect's token endpoint, the ERP API under /v1 and /v2, and
an admin API under /_sandbox/ (not part of Visma) to set faults and mutate records.

Routing is case-insensitive on the path, like the real (ASP.NET) API. Heavy work (generating
and rendering a page) runs in the thread pool so that slow pages do not stall other clients.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from visma_tableau_pipeline.sandbox.visma.determinism import Draw, stream_key
from visma_tableau_pipeline.sandbox.visma.endpoints import Endpoint
from visma_tableau_pipeline.sandbox.visma.errors import ApiError, exception_error, not_found
from visma_tableau_pipeline.sandbox.visma.faults import Fault, FaultPlan
from visma_tableau_pipeline.sandbox.visma.params import parse_list_request
from visma_tableau_pipeline.sandbox.visma.store import RecordExists, RecordNotFound
from visma_tableau_pipeline.sandbox.visma.wire import parse_json, render_json
from visma_tableau_pipeline.visma.catalogue import key_values

if TYPE_CHECKING:
    from visma_tableau_pipeline.sandbox.visma.sandbox import CompanyData, VismaSandbox

JSON = "application/json; charset=utf-8"


class ConnectionDropped(Exception):
    """Raised after half a response is sent, so uvicorn closes the socket (a fault)."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for every connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


class TruncatedResponse(Response):
    """Announces the whole body, sends half of it, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise ConnectionDropped("connection dropped by the sandbox's fault plan")


class _Router:
    """Matches request paths to endpoints, ignoring case, with {placeholders}."""

    def __init__(self, served: list[Endpoint]) -> None:
        self._routes = [(tuple(e.path.lower().strip("/").split("/")), e) for e in served]

    def match(self, path: str) -> tuple[Endpoint, tuple[str, ...]] | None:
        """The endpoint and the values of its {placeholders}, in order."""
        parts = path.strip("/").split("/")
        lowered = tuple(p.lower() for p in parts)
        for pattern, endpoint in self._routes:
            if len(pattern) != len(parts):
                continue
            values: list[str] = []
            for want, got, original in zip(pattern, lowered, parts):
                if want.startswith("{"):
                    values.append(original)
                elif want != got:
                    break
            else:
                return endpoint, tuple(values)
        return None


def _error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(render_json(error.body), error.status, {**error.headers, **(headers or {})}, JSON)


def build_app(sandbox: VismaSandbox) -> Starlette:
    _install_log_filter()
    router = _Router(sandbox.endpoints)
    shift_key = stream_key(sandbox.seed, "shift")

    async def token(request: Request) -> Response:
        # form-encoded, parsed here: starlette's form parser needs python-multipart
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            body = sandbox.auth.issue(form)
        except ApiError as error:
            return _error_response(error)
        return Response(render_json(body), 200, {"Cache-Control": "no-store"}, JSON)

    async def api(request: Request) -> Response:
        path = request.url.path
        matched = router.match(path)
        if matched is None:
            return _error_response(not_found(str(request.url)))
        endpoint, path_values = matched
        path_value = path_values[-1] if path_values else None
        try:
            grant = sandbox.auth.check(request.headers.get("authorization"))
        except ApiError as error:
            return _error_response(error)
        company_id = grant.company_id
        assert company_id is not None
        allowance = sandbox.rate_limiter.take(grant.tenant_id, grant.client_id)
        headers = allowance.headers()
        sandbox.request_log[company_id] += 1
        if not allowance.allowed:
            return _throttled(headers, allowance.reset_seconds, sandbox, company_id, request)
        number, fault = sandbox.fault_state.next_request()
        plan = sandbox.faults
        if fault == Fault.ERROR:
            _history(sandbox, company_id, request, plan.error_status)
            return Response(render_json({"Message": "The service is temporarily unavailable."}),
                            plan.error_status, headers, JSON)
        if fault == Fault.THROTTLE:
            return _throttled(headers, plan.throttle_retry_after, sandbox, company_id, request)
        try:
            if endpoint.by_key:
                body, page_number = _serve_one(sandbox.company(company_id), endpoint, path_values), None
            else:
                body, page_number = await run_in_threadpool(
                    _serve_list, sandbox, sandbox.company(company_id), endpoint, dict(request.query_params),
                    path_value)
        except ApiError as error:
            _history(sandbox, company_id, request, error.status)
            return _error_response(error, headers)
        if endpoint.paged and plan.page_latency_ms:
            await asyncio.sleep(plan.page_latency_ms / 1000)
        if page_number is not None and sandbox.fault_state.claim_shift(company_id, endpoint.entity_name, page_number):
            await run_in_threadpool(_shift, sandbox, company_id, endpoint, dict(request.query_params),
                                    path_value, Draw(shift_key, number))
        _history(sandbox, company_id, request, 200)
        if fault == Fault.DROP:
            return TruncatedResponse(body, 200, headers, JSON)
        return Response(body, 200, headers, JSON)

    async def admin(request: Request) -> Response:
        action = request.path_params["action"]
        try:
            data = parse_json(await request.body() or b"{}") if request.method != "GET" else {}
            return Response(render_json(_admin(sandbox, request.method, action, data)), 200, media_type=JSON)
        except (KeyError, RecordNotFound) as exc:
            return JSONResponse({"error": str(exc)}, 404)
        except (ValueError, TypeError, RecordExists) as exc:
            return JSONResponse({"error": str(exc)}, 400)

    async def fallback(request: Request) -> Response:
        return _error_response(not_found(str(request.url)))

    return Starlette(routes=[
        Route("/connect/token", token, methods=["POST"]),
        Route("/_sandbox/{action:path}", admin, methods=["GET", "POST", "PUT"]),
        Route("/v1/{rest:path}", api, methods=["GET"]),
        Route("/v2/{rest:path}", api, methods=["GET"]),
        Route("/{rest:path}", fallback, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ])


def _throttled(headers: dict[str, str], retry_after: int, sandbox: VismaSandbox, company_id: str,
               request: Request) -> Response:
    _history(sandbox, company_id, request, 429)
    sandbox.throttled[company_id] += 1
    body = {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {retry_after} seconds."}
    return Response(render_json(body), 429, {**headers, "Retry-After": str(retry_after)}, JSON)


def _history(sandbox: VismaSandbox, company_id: str, request: Request, status: int) -> None:
    query = f"?{request.url.query}" if request.url.query else ""
    sandbox.request_history.append((company_id, f"{request.url.path}{query}", status))


def _serve_list(sandbox: VismaSandbox, company: CompanyData, endpoint: Endpoint, params: dict[str, str],
                path_value: str | None) -> tuple[bytes, int | None]:
    """The body of a list (or single dimension) answer, and its page number when paged."""
    store = company.store(endpoint.entity_name)
    if endpoint.ids_only:
        return render_json([key_values(("id",), r)[0] for r in store.all_records()]).encode(), None
    if endpoint.entity_name == "time_cards" and path_value is not None:
        try:
            company.store("employees").current((path_value,))
        except RecordNotFound:
            raise exception_error(404, "12011", f"Employee '{path_value}' not found.") from None
    request = parse_list_request(endpoint, params, path_value, store.modified_field)
    page = store.page(request.query, request.start, request.size,
                      endpoint.max_page_size if endpoint.paged else None)
    if endpoint.path_field == "id":  # /v1/dimension/{dimensionId}: one object
        if not page.texts:
            raise exception_error(404, "12011", f"Dimension '{path_value}' not found.")
        return page.texts[0].encode(), None
    return _json_array(page.texts), request.page_number if endpoint.paged else None


def _serve_one(company: CompanyData, endpoint: Endpoint, key: tuple[str, ...]) -> bytes:
    """The body of a read by key: the record alone, as its list writes it (without `metadata`)."""
    store = company.store(endpoint.entity_name)
    try:
        return store.text(key).encode()
    except RecordNotFound:
        name = endpoint.entity_name.removesuffix("s").replace("_", " ").capitalize()
        raise exception_error(404, "12011", f"{name} '{' '.join(key)}' not found.") from None


def _json_array(texts: list[str]) -> bytes:
    """`[a,b,...]` as UTF-8, copying the (possibly megabytes of) text as few times as possible."""
    if not texts:
        return b"[]"
    texts[0] = "[" + texts[0]
    texts[-1] += "]"
    return ",".join(texts).encode()


def _shift(sandbox: VismaSandbox, company_id: str, endpoint: Endpoint, params: dict[str, str],
           path_value: str | None, draw: Draw) -> None:
    """Modify or delete records of the page just served (FaultPlan.shift_after_page)."""
    store = sandbox.company(company_id).store(endpoint.entity_name)
    request = parse_list_request(endpoint, params, path_value, store.modified_field)
    page = store.page(request.query, request.start, request.size)
    keys = [key_values(store.key_fields, parse_json(text)) for text in page.texts]
    sandbox.mutate_page(company_id, endpoint.entity_name, keys, draw.below)


def _admin(sandbox: VismaSandbox, method: str, action: str, data: dict) -> Any:
    """The admin API: GET health, requests, faults; PUT faults, webhook; POST modify, create,
    delete, expire-tokens, close-period."""
    if method == "GET" and action == "health":
        return {"status": "ok", "companies": list(sandbox.companies), "seed": sandbox.seed}
    if method == "GET" and action == "requests":
        return {"counts": dict(sandbox.request_log), "throttled": dict(sandbox.throttled)}
    if action == "faults":
        if method == "PUT":
            sandbox.faults = FaultPlan.from_json(data)
        return sandbox.faults.to_json()
    if method == "PUT" and action == "webhook":
        sandbox.webhooks.configure(data.get("url"), data.get("secret"))
        return {"url": data.get("url")}
    if method == "POST" and action == "expire-tokens":
        sandbox.expire_tokens()
        return {"expired": True}
    if method == "POST" and action == "close-period":
        modules = data.get("modules")
        if modules is not None and not (isinstance(modules, list) and all(isinstance(m, str) for m in modules)):
            raise ValueError("modules must be a list of module codes, e.g. [\"GL\"]")
        return sandbox.close_period(data["company_id"], str(data["period"]), modules,
                                    reopen=data.get("reopen") is True)
    if method == "POST" and action in ("modify", "create", "delete"):
        company_id, entity_name = data["company_id"], data["entity"]
        if action == "modify":
            record = sandbox.modify(company_id, entity_name, data["key"], data.get("changes"))
        elif action == "create":
            record = sandbox.create(company_id, entity_name, data.get("record"))
        else:
            record = sandbox.delete(company_id, entity_name, data["key"])
        return record
    raise KeyError(f"no admin action {method} /_sandbox/{action}")
