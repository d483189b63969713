"""Visma's rate budget shared through the state database, by every process that reads a company.

Visma counts requests per company and client, whichever process sends them. Two Dagster runs of
one company (an entity backfill and a webhook-triggered run, or runs on two machines) that each
paced alone would each spend the budget as if it were theirs, together twice as fast, and meet
429s. A `SharedPacer` keeps the budget of its (company, client) pair in the state database
(`state/rate_budgets.py`) and applies the rules of `visma/pacing.Budget` to it there: every process
sees the requests the others counted, the slots of a low remainder are shared out between all of
them, and a 429 seen by one holds the others.

Times in the shared budget are wall-clock UTC (`time.time()`, stored as UTC datetimes), never a
monotonic clock, whose zero is different in every process and on every machine. The machines must
keep their clocks in step (NTP); a second or two apart is within the slack the budget already
allows for `X-RateLimit-Reset`, which is whole seconds.

Cost. Every consultation of the shared budget is one short write transaction (a locked row read
and written back), and it must not cost what pacing saves. So a process reserves requests in small
batches: while plenty remains it takes up to `GRANT_SIZE` (10) requests from the shared remainder
at once and sends them without asking again, one transaction for ten requests. When the remainder
is low, each request takes its own slot in one transaction, because the slots are spread over the
rest of the window and must be shared out between processes one by one; by then pacing spaces
requests seconds apart and a millisecond transaction does not matter. `benchmarks/shared_pacing.py`
measures both. Answers' headers are noted in memory and written with the next reservation, so they
cost nothing more. A 429 is written at once.

What batching gives up, and why it is acceptable: a process that already holds requests of a batch
sees another's 429 only when it reserves again (after at most `GRANT_SIZE` - 1 requests); and the
unused requests of a batch are counted as spent until the window ends, when a process stops with
some in hand (at most `GRANT_SIZE` - 1 per process and company, against a window of thousands).
Batches are never taken from the low remainder, so neither can push the last requests of a window
into a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from visma_tableau_pipeline.settings import CompanySettings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.rate_budgets import BudgetKey, StoredBudget, budget_for_update
from visma_tableau_pipeline.visma.pacing import Budget, Pacer, Reported, RequestPacer, wait_until

GRANT_SIZE = 10


class SharedPacer:
    """The rate budget of one (company, client) pair, kept in the state database; `acquire()`
    before every request. Thread-safe; use one per process and pair (`company_pacer`)."""

    def __init__(
        self,
        db: StateDB,
        key: BudgetKey,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        grant_size: int = GRANT_SIZE,
    ) -> None:
        self._db = db
        self._key = key
        self._clock = clock
        self._sleep = sleep
        self._grant_size = grant_size
        self._lock = threading.Lock()
        self._granted = 0  # requests reserved from the shared budget, not yet sent
        self._granted_until = 0.0  # when they must be sent by: before the edge of their window
        self._seen = Budget()  # what answers reported since the shared budget was last written

    def acquire(self) -> float:
        """Wait as long as the shared budget requires, then count one request; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            if self._granted > 0 and now < self._granted_until:
                self._granted -= 1
                return 0.0
            with budget_for_update(self._db, self._key) as stored:
                budget = self._updated(stored)
                send_at, taken = budget.take(now, self._grant_size)
                _write(budget, stored)
            self._granted, self._granted_until = taken - 1, budget.grant_ends()
        return wait_until(send_at, now, self._sleep)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Note the budget an answer reports; it is written with the next reservation."""
        reported = Reported.from_headers(headers)
        if reported is None:
            return
        with self._lock:
            self._seen.learn(reported.limit, reported.remaining, self._clock() + reported.reset_s)

    def hold(self, seconds: float) -> None:
        """Hold every request of every process for `seconds` (a 429's Retry-After), starting now."""
        with self._lock:
            self._granted = 0
            until = self._clock() + seconds
            with budget_for_update(self._db, self._key) as stored:
                budget = self._updated(stored)
                budget.hold(until)
                _write(budget, stored)

    def _updated(self, stored: StoredBudget) -> Budget:
        """The shared budget, with what this process's answers reported since it last wrote it."""
        budget = Budget(
            stored.request_limit, stored.remaining, _seconds(stored.reset_at),
            _seconds(stored.next_slot) or 0.0, _seconds(stored.hold_until) or 0.0, stored.unreported,
        )
        seen, self._seen = self._seen, Budget()
        if seen.remaining is not None and seen.reset_at is not None:
            budget.learn(seen.limit, seen.remaining, seen.reset_at)
        return budget


def _write(budget: Budget, stored: StoredBudget) -> None:
    stored.request_limit, stored.remaining = budget.limit, budget.remaining
    stored.reset_at = _moment(budget.reset_at)
    stored.next_slot = _moment(budget.next_slot or None)
    stored.hold_until = _moment(budget.hold_until or None)
    stored.unreported = budget.unreported


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


_pacers: dict[tuple[BudgetKey, str | None], RequestPacer] = {}
_pacers_lock = threading.Lock()


def company_pacer(company: CompanySettings, db: StateDB | None = None) -> RequestPacer:
    """The one pacer of the company's (company, client) pair in this process, shared by all its clients.

    With a state database it is a `SharedPacer`, so that every process reading the company through
    that database keeps to one budget; without one, a `Pacer` that keeps the budget in this process.
    """
    key = BudgetKey(company.api_url.rstrip("/"), company.tenant_id, company.client_id)
    where = None if db is None else db.safe_url
    with _pacers_lock:
        if (key, where) not in _pacers:
            _pacers[(key, where)] = Pacer() if db is None else SharedPacer(db, key)
        return _pacers[(key, where)]
