"""What the Visma sandbox tests share: a running sandbox and a tiny HTTP client for it.

The client here is deliberately naive (it is not the project's Visma client, which has its own
tests against the sandbox): it asks for a token and GETs a path, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx

from visma_tableau_pipeline.sandbox.visma import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.wire import parse_json
from visma_tableau_pipeline.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

READ_SCOPE = "vismanet_erp_service_api:read"


def token_form(tenant_id: str, secret: str = SANDBOX_CLIENT_SECRET) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": SANDBOX_CLIENT_ID, "client_secret": secret,
            "tenant_id": tenant_id, "scope": READ_SCOPE}


class SandboxClient:
    """GETs against one company of a running sandbox."""

    def __init__(self, sandbox: VismaSandbox, company_id: str = "nordic-no", timeout: float = 30.0) -> None:
        assert sandbox.base_url
        self.base_url = sandbox.base_url
        self.http = httpx.Client(base_url=sandbox.base_url, timeout=timeout)
        response = self.http.post("/connect/token", data=token_form(sandbox.tenant_id(company_id)))
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.http.get(path, params={k: str(v) for k, v in params.items()}, headers=self.headers)

    def json(self, path: str, **params: object) -> object:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return parse_json(response.content)

    def pages(self, path: str, page_size: int, **params: object) -> Iterator[list[dict]]:
        """Every page of a paged list, stopping by the documented rule."""
        number = 1
        while True:
            page = self.json(path, pageNumber=number, pageSize=page_size, **params)
            assert isinstance(page, list)
            yield page
            if not page:
                return
            applied = min(page_size, page[0]["metadata"]["maxPageSize"])
            # /v2/journaltransaction counts lines, not batches
            served = sum(len(r.get("journalTransactionLines", [None])) for r in page)
            if served < applied or number * applied >= page[0]["metadata"]["totalCount"]:
                return
            number += 1

    def close(self) -> None:
        self.http.close()


def strip_metadata(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "metadata"} for r in records]


def decimals(value: object) -> Iterator[tuple[str, Decimal]]:
    """Every (field name, Decimal) in a parsed JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, Decimal):
                yield key, item
            else:
                yield from decimals(item)
    elif isinstance(value, list):
        for item in value:
            yield from decimals(item)
