"""Visma webhooks: check the signature, then read the notification as leniently as possible.

The Visma webhook dispatcher signs each delivery: header `x-vwd-signature-v1` is
base64(HMAC-SHA256(raw body, subscription secret)), with `x-vwd-notification-id`,
`x-vwd-tenant-id`, `x-vwd-event-id` and `x-vwd-notification-timestamp` beside it. The body format of
ERP events is not published, so a notification is only a hint: whatever shape it has, it is
accepted with its raw body kept, and the entity and record key are filled in when they can be
recognised. Polling stays the source of truth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from visma_tableau_pipeline.visma.catalogue import ENTITIES

SIGNATURE_HEADER = "x-vwd-signature-v1"

# Names Visma uses for a resource in event names and bodies, beyond the catalogue's own.
_RESOURCE_ALIASES = {"apinvoice": "SupplierInvoice", "arinvoice": "CustomerInvoice"}
_RESOURCE_FIELDS = ("entity", "entityname", "resource", "resourcename", "resourcetype", "eventtype", "event", "type")
_KEY_FIELDS = (
    "id", "key", "resourceid", "entityid", "number", "referencenumber", "refnbr", "accountcd", "employeenumber",
)
_ACTION_FIELDS = ("action", "operation", "changetype", "eventtype", "event", "type")
_DELETION = re.compile(r"delete", re.IGNORECASE)
_EVENT_SUFFIX = re.compile(
    r"[ _.]*(status[ _.]*changed|identity[ _.]*changed|action[ _.]*triggered|changed|created|updated|deleted)$"
)


class WebhookSignatureError(Exception):
    """The signature is missing or does not match: the request does not come from Visma."""


@dataclass(frozen=True)
class VismaNotification:
    """One webhook delivery, as far as it could be understood. `raw` is the body as received."""

    notification_id: str | None
    tenant_id: str | None
    event_id: str | None
    timestamp: str | None
    entity_name: str | None  # the catalogue entity it concerns, when recognised
    record_key: str | None  # the record's identifier, when the body names one
    raw: str = field(repr=False)


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str | bytes) -> None:
    """Raise `WebhookSignatureError` unless `x-vwd-signature-v1` signs `body` with `secret`."""
    given = _header(headers, SIGNATURE_HEADER)
    if not given:
        raise WebhookSignatureError(f"the request has no {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(sign(body, secret).encode("ascii"), given.strip().encode("utf-8", "replace")):
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} signature does not match the body")


def sign(body: bytes, secret: str | bytes) -> str:
    """The `x-vwd-signature-v1` value for `body` (what the dispatcher sends; used by the sandbox)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def parse_notification(body: bytes, headers: Mapping[str, str]) -> VismaNotification:
    """A notification from a delivery of any shape; never fails on an unknown body.

    Only the body is signed, so the tenant comes from the body when it names one: a replay of a
    signed body under another `x-vwd-tenant-id` header cannot move it to another company.
    """
    raw = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    fields = _flatten(document) if isinstance(document, dict) else {}
    return VismaNotification(
        notification_id=_header(headers, "x-vwd-notification-id") or fields.get("notificationid"),
        tenant_id=fields.get("tenantid") or _header(headers, "x-vwd-tenant-id"),
        event_id=_header(headers, "x-vwd-event-id") or fields.get("eventid"),
        timestamp=_header(headers, "x-vwd-notification-timestamp") or fields.get("timestamp"),
        entity_name=next(
            (name for f in _RESOURCE_FIELDS if (name := _entity_for(fields.get(f)))), None
        ),
        record_key=next((fields[f] for f in _KEY_FIELDS if fields.get(f)), None),
        raw=raw,
    )


def announces_deletion(raw_body: str) -> bool:
    """Whether a notification says its record was deleted: an action or event field naming a
    delete (`"action": "Delete"`, `"event": "Supplier.Deleted"`). A deletion changes no
    lastModifiedDateTime, so only a reconciling read finds it; any other body is a change."""
    try:
        document = json.loads(raw_body)
    except ValueError:
        return False
    fields = _flatten(document) if isinstance(document, dict) else {}
    return any(_DELETION.search(fields.get(name, "")) for name in _ACTION_FIELDS)


def notified_keys(record_key: str, parts: int) -> list[tuple[str, ...]]:
    """The key tuples a notification's record id can stand for.

    The body joins the key's values with "/" (`Invoice/000123`); a value holding a "/" itself
    makes the split ambiguous, so every way to cut the id into `parts` values is returned.
    """
    pieces = record_key.split("/")
    if len(pieces) < parts:
        return []
    return [
        tuple("/".join(pieces[start:end]) for start, end in zip((0, *cuts), (*cuts, len(pieces))))
        for cuts in itertools.combinations(range(1, len(pieces)), parts - 1)
    ]


def verify_and_parse(body: bytes, headers: Mapping[str, str], secret: str | bytes) -> VismaNotification:
    """Check the signature, then parse: what a webhook receiver calls."""
    verify_signature(body, headers, secret)
    return parse_notification(body, headers)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _flatten(document: dict, depth: int = 0) -> dict[str, str]:
    """Scalar fields by lower-case name, the outer level winning; nested objects up to 3 deep."""
    fields: dict[str, str] = {}
    nested: list[dict] = []
    for name, value in document.items():
        if isinstance(value, dict):
            nested.append(value)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            fields.setdefault(name.lower(), str(value))
    if depth < 3:
        for inner in nested:
            for name, value in _flatten(inner, depth + 1).items():
                fields.setdefault(name, value)
    return fields


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


_ENTITY_BY_RESOURCE = {
    _normalise(e.webhook_resource): e.name for e in ENTITIES if e.webhook_resource
}


def _entity_for(value: str | None) -> str | None:
    if not value:
        return None
    name = _EVENT_SUFFIX.sub("", value.strip().lower())
    resource = _normalise(name)
    resource = _normalise(_RESOURCE_ALIASES.get(resource, resource))
    return _ENTITY_BY_RESOURCE.get(resource)
