"""Two machines, one bucket, one state database: what one builds the other updates or publishes.

Each "machine" is its own VTP_HOME (its own extracts folder) with VTP_EXTRACTS_URL naming one
bucket of an S3-compatible server (moto's, over HTTP, through s3fs) and VTP_STATE_URL one state
database. The steps are the ones the Dagster assets take in separate runs: a table's build
(`build_extract` with the store) and a data source's publish (`publish_extract` with the store).
"""

from __future__ import annotations

import shutil

import pytest

from visma_tableau_pipeline.delivery.extract_store import ExtractStore, extract_store, local_sha256
from visma_tableau_pipeline.delivery.extracts import build_extract
from visma_tableau_pipeline.demo import tableau_sandbox_settings
from visma_tableau_pipeline.marts.hyper import hyper_path
from visma_tableau_pipeline.marts.registry import MART_TABLES, mart_table
from visma_tableau_pipeline.pipeline import publish_extracts, run_pipeline
from visma_tableau_pipeline.settings import EnvSettings, Settings, build_settings
from visma_tableau_pipeline.state import StateDB
from visma_tableau_pipeline.state.delivered import get_cursor
from visma_tableau_pipeline.visma.plan import sync_all
from visma_tableau_pipeline_tests.pipeline.conftest import TODAY
from visma_tableau_pipeline_tests.pipeline.test_publish import (
    assert_tableau_equals_extract,
    hyper_totals,
    visma_ap_totals,
)


@pytest.fixture
def machines(tmp_path, s3, s3_bucket, tableau) -> tuple[Settings, Settings]:
    """Machine A and machine B: their own folders, the bucket and the state database shared,
    both able to publish to the Tableau sandbox."""

    def machine(name: str) -> Settings:
        settings = build_settings(EnvSettings(
            vtp_home=tmp_path / name, vtp_state_url=f"sqlite:///{tmp_path / 'state.db'}",
            vtp_extracts_url=f"s3://{s3_bucket}/extracts", vtp_extracts_endpoint_url=s3.endpoint, _env_file=None))
        return settings.model_copy(update={"tableau": tableau_sandbox_settings(tableau)})

    return machine("a"), machine("b")


def store_of(settings: Settings) -> ExtractStore:
    store = extract_store(settings)
    assert store is not None
    return store


def change_two_invoices(visma_sandbox, company_id: str) -> None:
    for invoice in list(visma_sandbox.records(company_id, "supplier_invoices"))[:2]:
        visma_sandbox.modify(company_id, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))


def build_on(machine: Settings, companies, run_id: str, tables=MART_TABLES) -> dict:
    """What a machine's table assets do after the entity assets read Visma: the tables built."""
    db = StateDB(machine.state_url)
    sync_all(machine, companies, db, today=TODAY, open_periods_in_full=True)
    return {table.name: build_extract(db, [c.company_id for c in companies], table, TODAY, machine.extracts_dir,
                                      run_id, store=store_of(machine)) for table in tables}


def publish_on(machine: Settings, companies, run_id: str) -> dict:
    """What a machine's Tableau assets do: every data source brought up to its shared extract."""
    deliveries, _ = publish_extracts(machine, StateDB(machine.state_url), [c.company_id for c in companies], TODAY,
                                     run_id, store=store_of(machine))
    return {name: delivery.mode for name, delivery in deliveries.items()}


def test_one_machine_builds_another_publishes_and_then_the_other_way_round(visma_sandbox, companies, machines, tableau):
    a, b = machines
    # A syncs and builds every table (no Tableau on this run): each extract is shared
    run_pipeline(a.model_copy(update={"tableau": None}), companies=companies, as_of=TODAY)
    assert all(store_of(a).current(table.name) is not None for table in MART_TABLES)

    # B, with an empty folder, publishes them: Tableau holds Visma's records to the cent
    assert not b.extracts_dir.exists()
    assert set(publish_on(b, companies, "run-b-publishes").values()) == {"create"}
    assert hyper_totals(tableau.datasource_path("ap_invoices"), "amount_doc_currency") == visma_ap_totals(visma_sandbox, companies)
    for table in MART_TABLES:
        assert_tableau_equals_extract(tableau, a, table.name, table.key)

    # a change in Visma; B, on a fresh folder, updates the shared extract by the changed records
    change_two_invoices(visma_sandbox, companies[0].company_id)
    shutil.rmtree(b.extracts_dir)
    built = build_on(b, companies, "run-b-builds")
    assert built["ap_invoices"].mode == "updated"
    assert store_of(b).current("ap_invoices").run_id == "run-b-builds"

    # A publishes B's update: the changed rows only, where the table allows it
    published = publish_on(a, companies, "run-a-publishes")
    assert published["ap_invoices"] == "incremental" and published["suppliers"] == "unchanged"
    assert hyper_totals(tableau.datasource_path("ap_invoices"), "amount_doc_currency") == visma_ap_totals(visma_sandbox, companies)
    for table in MART_TABLES:
        assert_tableau_equals_extract(tableau, b, table.name, table.key)
    # an extract A sent whole (today's aging snapshot) is the one B built, pulled
    assert local_sha256(hyper_path(a.extracts_dir, "ap_aging")) == store_of(a).current("ap_aging").sha256


def test_a_crash_between_writing_and_sharing_loses_nothing(visma_sandbox, companies, machines, tableau, monkeypatch):
    a, b = machines
    run_pipeline(a, companies=companies, as_of=TODAY)  # built, shared and published
    table = mart_table("ap_invoices")
    shared_before = store_of(a).current(table.name)
    db = StateDB(a.state_url)
    with db.connect() as conn:
        assert get_cursor(conn, table.name, "extract") == shared_before.built_up_to

    change_two_invoices(visma_sandbox, companies[0].company_id)

    def crash(*args, **kwargs):
        raise RuntimeError("the machine died after writing the extract, before sharing it")

    with monkeypatch.context() as patched:
        patched.setattr(ExtractStore, "push", crash)
        with pytest.raises(RuntimeError):
            build_on(b, companies, "run-b-crashes", [table])
    # B's folder has the update; the shared copy and the moment noted are as they were
    written = local_sha256(hyper_path(b.extracts_dir, table.name))
    assert written is not None and written != shared_before.sha256
    assert store_of(b).current(table.name) == shared_before
    with db.connect() as conn:
        assert get_cursor(conn, table.name, "extract") == shared_before.built_up_to

    # the next build, on B again: its own unshared file is not trusted, the shared copy is
    # pulled and updated from the moment it covers
    built = build_on(b, companies, "run-b-again")
    assert built[table.name].mode == "updated"
    assert store_of(b).current(table.name).run_id == "run-b-again"
    publish_on(a, companies, "run-a-publishes")
    assert hyper_totals(tableau.datasource_path("ap_invoices"), "amount_doc_currency") == visma_ap_totals(visma_sandbox, companies)
    assert_tableau_equals_extract(tableau, b, table.name, table.key)
