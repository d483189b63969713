"""What pacing through the state database adds to each Visma request, on SQLite and PostgreSQL.

Issue 12: a company's Visma budget is shared by every process that reads it (`SharedPacer`). This
measures the pacer's own work per request (`acquire()` before it, `observe()` of its answer's
headers), against the in-process `Pacer` it replaces, in the three states a window goes through:

- plenty: much of the budget remains; requests are reserved from the shared budget ten at a time;
- low: the remainder is spread over the rest of the window; each request takes its slot in its own
  transaction (the waits themselves are not slept: only the bookkeeping is timed);
- two processes: two pacers with their own connections to one database, in two threads, both in
  the plenty state, so that they contend for the budget's row.

Each line gives microseconds per request (wall clock), and the state database transactions per
request. A Visma request itself takes tens to hundreds of milliseconds.

Then a whole sync: a full read of one sandbox company (small pages, so about 300 requests) into a
fresh state store on each backend, once with the in-process pacer and once with the shared one,
best of `--repeats`. Here the pacer's transactions also wait for the store's own (on SQLite, one
writer at a time). The sandbox runs in this process with no added latency and a limit that never
paces, so its requests are far faster than Visma's: the difference is an upper bound.

    .venv/bin/python benchmarks/shared_pacing.py [--requests N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import CompanySettings, EnvSettings, build_settings, sandbox_companies
from visma_tableau_pipeline.state import StateDB
from visma_tableau_pipeline.state.rate_budgets import BudgetKey
from visma_tableau_pipeline.state.schema import metadata
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.pacing import Pacer, RequestPacer
from visma_tableau_pipeline.visma.plan import sync_all
from visma_tableau_pipeline.visma.shared_pacing import SharedPacer

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
KEY = BudgetKey("https://api.finance.visma.net", "bench-tenant", "bench-client")
WINDOW_S = 3600
SYNC_SIZE = 1000
SMALL_PAGES = {"/v1/supplierInvoice": 100, "/v1/customerinvoice": 100, "/v2/journaltransaction": 100}


def answer(remaining: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": "1000000", "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(WINDOW_S)}


def no_sleep(_seconds: float) -> None:
    """The benchmark times the pacer's bookkeeping, not the waits it asks for."""


def run(pacer: RequestPacer, requests: int, remaining: int) -> None:
    """`requests` requests as the client makes them: acquire, then observe the answer."""
    for sent in range(requests):
        pacer.acquire()
        pacer.observe(answer(remaining - sent - 1))


class Transactions:
    """Counts the transactions begun on the engines of database handles."""

    def __init__(self, *dbs: StateDB) -> None:
        self.count = 0
        for db in dbs:
            event.listen(db.engine, "begin", self._begun)

    def _begun(self, _conn: object) -> None:
        self.count += 1


def timed(label: str, requests: int, work: Callable[[], None], transactions: Transactions | None) -> None:
    before = transactions.count if transactions else 0
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    per_request = (transactions.count - before) / requests if transactions else 0.0
    print(f"{label:36} {seconds / requests * 1e6:8.1f} us/request  {per_request:5.2f} transactions/request")


def measure(url: str, backend: str, requests: int) -> None:
    db = StateDB(url)
    transactions = Transactions(db)
    fresh = iter(range(1_000_000))

    def shared(database: StateDB) -> SharedPacer:
        # a new key each time: every case starts from an empty budget
        key = BudgetKey(KEY.api_url, f"{KEY.tenant_id}-{next(fresh)}", KEY.client_id)
        return SharedPacer(database, key, sleep=no_sleep)

    plenty = 1_000_000
    timed(f"{backend}: shared, plenty remains", requests,
          lambda: run(shared(db), requests, plenty), transactions)
    low = requests  # at most a tenth of the limit remains: every request is spread
    timed(f"{backend}: shared, low remainder", requests,
          lambda: run(shared(db), requests, low), transactions)
    with other_process(url) as other:
        key = BudgetKey(KEY.api_url, "two-processes", KEY.client_id)
        pacers = [SharedPacer(db, key, sleep=no_sleep), SharedPacer(other, key, sleep=no_sleep)]
        timed(f"{backend}: shared, two processes", 2 * requests,
              lambda: in_parallel([lambda p=p: run(p, requests, plenty) for p in pacers]),
              Transactions(db, other))
    db.dispose()


def measure_sync(url: str, backend: str, sandbox: VismaSandbox, repeats: int) -> None:
    """A full sync of one company into an empty store, with each pacer: best seconds of `repeats`."""
    company = sandbox_companies(sandbox.base_url)[0]
    settings = build_settings(EnvSettings(_env_file=None))
    pacers: dict[str, Callable[[StateDB, CompanySettings], RequestPacer]] = {
        "in-process": lambda db, c: Pacer(),
        "shared": lambda db, c: SharedPacer(db, BudgetKey(f"{c.api_url}/{uuid.uuid4()}", c.tenant_id, c.client_id)),
    }
    best: dict[str, float] = {}
    calls = 0
    for _ in range(repeats):
        for name, pacer in pacers.items():
            db = StateDB(url)
            started = time.perf_counter()
            report = sync_all(settings, [company], db, full=True,
                              client_factory=lambda c, db=db, pacer=pacer: VismaClient(c, pacer=pacer(db, c)))
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
            calls = report.api_calls
            metadata.drop_all(db.engine)
            db.dispose()
    added = (best["shared"] - best["in-process"]) / calls * 1000
    print(f"{backend}: full sync, {calls} requests: in-process pacer {best['in-process']:.2f} s, "
          f"shared {best['shared']:.2f} s ({added:+.2f} ms/request)")


@contextmanager
def other_process(url: str) -> Iterator[StateDB]:
    """A second handle on the database, with its own engine, as another process has."""
    db = StateDB(url)
    try:
        yield db
    finally:
        db.dispose()


def in_parallel(works: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=work) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str | None]:
    """A throw-away database on the PostgreSQL server, or None when it is not reachable."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"vtp_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        print(f"postgresql skipped: {admin_url} not reachable ({exc.orig})")
        admin.dispose()
        yield None
        return
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()

    timed("in-process Pacer (before)", args.requests,
          lambda: run(Pacer(sleep=no_sleep), args.requests, 1_000_000), None)
    with tempfile.TemporaryDirectory() as home, postgres_database(args.postgres) as postgres:
        sqlite = f"sqlite:///{Path(home) / 'state.db'}"
        measure(sqlite, "sqlite", args.requests)
        if postgres is not None:
            measure(postgres, "postgresql", args.requests)
        with VismaSandbox(SYNC_SIZE, seed=7, rate_limit_per_hour=100_000_000, max_page_sizes=SMALL_PAGES) as sandbox:
            measure_sync(sqlite, "sqlite", sandbox, args.repeats)
            if postgres is not None:
                measure_sync(postgres, "postgresql", sandbox, args.repeats)


if __name__ == "__main__":
    main()
