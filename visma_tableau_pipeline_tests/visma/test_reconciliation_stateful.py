"""Reconciliation never deletes a record Visma still has: a stateful property test.

Offset paging while Visma changes shifts rows between pages, so a reconciling read can miss a
record that exists (issue 10, point 3). Hypothesis drives the real `VismaClient` over real HTTP
(uvicorn on 127.0.0.1) to a fake Visma (`FakeVisma`), and the real `sync_window` into a real state
store (SQLite), through sequences of these rules:

- change Visma: insert, delete, update (in place, or moving the record to the end of the list as
  a re-sorted list would), reorder;
- a delta sync;
- a full (reconciling) sync while Visma changes between its page requests;
- a quiet full sync.

Pages are small (maxPageSize 3 to 7), so reads take several pages. Invariants, after every sync:
no record that exists in Visma now and was live in the store before the sync is missing from the
store or marked deleted; after a quiet full sync, the store's live records are Visma's, key for
key and field for field.

Suppliers are confirmed by reads by key, purchase orders by a second read of the window, and
`max_key_reads` of 0, 2 or 25 sends suppliers down both paths. Visma changes while the first
pass over the list is read, not during a confirming second read: that read is the confirmation,
and a record that slipped past both would be deleted (the limit of re-reading, visma/sync.py).

Examples: the hypothesis profile named by HYPOTHESIS_PROFILE, `ci` by default (200 examples) or
`long` (2,000), registered in visma_tableau_pipeline_tests/conftest.py:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest visma_tableau_pipeline_tests/visma/test_reconciliation_stateful.py
"""

from __future__ import annotations

import itertools
import ssl
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from visma_tableau_pipeline.sandbox.server import ServerThread
from visma_tableau_pipeline.state import StateDB, iter_records, key_string, keys_for
from visma_tableau_pipeline.visma.catalogue import entity, record_key
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.pacing import Pacer
from visma_tableau_pipeline.visma.sync import sync_window

from .fake_visma import FakeClock, FakeVisma, OverHttp, company

FIRST_MODIFIED = datetime(2024, 3, 1, 10, 0, 0)
# Made once: a new client loads the CA bundle into a fresh TLS context (0.1 s), which was a third
# of the test's time. The fake is served over plain HTTP; the context is never used.
TLS = ssl.create_default_context()
Change = tuple[str, int, int]  # (kind, where, where to)

changes = st.tuples(
    st.sampled_from(["insert", "delete", "update", "update and move", "reorder"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OverHttp, str]]:
    """One real HTTP server for every example; each example puts its own fake Visma behind it."""
    app = OverHttp(lambda request: httpx.Response(503))
    with ServerThread(app) as base_url:
        yield app, base_url


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateDB]:
    """One SQLite state store; each example is a company of its own in it."""
    db = StateDB(f"sqlite:///{Path(tmp_path_factory.mktemp('reconciliation')) / 'state.db'}")
    yield db
    db.dispose()


class ReconcilingSync(RuleBasedStateMachine):
    """Visma's list of one entity, changed by the rules, and the store the syncs keep of it."""

    def __init__(self, app: OverHttp, base_url: str, db: StateDB, company_id: str) -> None:
        super().__init__()
        self.app, self.base_url, self.db, self.company_id = app, base_url, db, company_id
        self.numbers = itertools.count(10000)
        self.hours = itertools.count(1)
        self.runs = itertools.count(1)
        self.during: deque[list[Change]] = deque()  # changes to make before page 2, 3, ... is served
        self.listing = False  # the sync has asked for page 1 once
        self.client: VismaClient | None = None

    @initialize(
        name=st.sampled_from(["suppliers", "purchase_orders"]),
        size=st.integers(0, 12),
        max_page_size=st.integers(3, 7),
        max_key_reads=st.sampled_from([0, 2, 25]),
    )
    def start(self, name: str, size: int, max_page_size: int, max_key_reads: int) -> None:
        self.entity = entity(name)
        self.max_key_reads = max_key_reads
        self.visma: list[dict] = [self._record(next(self.numbers), FIRST_MODIFIED) for _ in range(size)]
        self.fake = FakeVisma(lists={self.entity.path: self.visma}, max_page_size=max_page_size)
        self.app.handle = self._handle
        clock = FakeClock()
        self.client = VismaClient(
            company(api_url=self.base_url, token_url=f"{self.base_url}/connect/token"),
            transport=httpx.HTTPTransport(verify=TLS), max_concurrency=1, pacer=Pacer(clock=clock, sleep=clock.sleep), clock=clock, sleep=clock.sleep,
        )

    def teardown(self) -> None:
        if self.client is not None:
            self.client.close()

    # -- Visma ------------------------------------------------------------------------------

    def _record(self, number: int, modified: datetime) -> dict:
        stamp = modified.strftime("%Y-%m-%dT%H:%M:%S")
        if self.entity.name == "suppliers":
            return {"number": str(number), "name": f"Supplier {number}", "lastModifiedDateTime": stamp}
        return {"orderType": "RegularOrder", "orderNbr": str(number), "description": f"Order {number}",
                "lastModifiedDateTime": stamp}

    def _edited(self, record: dict) -> dict:
        modified = FIRST_MODIFIED + timedelta(hours=next(self.hours))
        text_field = "name" if self.entity.name == "suppliers" else "description"
        return {**record, text_field: f"{record[text_field]}, edited at {modified:%H}h",
                "lastModifiedDateTime": modified.strftime("%Y-%m-%dT%H:%M:%S")}

    def _change(self, change: Change) -> None:
        kind, where, where_to = change
        if kind == "insert":
            modified = FIRST_MODIFIED + timedelta(hours=next(self.hours))
            self.visma.insert(where % (len(self.visma) + 1), self._record(next(self.numbers), modified))
            return
        if not self.visma:
            return
        index = where % len(self.visma)
        if kind == "delete":
            del self.visma[index]
        elif kind == "update":
            self.visma[index] = self._edited(self.visma[index])
        elif kind == "update and move":
            self.visma.append(self._edited(self.visma.pop(index)))
        else:
            record = self.visma.pop(index)
            self.visma.insert(where_to % (len(self.visma) + 1), record)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        """Visma between page requests: the planned changes, one batch before each later page.

        Only during the sync's first pass over the list: a second request for page 1 (another
        pass, or the confirming second read) ends them.
        """
        if request.url.path == self.entity.path:
            if request.url.params.get("pageNumber") == "1":
                if self.listing:
                    self.during.clear()
                self.listing = True
            elif self.during:
                for change in self.during.popleft():
                    self._change(change)
        return self.fake.handle(request)

    # -- the store --------------------------------------------------------------------------

    def _live(self) -> dict[str, dict]:
        with self.db.connect() as conn:
            return {
                key_string(record_key(self.entity, record)): record
                for record in iter_records(conn, self.company_id, self.entity.name)
            }

    def _sync(self, *, full: bool, during: list[list[Change]]) -> None:
        with self.db.connect() as conn:
            before = keys_for(conn, self.company_id, self.entity.name)
        self.during, self.listing = deque(during), False
        assert self.client is not None
        result = sync_window(
            self.client, self.db, self.entity, company_id=self.company_id, run_id=f"run-{next(self.runs)}",
            full=full, max_key_reads=self.max_key_reads,
        )
        self.during.clear()
        in_visma = {key_string(record_key(self.entity, record)) for record in self.visma}
        lost = (in_visma & before) - set(self._live())
        assert not lost, f"records Visma still has were deleted or lost: {sorted(lost)}"
        assert result.deleted <= result.missed

    # -- rules ------------------------------------------------------------------------------

    @rule(made=st.lists(changes, min_size=1, max_size=3))
    def change_visma(self, made: list[Change]) -> None:
        for change in made:
            self._change(change)

    @rule()
    def delta_sync(self) -> None:
        self._sync(full=False, during=[])

    @rule(during=st.lists(st.lists(changes, min_size=1, max_size=2), min_size=1, max_size=4))
    def full_sync_while_visma_changes(self, during: list[list[Change]]) -> None:
        self._sync(full=True, during=during)

    @rule()
    def quiet_full_sync(self) -> None:
        self._sync(full=True, during=[])
        assert self._live() == {key_string(record_key(self.entity, record)): record for record in self.visma}


def test_reconciliation_never_deletes_a_record_visma_still_has(
    served: tuple[OverHttp, str], store: StateDB
) -> None:
    app, base_url = served
    examples = itertools.count(1)
    run_state_machine_as_test(lambda: ReconcilingSync(app, base_url, store, f"example-{next(examples)}"))
