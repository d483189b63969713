"""The webhook receiver (`vtp webhooks serve`): stores Visma and Tableau notifications in the inbox.

Webhooks are hints (docs/ARCHITECTURE.md, promise 3): the receiver checks who sent a delivery, stores
it as received in the state database's inbox (deduplicated on the raw body, which is what Visma
signs) and answers at once; a Dagster sensor later turns the inbox into runs that re-read Visma.
Nothing here calls Visma or Tableau.

There is no window that refuses old notifications. The only signed time is in the body, whose
format Visma does not publish (the sandbox's `timestamp` is the record's lastModifiedDateTime, in
a timezone Visma does not document), so a window would refuse genuine late deliveries on a clock
skew. It is not needed either: every body ever stored stays in the inbox, so a replay of it is a
duplicate however old, and a notification is only a hint: the sensor re-reads Visma from its own
cursor, so even an old body never shown before makes no run for a change that is not there.

    POST /webhooks/visma            signed by Visma (x-vwd-signature-v1 over the raw body)
    POST /webhooks/tableau/{token}  Tableau signs nothing: the long secret token in the URL
    GET  /healthz

A source whose secret is not configured has no route (404). The Tableau token is part of the URL,
so URLs are never logged (uvicorn's access log is off) and a wrong token gets the same 404 as an
unknown path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from visma_tableau_pipeline.state import StateDB, add_notification
from visma_tableau_pipeline.state.inbox import Source
from visma_tableau_pipeline.state.schema import utc_now
from visma_tableau_pipeline.visma.webhooks import WebhookSignatureError, verify_and_parse

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MIN_TABLEAU_TOKEN_LENGTH = 24
VISMA_PATH = "/webhooks/visma"
TABLEAU_PATH = "/webhooks/tableau/{token}"


class ReceiverConfigError(ValueError):
    """The receiver cannot start with these settings (no source enabled, a guessable token)."""


def build_receiver_app(
    db: StateDB,
    *,
    visma_secret: str | None,
    tableau_token: str | None,
    tenant_companies: Mapping[str, str],
) -> Starlette:
    """The ASGI app. `tenant_companies` maps a Visma company tenant id to the project's company id,
    so that a notification is stored with the company it concerns."""
    if not visma_secret and not tableau_token:
        raise ReceiverConfigError("the webhook receiver needs a Visma secret, a Tableau token or both")
    if tableau_token and len(tableau_token) < MIN_TABLEAU_TOKEN_LENGTH:
        raise ReceiverConfigError(
            f"the Tableau webhook token must have at least {MIN_TABLEAU_TOKEN_LENGTH} characters; "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    tenants = dict(tenant_companies)

    async def receive_visma(request: Request) -> Response:
        body = await _read_body(request)
        try:
            note = verify_and_parse(body, request.headers, visma_secret or "")
        except WebhookSignatureError as exc:
            log.warning("rejected a Visma webhook from %s: %s", _client(request), exc)
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        log.debug("Visma webhook body: %s", note.raw)
        company_id = tenants.get(note.tenant_id or "")
        if company_id is None:
            log.warning(
                "Visma webhook for unknown tenant %r (entity %s, key %s): stored without a company",
                note.tenant_id, note.entity_name, note.record_key,
            )
        return await _store(
            db, "visma", _body_digest(body), company_id, note.entity_name, note.record_key, note.raw
        )

    async def receive_tableau(request: Request) -> Response:
        given = str(request.path_params["token"]).encode("utf-8")
        if not hmac.compare_digest(given, (tableau_token or "").encode("utf-8")):
            log.warning("rejected a Tableau webhook from %s: wrong token", _client(request))
            raise HTTPException(status_code=404)
        body = await _read_body(request)
        try:
            event = json.loads(body)
        except ValueError:  # also UnicodeDecodeError
            event = None
        if not isinstance(event, dict):
            log.warning("rejected a Tableau webhook from %s: the body is not a JSON object", _client(request))
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        return await _store(
            db, "tableau", _body_digest(body), None,
            _text(event.get("event_type")), _text(event.get("resource_luid")), body.decode("utf-8", errors="replace"),
        )

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [Route("/healthz", healthz, methods=["GET"])]
    if visma_secret:
        routes.append(Route(VISMA_PATH, receive_visma, methods=["POST"]))
    if tableau_token:
        routes.append(Route(TABLEAU_PATH, receive_tableau, methods=["POST"]))
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


def serve(
    db_url: str,
    host: str,
    port: int,
    visma_secret: str | None,
    tableau_token: str | None,
    tenant_companies: Mapping[str, str],
) -> None:
    """Run the receiver until interrupted (the CLI's `vtp webhooks serve`)."""
    db = StateDB(db_url)
    app = build_receiver_app(
        db, visma_secret=visma_secret, tableau_token=tableau_token, tenant_companies=tenant_companies
    )
    log.info(
        "webhook receiver on http://%s:%d, state database %r; Visma %s, Tableau %s",
        host, port, db,
        f"at {VISMA_PATH}" if visma_secret else "off (no secret)",
        "at /webhooks/tableau/<token>" if tableau_token else "off (no token)",
    )
    try:
        # No access log: the Tableau URL carries the token.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
    finally:
        db.dispose()


async def _read_body(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it passes MAX_BODY_BYTES (before it is all read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail="body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(status_code=413, detail="body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _store(
    db: StateDB, source: Source, notification_id: str, company_id: str | None,
    entity: str | None, record_key: str | None, raw_body: str,
) -> Response:
    """Add to the inbox off the event loop; 202 when stored, 200 for a duplicate."""

    def write() -> bool:
        with db.transaction() as conn:
            return add_notification(
                conn, source, notification_id, company_id, entity, record_key, raw_body, utc_now()
            )

    stored = await run_in_threadpool(write)
    log.info(
        "%s %s webhook %s (company %s, entity %s, key %s)",
        "stored" if stored else "ignored duplicate", source, notification_id, company_id, entity, record_key,
    )
    if stored:
        return JSONResponse({"status": "stored"}, status_code=202)
    return JSONResponse({"status": "duplicate"}, status_code=200)


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Errors as short JSON, the same for an unknown path and a wrong Tableau token."""
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _body_digest(body: bytes) -> str:
    """The inbox id of a delivery: SHA-256 of its raw body, so identical bodies are one notification.

    For Visma this is the part the signature covers; the `x-vwd-notification-id` and
    `x-vwd-tenant-id` headers are not signed, so anyone who saw one delivery could replay its
    body and signature under a new id or tenant. Keyed on the body, such a replay is a duplicate,
    while a new change still differs: the body names the record and its new modification time
    (the ERP's body format is not published; one without anything per change would make a second
    change of a record look like a replay, and polling would pick it up). Tableau signs nothing,
    and its retries send identical payloads.
    """
    return hashlib.sha256(body).hexdigest()


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _client(request: Request) -> str:
    return request.client.host if request.client else "an unknown client"
