"""Visma Connect's client-credentials grant, as far as an ERP service integration sees it.

One token reaches exactly one company: the tenant it was issued for. A token issued for the
customer (contract) tenant id is accepted by Visma Connect, and then refused (401) by every ERP
API call, which is how the real service behaves when the wrong tenant id is configured.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from visma_tableau_pipeline.sandbox.visma.errors import oauth_error, unauthorized

ERP_SCOPES = frozenset({"vismanet_erp_service_api:read", "vismanet_erp_service_api:create",
                        "vismanet_erp_service_api:update", "vismanet_erp_service_api:delete"})


@dataclass(frozen=True)
class Client:
    """A registered service integration: its secret and the tenants it was granted."""

    client_id: str
    secret: str
    tenants: frozenset[str]


@dataclass(frozen=True)
class Grant:
    """What a valid token grants."""

    client_id: str
    tenant_id: str
    company_id: str | None  # None for a customer (contract) tenant: no API access
    expires_at: float
    scope: str


class TokenIssuer:
    """Issues and checks bearer tokens. Expiry follows the monotonic clock."""

    def __init__(
        self,
        clients: Mapping[str, Client],
        companies_by_tenant: Mapping[str, str],
        lifetime_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = dict(clients)
        self._companies = dict(companies_by_tenant)
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, form: Mapping[str, str]) -> dict:
        """The token response for a form-encoded request, or an OAuth error."""
        if form.get("grant_type") != "client_credentials":
            raise oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported here")
        client = self._clients.get(form.get("client_id", ""))
        if client is None or not hmac.compare_digest(client.secret, form.get("client_secret", "")):
            raise oauth_error(401, "invalid_client", "Invalid client credentials")
        tenant_id = form.get("tenant_id", "")
        if not tenant_id:
            raise oauth_error(400, "invalid_request", "tenant_id is required for service integrations")
        if tenant_id not in client.tenants:
            raise oauth_error(401, "invalid_grant", "The client has no access to the requested tenant")
        requested = set(form.get("scope", "").split())
        if not requested or not requested <= ERP_SCOPES:
            raise oauth_error(400, "invalid_scope", "Unknown or missing scope")
        scope = " ".join(sorted(requested))
        token = secrets.token_urlsafe(32)
        grant = Grant(client.client_id, tenant_id, self._companies.get(tenant_id),
                      self._clock() + self.lifetime_seconds, scope)
        with self._lock:
            self._grants[token] = grant
        return {"access_token": token, "expires_in": int(self.lifetime_seconds), "token_type": "Bearer",
                "scope": scope}

    def check(self, authorization: str | None) -> Grant:
        """The grant behind an `Authorization: Bearer ...` header that may call the ERP API."""
        if not authorization or not authorization.startswith("Bearer "):
            raise unauthorized()
        with self._lock:
            grant = self._grants.get(authorization[len("Bearer "):].strip())
        if grant is None or grant.expires_at <= self._clock() or grant.company_id is None:
            raise unauthorized()
        return grant

    def expire_all(self) -> None:
        """Make every token issued so far expired (tests of renewal without waiting)."""
        with self._lock:
            self._grants = {token: Grant(g.client_id, g.tenant_id, g.company_id, 0.0, g.scope)
                            for token, g in self._grants.items()}

