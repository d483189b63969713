"""Every record, once, incrementally: the pipeline's sync against the Visma sandbox over HTTP.

The truth is the sandbox's own record set; the state store must hold exactly that, by key and
content, after a full sync, after changes and an incremental sync, and with faults injected.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import SecretStr

from visma_tableau_pipeline.sandbox.visma.faults import FaultPlan
from visma_tableau_pipeline.state import StateDB, count, iter_records, key_string
from visma_tableau_pipeline.visma.catalogue import ENTITIES, record_key
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.errors import VismaAuthError, VismaServerError, VismaTenantError
from visma_tableau_pipeline.visma.plan import sync_all
from visma_tableau_pipeline.visma.retrying import RetryPolicy
from visma_tableau_pipeline_tests.pipeline.conftest import TODAY

FAST_RETRIES = RetryPolicy(max_attempts=8, max_seconds=60, backoff_initial=0.01, backoff_max=0.05)
VOLATILE = ("metadata", "timeStamp")


def fast_client(company):
    return VismaClient(company, retry_policy=FAST_RETRIES, max_concurrency=3)


def _canonical(value):
    """A record without the fields the store drops (paging metadata, ETags), as comparable JSON."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _dump(record) -> str:
    return json.dumps(_canonical(record), sort_keys=True, default=str)


def truth(sandbox, company_id: str, entity) -> dict[str, str]:
    return {key_string(record_key(entity, r)): _dump(r) for r in sandbox.records(company_id, entity.name)}


def stored(db: StateDB, company_id: str, entity) -> dict[str, str]:
    with db.connect() as conn:
        records = list(iter_records(conn, company_id, entity.name))
    keys = [key_string(record_key(entity, r)) for r in records]
    assert len(keys) == len(set(keys)), f"{entity.name}: a record is stored twice"
    return dict(zip(keys, map(_dump, records)))


def assert_store_equals_sandbox(db, sandbox, companies) -> None:
    for company in companies:
        for entity in ENTITIES:
            expected, actual = truth(sandbox, company.company_id, entity), stored(db, company.company_id, entity)
            missing, extra = expected.keys() - actual.keys(), actual.keys() - expected.keys()
            assert not missing and not extra, f"{company.company_id} {entity.name}: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
            differing = [k for k in expected if expected[k] != actual[k]]
            assert not differing, f"{company.company_id} {entity.name}: content differs for {differing[:5]}"


def sync(settings, companies, db, full=False):
    return sync_all(settings, companies, db, full=full, today=TODAY, client_factory=fast_client)


@pytest.fixture
def state_db(db):
    return db


def test_full_then_incremental_sync_reads_every_record_exactly_once(visma_sandbox, companies, settings, state_db):
    first = sync(settings, companies, state_db)
    assert_store_equals_sandbox(state_db, visma_sandbox, companies)
    assert first.totals()["inserted"] > 500

    no_one, se = companies[0].company_id, companies[1].company_id
    invoice = next(visma_sandbox.records(no_one, "supplier_invoices"))
    changed_key = (invoice["documentType"], invoice["referenceNumber"])
    visma_sandbox.modify(no_one, "supplier_invoices", changed_key)
    created = visma_sandbox.create(se, "customers")
    supplier = next(visma_sandbox.records(se, "suppliers"))
    visma_sandbox.modify(se, "suppliers", (supplier["number"],))

    second = sync(settings, companies, state_db)
    totals = second.totals()
    assert totals["inserted"] == 1 and totals["updated"] == 2, totals
    # GL balances of a period share one timestamp in the sandbox, so `>=` re-reads them; the
    # rest must be read as deltas: the changed records plus the overlap window only.
    def read_without_balances(report):
        return sum(w.records_read for w in report.windows if w.entity not in ("gl_balances", "financial_periods"))
    assert read_without_balances(second) < read_without_balances(first) / 5, "the second sync was not incremental"
    assert_store_equals_sandbox(state_db, visma_sandbox, companies)
    with state_db.connect() as conn:
        assert any(r["number"] == created["number"] for r in iter_records(conn, se, "customers"))

    again = sync(settings, companies, state_db)
    assert again.totals()["inserted"] == 0 and again.totals()["updated"] == 0


def test_deletions_in_visma_are_found_by_a_full_sync(visma_sandbox, companies, settings, state_db):
    sync(settings, companies, state_db)
    company_id = companies[0].company_id
    gone = next(visma_sandbox.records(company_id, "customers"))
    visma_sandbox.delete(company_id, "customers", (gone["number"],))
    with state_db.connect() as conn:
        before = count(conn, company_id, "customers")
    report = sync(settings, companies, state_db, full=True)
    assert report.totals()["deleted"] == 1
    with state_db.connect() as conn:
        assert count(conn, company_id, "customers") == before - 1
    assert_store_equals_sandbox(state_db, visma_sandbox, companies)


def test_faults_do_not_change_the_record_set(visma_sandbox, companies, settings, tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'faults.db'}")
    visma_sandbox.faults = FaultPlan(
        seed=3, error_every=13, error_burst_start=40, error_burst_length=3, drop_every=17,
        throttle_every=23, throttle_retry_after=0, shift_after_page=1, shift_modify=2,
        shift_entity="suppliers",
    )
    first = sync(settings, companies, db)
    assert first.retries > 10 and first.extra_passes >= 1, "the faults were not met"
    visma_sandbox.expire_tokens()  # tokens expire mid-sync: the client renews and goes on
    sync(settings, companies, db)
    assert_store_equals_sandbox(db, visma_sandbox, companies)


def test_amounts_arrive_as_exact_decimals(visma_sandbox, companies, settings, tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    sync(settings, companies[:1], db)
    with db.connect() as conn:
        invoices = list(iter_records(conn, companies[0].company_id, "supplier_invoices"))
    amounts = [i["amount"] for i in invoices if not isinstance(i["amount"], int)]
    assert amounts and all(isinstance(a, Decimal) for a in amounts)
    expected = sum(Decimal(str(r["amount"])) for r in visma_sandbox.records(companies[0].company_id, "supplier_invoices"))
    assert sum(Decimal(i["amount"]) for i in invoices) == expected


def test_a_wrong_secret_says_which_settings_to_check(companies, settings, tmp_path):
    wrong = companies[0].model_copy(update={"client_secret": SecretStr("not-the-secret")})
    with pytest.raises(VismaAuthError) as raised:
        sync_all(settings, [wrong], StateDB(f"sqlite:///{tmp_path / 's.db'}"), today=TODAY)
    assert "not-the-secret" not in str(raised.value)
    assert "VISMA_CLIENT_SECRET" in str(raised.value) or "client_secret" in str(raised.value)


def test_the_customer_tenant_id_gives_the_tenant_hint(companies, settings, tmp_path):
    from visma_tableau_pipeline.sandbox.visma.companies import CUSTOMER_TENANT_ID

    wrong = companies[0].model_copy(update={"tenant_id": CUSTOMER_TENANT_ID})
    with pytest.raises(VismaTenantError) as raised:
        sync_all(settings, [wrong], StateDB(f"sqlite:///{tmp_path / 's.db'}"), today=TODAY)
    assert "company tenant id" in str(raised.value)


def test_a_crash_mid_sync_keeps_the_previous_watermark(visma_sandbox, companies, settings, tmp_path):
    from visma_tableau_pipeline.state import get_watermark

    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    sync(settings, companies[:1], db)
    company_id = companies[0].company_id
    with db.connect() as conn:
        before = get_watermark(conn, company_id, "suppliers")
    supplier = next(visma_sandbox.records(company_id, "suppliers"))
    visma_sandbox.modify(company_id, "suppliers", (supplier["number"],))
    visma_sandbox.faults = FaultPlan(error_every=1)  # Visma fails every request from now on
    quick = RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.01)
    with pytest.raises(VismaServerError):
        sync_all(settings, companies[:1], db, today=TODAY,
                 client_factory=lambda c: VismaClient(c, retry_policy=quick))
    with db.connect() as conn:
        assert get_watermark(conn, company_id, "suppliers") == before
    visma_sandbox.faults = FaultPlan()
    sync(settings, companies[:1], db)
    assert_store_equals_sandbox(db, visma_sandbox, companies[:1])
