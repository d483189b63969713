"""Two syncs of one company at once keep to its one Visma budget, shared through the state database.

The sandbox allows LIMIT requests per company and client in windows of WINDOW_S seconds (a short
window, so that the test spans several), and answers every request over the limit with 429. Two
syncs run at once in two threads, each with its own handle on the state database and its own
pacer, as two Dagster runs on two machines would; they share only the database. Both read in
full (a delta would read less once the other had stored the records), and together they send
more requests than a window allows, so they must wait for later windows.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import CompanySettings, EnvSettings, Settings, build_settings, sandbox_companies
from visma_tableau_pipeline.state import StateDB
from visma_tableau_pipeline.state.rate_budgets import BudgetKey
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.plan import SyncReport, sync_all
from visma_tableau_pipeline.visma.retrying import RetryPolicy
from visma_tableau_pipeline.visma.shared_pacing import SharedPacer
from visma_tableau_pipeline_tests.pipeline.conftest import TODAY

LIMIT = 20
WINDOW_S = 4
SIZE, SEED = 5, 7
NO_RETRIES = RetryPolicy(max_attempts=1)  # a 429 would fail the sync instead of hiding in a retry


def one_month(tmp_path: Path) -> Settings:
    return build_settings(EnvSettings(vtp_home=tmp_path / "vtp", vtp_first_month=date(2026, 11, 1), _env_file=None))


def sync_alone(settings: Settings, url: str, sandbox: VismaSandbox) -> SyncReport:
    """The sync with a budget to itself, on a sandbox with the same data and no tight limit."""
    company = sandbox_companies(sandbox.base_url)[0]
    db = StateDB(url)
    try:
        return sync_all(settings, [company], db, full=True, today=TODAY, run_id="alone",
                        client_factory=lambda c: VismaClient(c, retry_policy=NO_RETRIES))
    finally:
        db.dispose()


def sync_in_own_process(settings: Settings, company: CompanySettings, url: str, run_id: str,
                        reports: dict[str, SyncReport], failures: list[Exception]) -> None:
    db = StateDB(url)  # this "process's" own engine and connections
    key = BudgetKey(company.api_url, company.tenant_id, company.client_id)
    try:
        reports[run_id] = sync_all(
            settings, [company], db, full=True, today=TODAY, run_id=run_id,
            client_factory=lambda c: VismaClient(c, retry_policy=NO_RETRIES, max_concurrency=2,
                                                 pacer=SharedPacer(db, key)),
        )
    except Exception as error:  # the test reports it, from its own thread
        failures.append(error)
    finally:
        db.dispose()


def test_two_concurrent_syncs_of_one_company_keep_to_its_budget(db, tmp_path):
    settings = one_month(tmp_path)
    url = db.url.render_as_string(hide_password=False)
    with VismaSandbox(SIZE, seed=SEED) as unlimited:
        alone = sync_alone(settings, f"sqlite:///{tmp_path / 'alone.db'}", unlimited)
    with VismaSandbox(SIZE, seed=SEED, rate_limit_per_hour=LIMIT, rate_window_seconds=WINDOW_S) as sandbox:
        company = sandbox_companies(sandbox.base_url)[0]
        reports: dict[str, SyncReport] = {}
        failures: list[Exception] = []
        runs = [threading.Thread(target=sync_in_own_process, args=(settings, company, url, run_id, reports, failures))
                for run_id in ("backfill", "webhook")]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        statuses = [status for _, _, status in sandbox.request_history]
    assert not failures, failures
    assert 2 * alone.api_calls > LIMIT  # together the syncs need more than one window
    # Every request over a window's limit would have been answered 429: none was.
    assert 429 not in statuses
    assert len(statuses) == 2 * alone.api_calls
    for report in reports.values():
        assert report.retries == 0
        assert report.totals()["records_read"] == alone.totals()["records_read"]
        assert {(w.entity, w.period): w.records_read for w in report.windows} == {
            (w.entity, w.period): w.records_read for w in alone.windows}
