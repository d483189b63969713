"""The Visma.net ERP sandbox: the demo companies' data, mutations, and the settings of a run.

    with VismaSandbox(size=DemoSize(supplier_invoices=500), seed=7) as sandbox:
        url = sandbox.base_url            # point the client at url and f"{url}/connect/token"
        sandbox.modify("nordic-no", "supplier_invoices", ("Invoice", "000042"))
        sandbox.close_period("nordic-no", "202610", ["GL"])  # closedInGeneralLedger: true
        truth = list(sandbox.records("nordic-no", "supplier_invoices"))
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any

from visma_tableau_pipeline.sandbox.server import ServerThread
from visma_tableau_pipeline.sandbox.visma.auth import Client, TokenIssuer
from visma_tableau_pipeline.sandbox.visma.calendar import SandboxClock
from visma_tableau_pipeline.sandbox.visma.companies import (
    CUSTOMER_TENANT_ID,
    PROFILES,
    CompanyProfile,
    client_profiles,
)
from visma_tableau_pipeline.sandbox.visma.documents import cents, figures_of
from visma_tableau_pipeline.sandbox.visma.endpoints import EntityInfo, endpoints, entity_infos
from visma_tableau_pipeline.sandbox.visma.faults import FaultPlan, FaultState
from visma_tableau_pipeline.sandbox.visma.ledger import (
    DocumentPostings,
    JournalSource,
    PaymentPostings,
    apply_batches,
    balance_source,
    base_totals,
)
from visma_tableau_pipeline.sandbox.visma.masters import FinancialPeriodSource
from visma_tableau_pipeline.sandbox.visma.postings import Posting, reversal
from visma_tableau_pipeline.sandbox.visma.ratelimit import RateLimiter
from visma_tableau_pipeline.sandbox.visma.size import CLIENT_COMPANY_SIZE, DemoSize
from visma_tableau_pipeline.sandbox.visma.store import EntityStore, Query, RecordNotFound
from visma_tableau_pipeline.sandbox.visma.webhooks import WebhookNotifier
from visma_tableau_pipeline.sandbox.visma.wire import clean, timestamp
from visma_tableau_pipeline.sandbox.visma.world import build_world
from visma_tableau_pipeline.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from visma_tableau_pipeline.visma.catalogue import key_values
from visma_tableau_pipeline.visma.periods import CLOSE_FLAGS

_GL_BALANCE_KEY = ("branch.number", "ledger.id", "balanceType", "financialPeriod", "account.number", "subAccountCd")


class UnknownCompany(KeyError):
    """No demo company has this id."""


# the payments of each subledger's documents
PAYMENTS_OF = {"supplier_invoices": "supplier_payments", "customer_invoices": "customer_payments",
               "customer_credit_notes": "customer_payments"}


class CompanyData:
    """One company's stores. GL balances are recomputed from the journal when it changes.

    Mutations of subledger documents post to the GL as Visma would, so that the subledgers keep
    reconciling to their control accounts: a created document posts its batch; a lower balance
    (a document paid, the default `modify`) makes a payment of the difference and posts it; a
    deleted document is reversed in its own period together with its generated payment (the
    payment leaves the payments list). Not posted: changes to a document's amounts or lines, and
    payments created, changed or deleted directly (tests inject GL differences that way, or
    through journal batches).
    """

    def __init__(self, profile: CompanyProfile, size: DemoSize, seed: int, infos: Mapping[str, EntityInfo]) -> None:
        self.profile = profile
        self.ctx, self.masters, sources = build_world(profile, size, seed)
        self.stores = {name: EntityStore(source, infos[name].key, infos[name].modified_field)
                       for name, source in sources.items()}
        self._gl_totals: dict | None = None
        self._gl_store: EntityStore | None = None
        self._gl_version = -1
        self._gl_lock = threading.Lock()
        journal = self.stores["journal_transactions"].source
        assert isinstance(journal, JournalSource)
        self.journal = journal
        self.document_postings = {s.documents.entity_name: s for s in journal.streams if isinstance(s, DocumentPostings)}
        self.payment_postings = {s.payments.entity_name: s for s in journal.streams if isinstance(s, PaymentPostings)}

    def post(self, posting: Posting, now_ms: int) -> dict:
        """Add `posting` to the journal as a new batch, modified now."""
        store = self.stores["journal_transactions"]
        with store.lock:
            index = len(self.journal) + store.created
            store.created += 1
            return store.create(self.journal.render_batch(index, posting, now_ms), now_ms)

    def _document_posting(self, entity_name: str, document: dict) -> Posting:
        return self.document_postings[entity_name].post(figures_of(document), _day(document))

    def posted_creation(self, entity_name: str, document: dict, now_ms: int) -> None:
        if entity_name in self.document_postings:
            self.post(self._document_posting(entity_name, document), now_ms)

    def posted_change(self, entity_name: str, before: dict, after: dict, now_ms: int) -> None:
        """A subledger document whose balance went down was paid that much: a payment, posted."""
        if entity_name not in self.document_postings or cents(after["balance"]) >= cents(before["balance"]):
            return
        postings = self.payment_postings[PAYMENTS_OF[entity_name]]
        store = self.stores[PAYMENTS_OF[entity_name]]
        with store.lock:
            index = len(store.source) + store.created
            store.created += 1
            payment = store.create(postings.payments.payment(
                index, before, cents(before["balance"]) - cents(after["balance"]), when_ms=now_ms), now_ms)
        cleared = cents(before["balanceInCurrency"]) - cents(after["balanceInCurrency"])
        self.post(postings.of(payment, figures_of(before), cleared), now_ms)

    def posted_deletion(self, entity_name: str, document: dict, index: int | None, now_ms: int) -> None:
        """Reverse a deleted document's batch, and its generated payment with the payment's batch."""
        if entity_name not in self.document_postings:
            return
        self.post(reversal(self._document_posting(entity_name, document)), now_ms)
        postings = self.payment_postings[PAYMENTS_OF[entity_name]]
        documents = self.document_postings[entity_name].documents
        payment = None if index is None else postings.payments.settlements.payment_of(documents, index)
        if payment is not None:
            self.post(reversal(postings.posting(payment)), now_ms)
            record = postings.payments.build(payment)
            self.stores[PAYMENTS_OF[entity_name]].delete(key_values(self.stores[PAYMENTS_OF[entity_name]].key_fields, record), now_ms)

    def store(self, entity_name: str) -> EntityStore:
        if entity_name == "gl_balances":
            return self._balances()
        try:
            return self.stores[entity_name]
        except KeyError:
            raise KeyError(f"unknown entity {entity_name!r}; known: {', '.join([*self.stores, 'gl_balances'])}") from None

    def _balances(self) -> EntityStore:
        journal = self.stores["journal_transactions"]
        with self._gl_lock:
            if self._gl_store is None or self._gl_version != journal.version:
                with journal.lock:
                    source = journal.source
                    assert isinstance(source, JournalSource)
                    if self._gl_totals is None:
                        self._gl_totals = base_totals(source)
                    totals = {key: list(value) for key, value in self._gl_totals.items()}
                    removed = (clean(source.build(index)) for index in journal.hidden)
                    apply_batches(totals, removed, -1, journal.mutated_ms)
                    apply_batches(totals, journal.overlay.values(), 1, journal.mutated_ms)
                    self._gl_version = journal.version
                self._gl_store = EntityStore(balance_source(self.ctx, self.masters, totals), _GL_BALANCE_KEY)
            return self._gl_store


def _day(document: dict) -> int:
    """The date ordinal of a subledger document's date."""
    text = document.get("date") or document["documentDate"]
    return date.fromisoformat(str(text)[:10]).toordinal()


def default_changes(record: dict) -> dict:
    """What `modify` changes when told nothing: an open document gets paid, anything else
    gets its description (or name) edited."""
    if record.get("status") == "Open" and "balance" in record:
        changes: dict[str, Any] = {"status": "Closed", "balance": Decimal("0.00")}
        if "balanceInCurrency" in record:
            changes["balanceInCurrency"] = Decimal("0.00")
        return changes
    for field in ("description", "invoiceText", "name", "employeeName"):
        if isinstance(record.get(field), str):
            return {field: record[field] + " (endret)"}
    return {}


class VismaSandbox:
    """A stand-in for Visma.net ERP and Visma Connect with the demo group's data.

    Args:
        size: record counts (a DemoSize, or the number of company 1's supplier invoices).
        seed: makes the data (and every seeded fault) reproducible.
        client_companies: small client companies served besides the demo group (client-001, ...;
            `settings.sandbox_tenant_ids` has their tenants), for benchmarks of many companies.
        client_size: each client company's record counts (a DemoSize, or its supplier invoices).
        token_lifetime: seconds a token lives (`expires_in`).
        rate_limit_per_hour: requests per window for each company and client.
        rate_window_seconds: the window (3600 s like Visma; tests may shorten it).
        faults: the FaultPlan of the run (changeable later through `faults` or the admin API).
        webhook_url, webhook_secret: where change notifications go, and their signing secret.
        max_page_sizes: per-path overrides of the maximum page size, e.g. {"/v1/supplier": 50}.
    """

    def __init__(
        self,
        size: DemoSize | int = DemoSize(),
        seed: int = 0,
        *,
        client_companies: int = 0,
        client_size: DemoSize | int = CLIENT_COMPANY_SIZE,
        token_lifetime: float = 3600.0,
        rate_limit_per_hour: int = 6000,
        rate_window_seconds: int = 3600,
        faults: FaultPlan | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        max_page_sizes: Mapping[str, int] | None = None,
    ) -> None:
        self.size = DemoSize(size) if isinstance(size, int) else size
        self.seed = seed
        self.infos = entity_infos()
        clients = DemoSize(client_size) if isinstance(client_size, int) else client_size
        sized = [(p, self.size) for p in PROFILES] + [(p, clients) for p in client_profiles(client_companies)]
        self.companies = {p.company_id: CompanyData(p, counts, seed, self.infos) for p, counts in sized}
        self.tenants = {p.tenant_id: p.company_id for p, _ in sized}
        self.endpoints = endpoints(dict(max_page_sizes or {}))
        self.clock = SandboxClock()
        self.auth = TokenIssuer(
            {SANDBOX_CLIENT_ID: Client(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
                                       frozenset([*self.tenants, CUSTOMER_TENANT_ID]))},
            self.tenants, token_lifetime)
        self.rate_limiter = RateLimiter(rate_limit_per_hour, rate_window_seconds)
        self.fault_state = FaultState(faults or FaultPlan())
        self.webhooks = WebhookNotifier(webhook_url, webhook_secret, seed)
        self.request_log: Counter[str] = Counter()  # authenticated API calls per company id
        self.throttled: Counter[str] = Counter()  # of them, answered 429, per company id
        self.request_history: deque[tuple[str, str, int]] = deque(maxlen=100_000)  # (company, path?query, status)
        self._server: ServerThread | None = None
        self.base_url: str | None = None
        self._app: Any = None

    # --- running ------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        """The Starlette ASGI app serving this sandbox."""
        if self._app is None:
            from visma_tableau_pipeline.sandbox.visma.app import build_app

            self._app = build_app(self)
        return self._app

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving on a background thread; returns the base URL."""
        self._server = ServerThread(self.app, host, port)
        self.base_url = self._server.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.webhooks.close()

    def __enter__(self) -> VismaSandbox:
        self.serve()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- settings of a run --------------------------------------------------------------

    @property
    def faults(self) -> FaultPlan:
        return self.fault_state.plan

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        """Set a new plan; request numbers count from 1 again."""
        self.fault_state.reset(plan)

    def expire_tokens(self) -> None:
        """Expire every token issued so far, as if their lifetime had passed."""
        self.auth.expire_all()

    def tenant_id(self, company_id: str) -> str:
        return self.company(company_id).profile.tenant_id

    def company(self, company_id: str) -> CompanyData:
        try:
            return self.companies[company_id]
        except KeyError:
            raise UnknownCompany(f"no demo company {company_id!r}; known: {', '.join(self.companies)}") from None

    # --- truth and mutations ------------------------------------------------------------

    def records(self, company_id: str, entity_name: str) -> Iterator[dict]:
        """Every current record of an entity, as the API serves it without `metadata`, in
        serving order (journal batches whole)."""
        return self.company(company_id).store(entity_name).all_records()

    def count(self, company_id: str, entity_name: str) -> int:
        """How many records an entity has now (without generating them)."""
        view, extra = self.company(company_id).store(entity_name).select(Query())
        return view.count + len(extra)

    def modify(self, company_id: str, entity_name: str, key: tuple[str, ...] | str,
               changes: dict | None = None) -> dict:
        """Change a record (by default: pay it, or edit its description) and bump its
        lastModifiedDateTime to the sandbox clock; returns the new record."""
        store = self._mutable_store(company_id, entity_name)
        before = store.current(_key(key))
        now = self.clock.tick()
        record = store.modify(_key(key), changes if changes is not None else default_changes, now)
        self.company(company_id).posted_change(entity_name, before, record, now)
        self._notify(company_id, entity_name, "Update", record, store)
        return record

    def create(self, company_id: str, entity_name: str, record: dict | None = None) -> dict:
        """Add a record: the given one, or the next generated one, dated now."""
        store = self._mutable_store(company_id, entity_name)
        now = self.clock.tick()
        created = store.create(record, now)
        self.company(company_id).posted_creation(entity_name, created, now)
        self._notify(company_id, entity_name, "Create", created, store)
        return created

    def delete(self, company_id: str, entity_name: str, key: tuple[str, ...] | str) -> dict:
        """Hard-delete a record (nothing in lastModifiedDateTime will show it); returns it."""
        store = self._mutable_store(company_id, entity_name)
        now = self.clock.tick()
        generated = store.source.index_of(_key(key))
        record = store.delete(_key(key), now)
        self.company(company_id).posted_deletion(entity_name, record, generated, now)
        self._notify(company_id, entity_name, "Delete", record, store)
        return record

    def close_period(self, company_id: str, period_id: str, modules: Iterable[str] | None = None,
                     *, reopen: bool = False) -> dict:
        """Close (or reopen) a financial period in some modules (CLOSE_FLAGS codes; default
        every module), as a controller does at month end; returns the period's new DTO."""
        store = self.company(company_id).store("financial_periods")
        source = store.source
        assert isinstance(source, FinancialPeriodSource)
        period = source.calendar.by_id.get(period_id)
        if period is None:
            raise RecordNotFound(f"{company_id} has no financial period {period_id!r} (YYYYPP)")
        chosen = [module.upper() for module in modules] if modules else list(CLOSE_FLAGS)
        with store.lock:
            source.closings.set(period, chosen, closed=not reopen)
        return store.current((str(period.year), period.period_id))

    def _mutable_store(self, company_id: str, entity_name: str) -> EntityStore:
        if entity_name == "gl_balances":
            raise ValueError("GL balances follow the journal: mutate journal_transactions instead")
        return self.company(company_id).store(entity_name)

    def _notify(self, company_id: str, entity_name: str, action: str, record: dict, store: EntityStore) -> None:
        resource = self.infos[entity_name].webhook_resource
        if resource is None:
            return
        plan = self.faults
        key = dict(zip(store.key_fields, key_values(store.key_fields, record)))
        self.webhooks.notify(self.tenant_id(company_id), resource, action, key, timestamp(store.mutated_ms),
                             plan.webhook_drop_rate, plan.webhook_duplicate_rate)

    def mutate_page(self, company_id: str, entity_name: str, keys: list[tuple[str, ...]],
                    pick: Callable[[int], int]) -> None:
        """The `shift_after_page` fault: modify and delete some records of a page just served."""
        plan = self.faults
        remaining = list(dict.fromkeys(keys))
        for action, how_many in (("modify", plan.shift_modify), ("delete", plan.shift_delete)):
            for _ in range(min(how_many, len(remaining))):
                key = remaining.pop(pick(len(remaining)))
                (self.modify if action == "modify" else self.delete)(company_id, entity_name, key)


def _key(key: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(str(part) for part in key)
