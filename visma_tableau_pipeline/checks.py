"""`vtp check`: can the configured credentials reach the real systems?

Each check does the least that proves access: a Visma token and one small read per company, and a
Tableau sign-in and sign-out, and with VTP_EXTRACTS_URL a read of the shared extracts' pointers.
A failure carries the typed error's own message, which names the
setting to fix and never holds a secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from visma_tableau_pipeline.companies import resolved_companies
from visma_tableau_pipeline.delivery.extract_store import ExtractStoreError, extract_store, shown_url
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.settings import (
    CompanySettings,
    ConfigError,
    RetrySettings,
    Settings,
    TableauSettings,
)
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.errors import VismaError
from visma_tableau_pipeline.visma.retrying import RetryPolicy

log = logging.getLogger(__name__)

SMALL_ENDPOINT = "/v1/financialPeriod"


@dataclass(frozen=True)
class CheckResult:
    target: str
    ok: bool
    message: str


def check_company(company: CompanySettings, policy: RetryPolicy = RetryPolicy()) -> CheckResult:
    target = f"Visma company {company.company_id} ({company.api_url})"
    try:
        with VismaClient(company, retry_policy=policy) as client:
            periods = client.get(SMALL_ENDPOINT, entity="financial_periods")
    except VismaError as error:
        return CheckResult(target, False, str(error))
    if not isinstance(periods, list):
        return CheckResult(target, False, f"{SMALL_ENDPOINT} did not answer with a list")
    span = f"{periods[0].get('period')}..{periods[-1].get('period')}" if periods else "none"
    return CheckResult(target, True, f"token issued; {len(periods)} financial periods ({span})")


def check_tableau(tableau: TableauSettings, retries: RetrySettings) -> CheckResult:
    from visma_tableau_pipeline.tableau.session import RetryPolicy as TableauRetry
    from visma_tableau_pipeline.tableau.session import TableauSession

    target = f"Tableau {tableau.server_url} site {tableau.site or '(default)'}"
    try:
        with TableauSession(tableau, retry=TableauRetry.from_settings(retries)) as session:
            version = session.server.version
    except Exception as error:
        return CheckResult(target, False, f"{type(error).__name__}: {error}")
    return CheckResult(target, True, f"signed in (REST API {version})")


def check_extract_store(settings: Settings) -> CheckResult:
    """Whether the shared extracts (VTP_EXTRACTS_URL) can be read: every dashboard table's pointer
    (a missing bucket and refused credentials show here, before a run fails on them)."""
    target = f"Shared extracts {shown_url(settings.extracts_url or '')}"
    try:
        store = extract_store(settings)
        assert store is not None, "VTP_EXTRACTS_URL is set"
        shared = [version for table in MART_TABLES if (version := store.current(table.name))]
    except (ConfigError, ExtractStoreError) as error:
        return CheckResult(target, False, str(error))
    latest = max(shared, key=lambda version: version.pushed_at, default=None)
    return CheckResult(target, True, f"readable; {len(shared)} of {len(MART_TABLES)} dashboard tables shared"
                       + (f", the latest by run {latest.run_id} at {latest.pushed_at:%Y-%m-%d %H:%M} UTC"
                          if latest else ""))


def run_checks(settings: Settings, companies: list[CompanySettings] | None = None) -> list[CheckResult]:
    """One result per company, one for Tableau (or a note that publishing is off), and one for
    the shared extracts when VTP_EXTRACTS_URL is set."""
    if settings.sandbox:
        log.info("VTP_SANDBOX: checking the bundled Visma sandbox, not a real company.")
    policy = RetryPolicy.from_settings(settings.retries)
    results = [check_company(c, policy) for c in (companies or resolved_companies(settings))]
    if settings.sandbox:  # said where a user reads it, not only in the log
        results.insert(0, CheckResult("Visma", True, "the bundled sandbox (VTP_SANDBOX), not a real company"))
    if settings.tableau is None:
        results.append(CheckResult("Tableau", True, "not configured: extracts are written, nothing is published"))
    else:
        results.append(check_tableau(settings.tableau, settings.retries))
    if settings.extracts_url:
        results.append(check_extract_store(settings))
    return results
