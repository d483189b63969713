"""Visma Connect: one client-credentials token per company, cached and renewed before it expires.

Service applications get no refresh token: a new token is requested when the old one is about to
expire (`expires_in`, renewed `renew_before` seconds early, since the lifetime is not published).
Pages are fetched from several threads, so one lock makes sure that only one of them asks for a new
token while the others wait for it. Neither the token nor the client secret ever reaches a log line
or an exception.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from visma_tableau_pipeline.settings import CompanySettings
from visma_tableau_pipeline.visma.errors import (
    VismaAuthError,
    VismaPayloadError,
    VismaRequestError,
    VismaTransportError,
    error_for_status,
    visma_message,
)
from visma_tableau_pipeline.visma.retrying import RetryPolicy, call_with_retries
from visma_tableau_pipeline.visma.stats import ClientStats

log = logging.getLogger(__name__)

_EXPIRES_IN_WHEN_MISSING = 600.0

_CREDENTIALS_HINT = (
    "Check the client id and client secret of company {company} (VISMA_CLIENT_ID and "
    "VISMA_CLIENT_SECRET, or client_id and client_secret in the VTP_CONFIG file)"
)
_TENANT_HINT = (
    "Check the tenant id of company {company} (VISMA_TENANT_ID, or tenant_id in the VTP_CONFIG "
    "file): it must be the company tenant id, and the application must be approved for that company"
)
_SCOPE_HINT = (
    "Check the scope of company {company} (scope in the VTP_CONFIG file): the application must be "
    "granted vismanet_erp_service_api:read in the Visma Developer Portal"
)
_ANY_HINT = (
    "Check the client id, client secret and tenant id of company {company} (VISMA_CLIENT_ID, "
    "VISMA_CLIENT_SECRET, VISMA_TENANT_ID, or the same settings in the VTP_CONFIG file)"
)


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    expires_at: float  # on the provider's clock


class TokenProvider:
    """The current access token of one company, from Visma Connect's token endpoint."""

    def __init__(
        self,
        company: CompanySettings,
        http: httpx.Client,
        *,
        policy: RetryPolicy = RetryPolicy(),
        stats: ClientStats | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        renew_before: float = 60.0,
    ) -> None:
        self._company = company
        self._http = http
        self._policy = policy
        self._stats = stats or ClientStats()
        self._clock = clock
        self._sleep = sleep
        self._renew_before = renew_before
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def token(self) -> str:
        """A token valid for at least `renew_before` more seconds, requesting one when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._token.expires_at - self._renew_before:
                self._token = self._request_token()
            return self._token.value

    def invalidate(self, token: str) -> None:
        """Forget `token` (the API refused it), unless another thread has already replaced it."""
        with self._lock:
            if self._token is not None and self._token.value == token:
                self._token = None

    def _request_token(self) -> _Token:
        company = self._company
        secret = company.client_secret.get_secret_value()
        form = {
            "grant_type": "client_credentials",
            "client_id": company.client_id,
            "client_secret": secret,
            "tenant_id": company.tenant_id,
            "scope": company.scope,
        }
        context: dict[str, Any] = {"company_id": company.company_id, "url": company.token_url}

        def attempt() -> httpx.Response:
            self._stats.add(token_requests=1)
            try:
                response = self._http.post(company.token_url, data=form)
            except httpx.TransportError as exc:
                raise VismaTransportError(
                    f"could not reach the Visma Connect token endpoint ({type(exc).__name__})",
                    **context,
                ) from None
            error = error_for_status(response, company_id=company.company_id)
            if isinstance(error, VismaRequestError):
                raise _auth_error(response, company.company_id, secret)
            if error is not None:
                raise error
            return response

        response = call_with_retries(
            attempt, self._policy, sleep=self._sleep, on_retry=lambda *_: self._stats.add(retries=1)
        )
        try:
            document = json.loads(response.content)
            value = document["access_token"]
            expires_in = float(document.get("expires_in") or _EXPIRES_IN_WHEN_MISSING)
        except (ValueError, KeyError, TypeError):
            raise VismaPayloadError(
                "the Visma Connect token endpoint answered without an access_token",
                status=response.status_code,
                hint="Check VISMA_TOKEN_URL (token_url): it should be https://connect.visma.com/connect/token",
                **context,
            ) from None
        log.info("got a Visma access token for company %s (expires in %.0f s)", company.company_id, expires_in)
        return _Token(value=value, expires_at=self._clock() + expires_in)


def _auth_error(response: httpx.Response, company_id: str, secret: str) -> VismaAuthError:
    """A `VismaAuthError` that names the setting to check, from the OAuth error code."""
    said = visma_message(response.content) or ""
    try:
        code = str(json.loads(response.content).get("error", ""))
    except (ValueError, AttributeError):
        code = ""
    if code in ("invalid_client", "unauthorized_client"):
        hint = _CREDENTIALS_HINT
    elif code == "invalid_scope":
        hint = _SCOPE_HINT
    elif code == "invalid_grant" or "tenant" in said.lower():
        hint = _TENANT_HINT
    else:
        hint = _ANY_HINT
    if secret:
        said = said.replace(secret, "***")
    return VismaAuthError(
        "Visma Connect refused to issue a token",
        company_id=company_id,
        status=response.status_code,
        url=str(response.request.url),
        visma_message=said or None,
        hint=hint.format(company=company_id),
    )
