"""Rebuilding only the rows of changed records gives exactly the full build's rows of them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from visma_tableau_pipeline.delivery import extracts
from visma_tableau_pipeline.delivery.changed_groups import changed_rows, group_key, group_size, stored_records
from visma_tableau_pipeline.delivery.extracts import build_extract, build_table
from visma_tableau_pipeline.delivery.row_changes import row_keys, schema_fingerprint
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.registry import MART_TABLES, build_with, mart_table
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import EnvSettings, build_settings, sandbox_companies
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.state.record_store import keys_for, upsert_records
from visma_tableau_pipeline.visma.catalogue import entity, key_values
from visma_tableau_pipeline.visma.plan import sync_all

TODAY = date(2026, 11, 24)
GROUPED = [table for table in MART_TABLES if table.rows_from]
MUTABLE = ("supplier_invoices", "customer_invoices", "customer_credit_notes", "suppliers",
           "customers", "purchase_orders", "supplier_payments", "customer_payments", "employees",
           "journal_transactions", "time_cards", "purchase_receipts")


class Synced:
    def __init__(self, sandbox: VismaSandbox, home: Path) -> None:
        self.sandbox = sandbox
        self.companies = sandbox_companies(sandbox.base_url)
        self.company_ids = [company.company_id for company in self.companies]
        self.settings = build_settings(EnvSettings(vtp_home=home, _env_file=None))
        self.db = StateDB(f"sqlite:///{home / 'state.db'}")

    def sync(self, full: bool = False) -> None:
        sync_all(self.settings, self.companies, self.db, full=full, today=TODAY)

    def full_rows(self, name: str, groups: frozenset[str]) -> pd.DataFrame:
        table = mart_table(name)
        frame = build_table(self.db, self.company_ids, table, TODAY)
        size = group_size(table)
        keep = [key in groups for key in row_keys(frame, table.key[:size])] if len(frame) else []
        return frame[keep]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    with VismaSandbox(40, seed=11) as sandbox:
        state = Synced(sandbox, tmp_path_factory.mktemp("increments"))
        state.sync(full=True)
        yield state


def _sorted(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    return frame.sort_values(list(key)).reset_index(drop=True)


def test_every_row_belongs_to_the_group_of_a_stored_record(synced: Synced) -> None:
    for table in GROUPED:
        frame = build_table(synced.db, synced.company_ids, table, TODAY)
        with synced.db.connect() as conn:
            groups = {group_key(company_id, key) for company_id in synced.company_ids
                      for name in table.rows_from for key in keys_for(conn, company_id, name)}
        assert len(frame), table.name
        assert set(row_keys(frame, table.key[:group_size(table)])) <= groups, table.name


def test_rows_of_changed_records_equal_the_full_build_of_them(synced: Synced) -> None:
    since = datetime.now(UTC)
    company_id = synced.company_ids[0]
    touched: dict[str, set[str]] = {}
    for name in MUTABLE:
        records = list(synced.sandbox.records(company_id, name))
        fields = entity(name).key
        for record in records[:2]:
            synced.sandbox.modify(company_id, name, tuple(key_values(fields, record)))
        gone = records[3]
        synced.sandbox.delete(company_id, name, tuple(key_values(fields, gone)))
        touched[name] = {key_string(key_values(fields, r)) for r in [*records[:2], gone]}
    synced.sync(full=True)  # a full sync finds the deletions

    for table in GROUPED:
        if table.name == "gl_balances":
            continue  # balances follow the journal; checked as a lookup-free table below
        changed = changed_rows(synced.db, synced.company_ids, table, since, TODAY)
        assert changed is not None, table.name
        expected_groups = {group_key(company_id, key) for name in table.rows_from
                           for key in touched.get(name, ())}
        assert expected_groups <= changed.groups, table.name
        expected = synced.full_rows(table.name, changed.groups)
        assert len(changed.frame) == len(expected), table.name
        pd.testing.assert_frame_equal(_sorted(changed.frame, table.key), _sorted(expected, table.key),
                                      obj=table.name)


def test_a_changed_lookup_means_the_whole_table_is_compared(synced: Synced) -> None:
    since = datetime.now(UTC)
    company_id = synced.company_ids[0]
    account = next(synced.sandbox.records(company_id, "gl_accounts"))
    synced.sandbox.modify(company_id, "gl_accounts", tuple(key_values(entity("gl_accounts").key, account)),
                          {"description": "Omdøpt konto"})
    synced.sync()
    assert changed_rows(synced.db, synced.company_ids, mart_table("gl_transactions"), since, TODAY) is None
    suppliers = changed_rows(synced.db, synced.company_ids, mart_table("suppliers"), since, TODAY)
    assert suppliers is not None and suppliers.groups == frozenset() and suppliers.frame.empty


def test_an_extract_is_updated_by_groups_and_equals_a_full_build(synced: Synced, tmp_path: Path) -> None:
    names = ("ap_invoice_lines", "ar_invoices", "gl_transactions", "suppliers")
    for name in names:
        first = build_extract(synced.db, synced.company_ids, mart_table(name), TODAY, tmp_path, "run-1")
        assert first.mode == "built"
    company_id = synced.company_ids[1]
    for entity_name in ("supplier_invoices", "customer_credit_notes", "journal_transactions", "suppliers"):
        records = list(synced.sandbox.records(company_id, entity_name))
        fields = entity(entity_name).key
        synced.sandbox.modify(company_id, entity_name, tuple(key_values(fields, records[0])))
        synced.sandbox.delete(company_id, entity_name, tuple(key_values(fields, records[1])))
    synced.sync(full=True)

    for name in names:
        table = mart_table(name)
        updated = build_extract(synced.db, synced.company_ids, table, TODAY, tmp_path, "run-2")
        assert updated.mode == "updated", (name, updated.reason)
        assert 0 < len(updated.frame) < updated.rows, name
        written = frame_from_hyper(updated.path)
        expected = build_table(synced.db, synced.company_ids, table, TODAY)
        assert updated.rows == len(expected) == len(written), name
        pd.testing.assert_frame_equal(_sorted(written, table.key), _sorted(expected, table.key),
                                      check_dtype=False, obj=name)


def test_no_change_gives_no_rows_with_the_tables_own_columns(synced: Synced) -> None:
    """An empty increment must not look like a schema change (which would compare everything)."""
    since = datetime.now(UTC)
    for table in GROUPED:
        changed = changed_rows(synced.db, synced.company_ids, table, since, TODAY)
        assert changed is not None and changed.frame.empty and not changed.groups, table.name
        full = build_table(synced.db, synced.company_ids, table, TODAY)
        assert schema_fingerprint(changed.frame) == schema_fingerprint(full), table.name


def test_a_table_built_chunk_by_chunk_equals_one_build_of_all_its_records(
    synced: Synced, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extracts, "BUILD_CHUNK", 3)
    chunked = [table for table in MART_TABLES if table.chunked_sources]
    assert {"ap_aging", "ar_aging", "vendor_spend"} <= {table.name for table in chunked}
    for table in chunked:
        with synced.db.connect() as conn:
            records = {name: list(stored_records(conn, synced.company_ids, name)) for name in table.sources}
        assert sum(len(records[name]) for name in table.chunked_sources) > 3, table.name  # several chunks
        whole = build_with(table, MartInputs(records, TODAY))
        chunked = build_table(synced.db, synced.company_ids, table, TODAY)
        pd.testing.assert_frame_equal(_sorted(chunked, table.key), _sorted(whole, table.key))


def test_a_credit_note_both_customer_lists_hold_is_one_row_of_a_table_built_chunk_by_chunk(
    synced: Synced, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/customerinvoice` may list a credit note `/customerCreditNote` lists too: one document."""
    monkeypatch.setattr(extracts, "BUILD_CHUNK", 3)
    shutil.copyfile(str(synced.db.url.database), tmp_path / "state.db")
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    company_id = synced.company_ids[0]
    note = next(synced.sandbox.records(company_id, "customer_credit_notes"))
    with db.transaction() as conn:
        upsert_records(conn, company_id, "customer_invoices",
                       [(key_string(key_values(entity("customer_invoices").key, note)), None, None, note)], "twice")
    for name in ("ar_invoices", "ar_aging"):
        table = mart_table(name)
        with db.connect() as conn:
            records = {source: list(stored_records(conn, synced.company_ids, source)) for source in table.sources}
        chunked = build_table(db, synced.company_ids, table, TODAY)
        whole = build_with(table, MartInputs(records, TODAY))
        assert not chunked.duplicated(list(table.key)).any(), name
        pd.testing.assert_frame_equal(_sorted(chunked, table.key), _sorted(whole, table.key), obj=name)
