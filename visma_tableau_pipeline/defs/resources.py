"""Dagster resources: thin handles on settings, the state database and Visma clients."""


from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import dagster as dg

from visma_tableau_pipeline.companies import resolved_companies
from visma_tableau_pipeline.settings import CompanySettings, get_settings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.retrying import RetryPolicy


@lru_cache(maxsize=4)
def _state_db(url: str, connect_budget_s: float, backoff_s: float) -> StateDB:
    return StateDB(url, connect_budget_s=connect_budget_s, backoff_s=backoff_s)


class StateResource(dg.ConfigurableResource):
    """The project's state database (records, watermarks, inbox, ledger, secrets)."""

    def db(self) -> StateDB:
        settings = get_settings()
        return _state_db(settings.state_url, settings.retries.state_s, settings.retries.backoff_s)


class VismaResource(dg.ConfigurableResource):
    """Opens a Visma client for one company; settings come from the environment (or VTP_CONFIG)."""

    def company(self, company_id: str) -> CompanySettings:
        for company in resolved_companies(get_settings()):
            if company.company_id == company_id:
                return company
        return get_settings().company(company_id)  # raises a ConfigError naming the known ids

    @contextmanager
    def client(self, company_id: str) -> Iterator[VismaClient]:
        policy = RetryPolicy.from_settings(get_settings().retries)
        with VismaClient(self.company(company_id), retry_policy=policy) as client:
            yield client
