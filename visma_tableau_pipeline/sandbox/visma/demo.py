"""The demo group's credentials, as the pipeline's settings use them when no Visma credentials
are configured. These are sandbox-only values, worthless against the real Visma."""

from __future__ import annotations

import os

from pydantic import SecretStr

from visma_tableau_pipeline.sandbox.visma.companies import PROFILES
from visma_tableau_pipeline.settings import READ_SCOPE, CompanySettings

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"
SANDBOX_CLIENT_ID = "nordlys_dagster_sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret-not-for-production"
# company id -> company tenant id (the tenant_id a token request must carry)
COMPANY_TENANT_IDS: dict[str, str] = {p.company_id: p.tenant_id for p in PROFILES}
# The group's customer (contract) tenant id: Visma Connect issues a token for it, and every ERP
# API call with that token answers 401, as the real service does when this id is configured.
CUSTOMER_TENANT_ID = "0d5f8a27-6e4b-4c19-8f3a-71b2c9e4d033"


def sandbox_companies(base_url: str | None = None) -> list[CompanySettings]:
    """Settings for every demo company, pointing at the sandbox at `base_url` (default: env
    VTP_SANDBOX_URL, else http://127.0.0.1:8765)."""
    url = (base_url or os.environ.get("VTP_SANDBOX_URL") or DEFAULT_SANDBOX_URL).rstrip("/")
    return [
        CompanySettings(
            company_id=company_id,
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SecretStr(SANDBOX_CLIENT_SECRET),
            tenant_id=tenant_id,
            api_url=url,
            token_url=f"{url}/connect/token",
            scope=READ_SCOPE,
        )
        for company_id, tenant_id in COMPANY_TENANT_IDS.items()
    ]
