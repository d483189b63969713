"""Extracts kept up to date run after run equal a whole build from the records, whatever changed.

A run skips a table nothing of which changed, updates the tables built per record by the records
that changed, and derives the aging snapshots, vendor spend, cash flow and the period close from
the extracts of the document, line, payment, payment line and GL balance tables. Random change
sets (payments, new documents, deletions) over several days check that after every run each
extract holds exactly what a whole build from the records would.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from visma_tableau_pipeline.delivery.extracts import SNAPSHOT_COLUMN, build_extract, build_table
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.visma.catalogue import entity, key_values
from visma_tableau_pipeline.visma.plan import sync_all
from visma_tableau_pipeline_tests.delivery.test_changed_groups import Synced

FIRST_DAY = date(2026, 11, 24)
DERIVED = [table for table in MART_TABLES if table.from_extracts]
DOCUMENTS = ("supplier_invoices", "customer_invoices", "customer_credit_notes", "supplier_payments",
             "customer_payments")


class Books(Synced):
    """The sandbox synced into a state store, and every table's extract kept run after run."""

    def __init__(self, sandbox: VismaSandbox, home: Path) -> None:
        super().__init__(sandbox, home)
        self.extracts = home / "extracts"
        self.runs = 0

    def run(self, day: date) -> dict[str, str]:
        """One run as `vtp sync` makes it: sync, then every table in order; mode per table."""
        self.runs += 1
        sync_all(self.settings, self.companies, self.db, full=True, today=day)
        return {table.name: build_extract(self.db, self.company_ids, table, day, self.extracts,
                                          f"run-{self.runs}").mode
                for table in MART_TABLES}

    def change_randomly(self, rng: random.Random) -> None:
        """Pay, add and delete a few documents and payments of a random company."""
        company_id = rng.choice(self.company_ids)
        for name in rng.sample(DOCUMENTS, 3):
            records = list(self.sandbox.records(company_id, name))
            fields = entity(name).key
            for record in rng.sample(records, min(2, len(records))):
                self.sandbox.modify(company_id, name, tuple(key_values(fields, record)))
            if "payments" not in name and rng.random() < 0.5:  # a payment is made by paying a document
                self.sandbox.create(company_id, name)
            if records and rng.random() < 0.5:
                self.sandbox.delete(company_id, name, tuple(key_values(fields, rng.choice(records))))


def _sorted(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    return frame.sort_values(list(key)).reset_index(drop=True)


def _assert_extract_equals_whole_build(books: Books, table: MartTable, day: date) -> None:
    written = frame_from_hyper(books.extracts / f"{table.name}.hyper")
    whole = build_table(books.db, books.company_ids, table, day)
    if table.partition_column == SNAPSHOT_COLUMN:  # the day's snapshot; earlier days are history
        written = written[pd.to_datetime(written[SNAPSHOT_COLUMN]).dt.date == day]
    assert len(written) == len(whole), table.name
    pd.testing.assert_frame_equal(_sorted(written[list(whole.columns)], table.key), _sorted(whole, table.key),
                                  check_dtype=False, obj=table.name)


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Books]:
    with VismaSandbox(60, seed=5) as sandbox:
        yield Books(sandbox, tmp_path_factory.mktemp("books"))


def test_every_extract_equals_a_whole_build_after_random_changes_over_several_days(
    books: Books, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(12)
    books.run(FIRST_DAY)
    days = [FIRST_DAY, FIRST_DAY, FIRST_DAY + timedelta(days=1), FIRST_DAY + timedelta(days=3)]
    for day in days:
        books.change_randomly(rng)
        with caplog.at_level(logging.INFO, logger="visma_tableau_pipeline.delivery.extracts"):
            books.run(day)
        for table in MART_TABLES:
            _assert_extract_equals_whole_build(books, table, day)
    assert "building from the records" not in caplog.text  # derived tables came from the extracts


def test_a_run_with_nothing_changed_rebuilds_nothing_but_a_new_days_snapshots(books: Books) -> None:
    day = FIRST_DAY + timedelta(days=5)
    books.run(day)
    books.run(day)  # may update again what was written just before the first build (`settled_moment`)
    same_day = books.run(day)
    assert set(same_day.values()) == {"unchanged"}, same_day
    next_day = books.run(day + timedelta(days=1))
    rebuilt = {name for name, mode in next_day.items() if mode != "unchanged"}
    assert rebuilt == {table.name for table in MART_TABLES if table.reads_as_of}
    for table in MART_TABLES:
        _assert_extract_equals_whole_build(books, table, day + timedelta(days=1))


def test_derived_tables_built_before_the_tables_they_read_still_equal_a_whole_build(
    books: Books, caplog: pytest.LogCaptureFixture
) -> None:
    """In Dagster a derived table (aging, spend, cash flow, the close) may run before the tables it
    reads caught up with a change."""
    day = FIRST_DAY + timedelta(days=9)
    books.run(day)
    books.change_randomly(random.Random(3))
    books.change_randomly(random.Random(4))
    sync_all(books.settings, books.companies, books.db, full=True, today=day)
    with caplog.at_level(logging.INFO, logger="visma_tableau_pipeline.delivery.extracts"):
        for table in DERIVED:
            assert build_extract(books.db, books.company_ids, table, day, books.extracts, "derived").mode == "built"
            _assert_extract_equals_whole_build(books, table, day)
    assert "building from the records" not in caplog.text
