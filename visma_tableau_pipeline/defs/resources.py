"""Dagster resources: the state database, a Visma client per company, the Tableau connection.

Each carries its configuration as fields, filled from the settings when the definitions load
(`resources_for`), so the UI shows what runs use and the launchpad can change it for one run.
No field holds a secret (`secret_sources.py`): the resource reads one when it opens a connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from visma_tableau_pipeline.companies import sandbox_company_settings
from visma_tableau_pipeline.defs.secret_sources import SecretSource, config_file_entry, from_config_file
from visma_tableau_pipeline.delivery.extract_store import ExtractStore, extract_store_at
from visma_tableau_pipeline.marts.hyper import hyper_path
from visma_tableau_pipeline.settings import (
    CompanySettings,
    ConfigError,
    EnvSettings,
    RetrySettings,
    Settings,
    StoredSecrets,
    TableauSettings,
    sandbox_companies,
)
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.tableau.pat import PatUsageFile
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.plan import paced_client
from visma_tableau_pipeline.visma.retrying import RetryPolicy


@lru_cache(maxsize=4)
def _state_db(url: str, connect_budget_s: float, backoff_s: float) -> StateDB:
    return StateDB(url, connect_budget_s=connect_budget_s, backoff_s=backoff_s)


@lru_cache(maxsize=4)
def _stored_secrets(home: str, url: str) -> StoredSecrets:
    return StoredSecrets(Path(home), url)


class StateResource(dg.ConfigurableResource):
    """The project's own database (records, watermarks, inbox, ledger, secrets) and its folder
    (VTP_HOME: extracts, PAT usage)."""

    url: str = Field(description="SQLAlchemy URL of the state database: dg.EnvVar VTP_STATE_URL (it may hold "
                     "a password), else SQLite in home")
    home: str = Field(description="VTP_HOME: the extracts, the PAT usage file, the secret key file")
    connect_budget_s: float = Field(default=30.0, description="VTP_STATE_RETRY_SECONDS: how long a transaction "
                                    "start waits while the database is unreachable")
    backoff_s: float = Field(default=1.0, description="VTP_RETRY_BACKOFF_SECONDS: the first wait between tries")
    extracts_url: str | None = Field(default=None, description="VTP_EXTRACTS_URL: where runs on several machines "
                                     "share the extracts (fsspec URL); none keeps them in home only")
    extracts_endpoint_url: str | None = Field(default=None, description="VTP_EXTRACTS_ENDPOINT_URL: an "
                                              "S3-compatible store's endpoint")

    def db(self) -> StateDB:
        return _state_db(self.url, self.connect_budget_s, self.backoff_s)

    def extract_store(self) -> ExtractStore | None:
        """Where the extracts are shared between machines, or None (`delivery/extract_store.py`)."""
        return extract_store_at(self.extracts_url, self.extracts_endpoint_url)

    def extract(self, name: str) -> Path:
        """The local path of extract `name`, brought up to its shared copy first when there is one."""
        path = hyper_path(self.extracts_dir, name)
        store = self.extract_store()
        if store is not None:
            store.pull(name, path)
        return path

    def share(self, name: str, path: Path, run_id: str) -> None:
        """Share an extract written outside `build_extract` (Tableau's directory, entitlements)."""
        store = self.extract_store()
        if store is not None:
            store.push(name, path, run_id=run_id)

    @property
    def extracts_dir(self) -> Path:
        """Where the dashboard tables are written: `$VTP_HOME/extracts/<name>.hyper`."""
        return Path(self.home) / "extracts"

    def stored_secret(self, name: str) -> str | None:
        """A credential from `vtp secrets`, or None when none is stored under `name`."""
        return _stored_secrets(self.home, self.url).get(name)


class VismaCompany(dg.Config):
    """One Visma.net company as a run connects to it (`CompanySettings`, its secret by source)."""

    company_id: str
    client_id: str
    client_secret: SecretSource
    tenant_id: str = Field(description="the company tenant id (not the customer/contract one)")
    api_url: str
    token_url: str
    scope: str
    ipp_company_id: str | None = None
    max_concurrency: int = 4

    def settings(self, state: StateResource) -> CompanySettings:
        return CompanySettings(
            company_id=self.company_id, client_id=self.client_id, tenant_id=self.tenant_id,
            client_secret=self.client_secret.value(state.stored_secret, "client_secret", self.company_id),
            api_url=self.api_url, token_url=self.token_url, scope=self.scope,
            ipp_company_id=self.ipp_company_id, max_concurrency=self.max_concurrency,
        )


class VismaResource(dg.ConfigurableResource):
    """Opens a Visma client for one company: a configured one, or one of the bundled sandbox's
    demo group when the sandbox was asked for."""

    companies: list[VismaCompany] = Field(description="VISMA_* or VTP_CONFIG; none when the sandbox is read")
    sandbox: bool = Field(default=False, description="VTP_SANDBOX or VTP_SANDBOX_URL: read the bundled sandbox")
    sandbox_url: str | None = Field(default=None, description="VTP_SANDBOX_URL: a running sandbox; without it "
                                    "the run starts one in its own process")
    sandbox_size: int = Field(default=300, description="VTP_SANDBOX_SIZE: supplier invoices of a sandbox started here")
    sandbox_companies: int = Field(default=0, description="VTP_SANDBOX_COMPANIES: generated client companies "
                                   "the sandbox serves besides the demo group")
    retry_budget_s: float = Field(default=300.0, description="VTP_VISMA_RETRY_SECONDS: how long one request "
                                  "rides out 429, 5xx and dropped connections")
    retry_backoff_s: float = Field(default=1.0, description="VTP_RETRY_BACKOFF_SECONDS: the first wait between tries")
    state: StateResource  # where `vtp secrets` keeps credentials

    def company(self, company_id: str) -> CompanySettings:
        """The company's settings, its secret read now; a ConfigError names the known ids."""
        if self.sandbox:
            started = (sandbox_companies(self.sandbox_url, self.sandbox_companies) if self.sandbox_url
                       else sandbox_company_settings(self.sandbox_size, self.sandbox_companies))
            demo = {company.company_id: company for company in started}
            if company_id in demo:
                return demo[company_id]
            known = list(demo)
        else:
            configured = {company.company_id: company for company in self.companies}
            if company_id in configured:
                return configured[company_id].settings(self.state)
            known = list(configured)
        raise ConfigError(f"no company {company_id!r} is configured; configured: {', '.join(known)}")

    @contextmanager
    def client(self, company_id: str) -> Iterator[VismaClient]:
        policy = RetryPolicy.from_settings(RetrySettings(backoff_s=self.retry_backoff_s, visma_s=self.retry_budget_s))
        with paced_client(self.company(company_id), self.state.db(), policy) as client:
            yield client


class TableauResource(dg.ConfigurableResource):
    """Where and how data sources are published: a PAT or a Connected App. Without `server_url`
    no Tableau is configured: data sources are skipped with the reason, extracts still written."""

    server_url: str | None = Field(default=None, description="TABLEAU_SERVER_URL (or tableau: in VTP_CONFIG)")
    site: str = ""
    project: str = "Visma"
    pat_name: str | None = None
    pat_secret: SecretSource | None = None
    connected_app_client_id: str | None = None
    connected_app_secret_id: str | None = None
    connected_app_secret_value: SecretSource | None = None
    username: str | None = Field(default=None, description="the user a Connected App JWT signs in as")
    deployment: Literal["cloud", "server"] = Field(default="server", description="session length and PAT expiry rules")
    pat_created_on: str | None = Field(default=None, description="Tableau Server: the day the PAT was made")
    pat_lifetime_days: int = 365
    state: StateResource  # where `vtp secrets` keeps credentials, and VTP_HOME with the PAT usage file

    @property
    def configured(self) -> bool:
        return bool(self.server_url)

    def settings(self) -> TableauSettings:
        """The settings a session signs in with, secrets read now (only when configured)."""
        if not self.server_url:
            raise ConfigError("no Tableau is configured: set TABLEAU_SERVER_URL, or tableau: in VTP_CONFIG")
        return TableauSettings(
            server_url=self.server_url, site=self.site, project=self.project, pat_name=self.pat_name,
            pat_secret=self.pat_secret.value(self.state.stored_secret, "pat_secret", None)
            if self.pat_secret else None,
            connected_app_client_id=self.connected_app_client_id,
            connected_app_secret_id=self.connected_app_secret_id,
            connected_app_secret_value=self.connected_app_secret_value.value(
                self.state.stored_secret, "connected_app_secret_value", None)
            if self.connected_app_secret_value else None,
            username=self.username, deployment=self.deployment,
            pat_created_on=self.pat_created, pat_lifetime_days=self.pat_lifetime_days,
        )

    @property
    def pat_created(self) -> date | None:
        return date.fromisoformat(self.pat_created_on) if self.pat_created_on else None

    def pat_usage(self) -> PatUsageFile:
        """When each PAT was last used (Tableau Cloud expires one unused for 15 days)."""
        return PatUsageFile.under(Path(self.state.home))


def resources_for(settings: Settings, env: EnvSettings) -> dict[str, dg.ConfigurableResource]:
    """The resources the settings describe; `env` tells which secrets environment variables hold."""
    state = StateResource(
        url=dg.EnvVar("VTP_STATE_URL") if env.vtp_state_url else settings.state_url, home=str(settings.home),
        connect_budget_s=settings.retries.state_s, backoff_s=settings.retries.backoff_s,
        # the URL may carry a password (sftp://user:secret@host): named, not shown, when it is in the environment
        extracts_url=dg.EnvVar("VTP_EXTRACTS_URL") if env.vtp_extracts_url else settings.extracts_url,
        extracts_endpoint_url=settings.extracts_endpoint_url,
    )
    visma = VismaResource(
        companies=[] if settings.sandbox else [_company(company, env) for company in settings.companies],
        sandbox=settings.sandbox, sandbox_url=env.vtp_sandbox_url, sandbox_size=settings.sandbox_size,
        sandbox_companies=settings.sandbox_companies,
        retry_budget_s=settings.retries.visma_s, retry_backoff_s=settings.retries.backoff_s, state=state,
    )
    return {"state": state, "visma": visma, "tableau": _tableau(settings.tableau, env, state)}


def _company(company: CompanySettings, env: EnvSettings) -> VismaCompany:
    stored = SecretSource(vtp_secrets=f"visma/{company.company_id}/client_secret")
    if env.vtp_config:  # the file's value, else the store (settings.py, `_from_yaml`)
        secret = from_config_file(env.vtp_config, "client_secret", company.company_id) or stored
    else:
        secret = SecretSource(env_var=dg.EnvVar("VISMA_CLIENT_SECRET")) if env.visma_client_secret else stored
    return VismaCompany(
        company_id=company.company_id, client_id=company.client_id, client_secret=secret,
        tenant_id=company.tenant_id, api_url=company.api_url, token_url=company.token_url, scope=company.scope,
        ipp_company_id=company.ipp_company_id, max_concurrency=company.max_concurrency,
    )


def _tableau(tableau: TableauSettings | None, env: EnvSettings, state: StateResource) -> TableauResource:
    if tableau is None:
        return TableauResource(state=state)
    config_file = env.vtp_config if env.vtp_config and config_file_entry(env.vtp_config, None) else None

    def source(key: str, variable: str, in_environment: object, found: object) -> SecretSource | None:
        """Where the settings found secret `key`: in the VTP_CONFIG file's tableau: section, else in
        the environment variable, else in the store (settings.py, `_tableau_from_env`)."""
        if config_file:
            return from_config_file(config_file, key, None)
        if found is None:
            return None
        return SecretSource(env_var=dg.EnvVar(variable)) if in_environment else SecretSource(
            vtp_secrets=f"tableau/{key}")

    return TableauResource(
        server_url=tableau.server_url, site=tableau.site, project=tableau.project, pat_name=tableau.pat_name,
        pat_secret=source("pat_secret", "TABLEAU_PAT_SECRET", env.tableau_pat_secret, tableau.pat_secret),
        connected_app_client_id=tableau.connected_app_client_id,
        connected_app_secret_id=tableau.connected_app_secret_id,
        connected_app_secret_value=source(
            "connected_app_secret_value", "TABLEAU_CONNECTED_APP_SECRET_VALUE",
            env.tableau_connected_app_secret_value, tableau.connected_app_secret_value),
        username=tableau.username, deployment=tableau.deployment,
        pat_created_on=tableau.pat_created_on.isoformat() if tableau.pat_created_on else None,
        pat_lifetime_days=tableau.pat_lifetime_days, state=state,
    )
