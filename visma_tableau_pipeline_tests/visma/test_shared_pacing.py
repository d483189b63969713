"""Visma's budget shared through the state database: what one process spends, the others see.

Each "process" here is a `SharedPacer` with a `StateDB` of its own on the same database (SQLite and
PostgreSQL in turn); they share nothing else. The clock is a fake wall clock that moves only when a
pacer sleeps, so the waits are exact.
"""

from __future__ import annotations

import pytest

from visma_tableau_pipeline.sandbox.visma import FaultPlan, VismaSandbox
from visma_tableau_pipeline.settings import sandbox_companies
from visma_tableau_pipeline.state import StateDB
from visma_tableau_pipeline.state.rate_budgets import BudgetKey
from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.errors import VismaRateLimited
from visma_tableau_pipeline.visma.retrying import RetryPolicy
from visma_tableau_pipeline.visma.shared_pacing import SharedPacer, company_pacer

from .fake_visma import FakeClock, company

KEY = BudgetKey("https://visma.test", "company-tenant-1", "app-client-id")


def budget(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}


def same_database(db: StateDB) -> StateDB:
    """Another process's handle on `db`: its own engine and connections."""
    return StateDB(db.url.render_as_string(hide_password=False))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def first(db: StateDB, clock: FakeClock) -> SharedPacer:
    return SharedPacer(db, KEY, clock=clock, sleep=clock.sleep)


@pytest.fixture
def second(db: StateDB, clock: FakeClock):
    other = same_database(db)
    yield SharedPacer(other, KEY, clock=clock, sleep=clock.sleep)
    other.dispose()


def test_requests_one_process_spent_slow_the_other_down(first, second, clock):
    first.observe(budget(100, 30, 60))  # 30 left in 60 s: 20 to spend at once, the last 10 spread
    assert [first.acquire() for _ in range(20)] == [0.0] * 20
    # The second has seen no answer at all, yet it knows only 10 remain and spreads them.
    assert second.acquire() == 0.0
    assert second.acquire() == 6.0


def test_a_low_remainder_is_shared_out_between_processes(first, second, clock):
    first.observe(budget(100, 4, 60))
    first.acquire()  # writes what its answer reported; the first of the 4 goes at once
    for pacer in (second, first, second):
        pacer.acquire()
    # 4 calls left in 60 s, taken in turn by two processes: one every 15 s between them.
    assert clock.sleeps == [15.0, 15.0, 15.0]


def test_an_empty_budget_holds_every_process_until_the_window_ends(first, second, clock):
    first.observe(budget(100, 0, 42))
    assert first.acquire() == 42.0
    assert second.acquire() == 0.0  # the window has ended for both


def test_a_429_seen_by_one_process_holds_the_other(first, second, clock):
    first.observe(budget(100, 90, 3000))
    first.acquire()
    first.hold(20)
    assert second.acquire() == 20.0
    assert first.acquire() == 0.0  # the hold is over: plenty remains


def test_an_answer_from_a_window_that_has_ended_does_not_shrink_the_next(first, second, clock):
    first.observe(budget(100, 3, 10))  # the end of a window...
    clock.now += 60
    second.observe(budget(100, 95, 3000))  # ...and a later window
    second.acquire()
    first.acquire()  # writes its stale answer, which must be ignored
    assert [second.acquire() for _ in range(50)] == [0.0] * 50


def test_a_429_from_the_sandbox_holds_another_process_reading_the_same_company(db, clock):
    """Over HTTP: one client meets a 429 with Retry-After 30; another, with its own pacer and
    its own handle on the state database, waits those 30 s before its first request."""
    with VismaSandbox(20, seed=7) as sandbox:
        settings = sandbox_companies(sandbox.base_url)[0]
        key = BudgetKey(settings.api_url, settings.tenant_id, settings.client_id)
        once = RetryPolicy(max_attempts=1)
        sandbox.faults = FaultPlan(throttle_every=1, throttle_retry_after=30)
        with VismaClient(settings, pacer=SharedPacer(db, key, clock=clock, sleep=clock.sleep),
                         retry_policy=once, clock=clock, sleep=clock.sleep, max_concurrency=1) as refused:
            with pytest.raises(VismaRateLimited):
                list(refused.read_entity(entity("suppliers")))
        sandbox.faults = FaultPlan()
        other_db = same_database(db)
        try:
            with VismaClient(settings, pacer=SharedPacer(other_db, key, clock=clock, sleep=clock.sleep),
                             retry_policy=once, clock=clock, sleep=clock.sleep) as held:
                suppliers = [record for batch in held.read_entity(entity("suppliers")) for record in batch]
                waited = held.stats.throttled_seconds
        finally:
            other_db.dispose()
        statuses = [status for _, _, status in sandbox.request_history]
    assert waited == 30.0
    assert len(suppliers) == sandbox.count(settings.company_id, "suppliers")
    assert statuses.count(429) == 1  # the one that was refused; the other process sent none into the hold


def test_each_process_has_one_pacer_per_company_and_database(db):
    assert company_pacer(company(), db) is company_pacer(company(), db)
    assert company_pacer(company(), db) is not company_pacer(company())
    assert isinstance(company_pacer(company(), db), SharedPacer)

