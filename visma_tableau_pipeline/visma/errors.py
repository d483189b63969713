"""Typed errors of the Visma client.

Every error says which company, entity, page and URL it concerns, what Visma itself said, and what
a user can do about it. None of them ever holds a secret: URLs carry only the path and query (the
client never puts credentials there), and the token and client secret are never passed in.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Visma answers errors in three shapes (API-FACTS "Rate limits and errors"):
#   {"ExceptionType", "ExceptionMessage", "ExceptionFaultCode", "ExceptionMessageID", "ExceptionDetails"}
#   {"Message": ...} or {"message": ...}
#   plain text, or nothing at all.
_MESSAGE_FIELDS = ("ExceptionMessage", "Message", "message", "error_description", "error")
_MAX_MESSAGE_CHARS = 500


def visma_message(body: bytes | str | None) -> str | None:
    """What Visma said in an error body, whatever its shape; None for an empty body."""
    if body is None:
        return None
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return text[:_MAX_MESSAGE_CHARS]
    if isinstance(document, dict):
        message = next((str(document[f]) for f in _MESSAGE_FIELDS if document.get(f)), None)
        if message is None:
            return text[:_MAX_MESSAGE_CHARS]
        extras = [
            f"{field} {document[field]}"
            for field in ("ExceptionFaultCode", "ExceptionMessageID")
            if document.get(field)
        ]
        if extras:
            message = f"{message} ({', '.join(extras)})"
        return message[:_MAX_MESSAGE_CHARS]
    if isinstance(document, str):
        return document[:_MAX_MESSAGE_CHARS]
    return text[:_MAX_MESSAGE_CHARS]


class VismaError(Exception):
    """Something went wrong talking to Visma.net ERP. `str()` gives the whole story."""

    def __init__(
        self,
        summary: str,
        *,
        company_id: str | None = None,
        entity: str | None = None,
        page: int | None = None,
        status: int | None = None,
        url: str | None = None,
        visma_message: str | None = None,
        hint: str | None = None,
        attempts: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.summary = summary
        self.company_id = company_id
        self.entity = entity
        self.page = page
        self.status = status
        self.url = url
        self.visma_message = visma_message
        self.hint = hint
        self.attempts = attempts
        self.retry_after = retry_after  # seconds Visma asked us to wait (Retry-After), if any
        super().__init__(summary)

    def __str__(self) -> str:
        context = [
            f"{label} {value}"
            for label, value in (
                ("company", self.company_id),
                ("entity", self.entity),
                ("page", self.page),
                ("HTTP", self.status),
                ("attempts", self.attempts),
            )
            if value is not None
        ]
        parts = [self.summary]
        if context:
            parts.append(f"[{', '.join(context)}]")
        if self.url:
            parts.append(f"URL {self.url}")
        if self.visma_message:
            parts.append(f"Visma said: {self.visma_message}")
        if self.hint:
            parts.append(self.hint)
        return ". ".join(parts)


class VismaAuthError(VismaError):
    """The Visma Connect token endpoint refused the credentials (client id, secret, tenant, scope)."""


class VismaTenantError(VismaError):
    """A freshly issued token is refused by the API: usually the wrong kind of tenant id."""


class VismaRequestError(VismaError):
    """A 4xx answer other than 401 and 429: the request itself is wrong. Never retried."""


class VismaServerError(VismaError):
    """Visma kept answering 5xx after every retry."""


class VismaRateLimited(VismaError):
    """Visma kept answering 429 after every retry, or asked for a wait beyond the time budget."""


class VismaTransportError(VismaError):
    """The network failed (connect, read, timeout) after every retry."""


class VismaPayloadError(VismaError):
    """A response Visma sent cannot be read as the entity's list: not JSON, not a list, no keys."""


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header in seconds; it may be a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(response: httpx.Response, **context) -> VismaError | None:
    """The typed error for a non-2xx answer of the API, or None when the answer is a success.

    A 401 comes back as a `VismaRequestError` with status 401: the caller decides between renewing
    the token and a `VismaTenantError`, because only it knows whether the token was fresh.
    """
    status = response.status_code
    if status < 400:
        return None
    said = visma_message(response.content)
    context = {"status": status, "url": str(response.request.url), "visma_message": said, **context}
    if status == 429:
        return VismaRateLimited(
            "Visma's rate limit for this company and client is used up",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            hint="The pipeline paces itself from X-RateLimit-* headers; another client may share "
            "this company's budget",
            **context,
        )
    if status >= 500:
        return VismaServerError(
            "Visma answered with a server error",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            **context,
        )
    return VismaRequestError("Visma refused the request", **context)


class VismaUnstableReadError(VismaError):
    """Rows kept moving between pages on every pass, so the read may have skipped some.

    Every record already handed on is correct; only completeness is in doubt. Nothing that
    depends on completeness (a watermark, deletion of records not seen) may follow such a read.
    """
