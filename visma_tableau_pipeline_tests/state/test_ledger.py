"""The audit ledger: idempotent, ordered history, per-run summaries, last delivered versions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from visma_tableau_pipeline.state import (
    DeliveredKey,
    Delivery,
    LedgerError,
    StateDB,
    deliveries_for_run,
    history,
    last_delivered,
    record_deliveries,
    run_summary,
)

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
FIRST = Delivery("acme", "supplier_invoices", "Invoice|000123", "h1", "ap_invoices", "insert",
                 "run-1", T0)


def record(db: StateDB, deliveries: list[Delivery]) -> None:
    with db.transaction() as conn:
        record_deliveries(conn, deliveries)


def test_recording_the_same_delivery_twice_adds_it_once(db: StateDB) -> None:
    record(db, [FIRST])
    record(db, [FIRST, replace(FIRST, delivered_at=T0 + timedelta(seconds=30))])  # retried commit
    with db.connect() as conn:
        assert deliveries_for_run(conn, "run-1") == [FIRST]


def test_history_tells_when_each_version_reached_tableau(db: StateDB) -> None:
    second = replace(FIRST, content_hash="h2", action="update", run_id="run-2",
                     delivered_at=T0 + timedelta(days=1))
    deleted = replace(second, action="delete", run_id="run-3", delivered_at=T0 + timedelta(days=2))
    other_company = replace(FIRST, company_id="beta")
    record(db, [deleted, FIRST, other_company, second])

    with db.connect() as conn:
        assert history(conn, "acme", ("Invoice", "000123"), "ap_invoices") == [FIRST, second, deleted]
        assert len(history(conn, None, ("Invoice", "000123"))) == 4
        assert history(conn, "acme", ("Invoice", "nothing")) == []


def test_history_of_a_record_holds_its_lines_and_aging_rows_and_nothing_else(db: StateDB) -> None:
    keys = {"acme|Invoice|000123": True, "acme|Invoice|000123|2": True,
            "acme|2025-03-31|daily|Invoice|000123": True, "acme|Invoice|0001234": False,
            "acme|Invoice|X000123": False, "acme|CreditNote|000123": False, "acme|Invoice|00012%": False}
    record(db, [replace(FIRST, record_key=key, content_hash=key) for key in keys])
    with db.connect() as conn:
        found = {delivery.record_key for delivery in history(conn, "acme", ("Invoice", "000123"))}
        assert found == {key for key, wanted in keys.items() if wanted}
        assert [d.record_key for d in history(conn, "acme", ("Invoice", "00012%"))] == ["acme|Invoice|00012%"]


def test_run_summary_counts_by_data_source_and_action(db: StateDB) -> None:
    record(db, [
        FIRST,
        replace(FIRST, record_key="Invoice|2"),
        replace(FIRST, record_key="Invoice|3", action="update"),
        replace(FIRST, data_source="ap_invoice_lines"),
        replace(FIRST, run_id="run-2"),
    ])
    with db.connect() as conn:
        assert run_summary(conn, "run-1") == {
            "ap_invoices": {"insert": 2, "update": 1},
            "ap_invoice_lines": {"insert": 1},
        }
        assert run_summary(conn, "run-none") == {}


def test_last_delivered_gives_each_records_latest_version_in_a_data_source(db: StateDB) -> None:
    gone = replace(FIRST, record_key="Invoice|2")
    record(db, [
        FIRST,
        replace(FIRST, content_hash="h2", action="update", run_id="run-2",
                delivered_at=T0 + timedelta(hours=1)),
        gone,
        replace(gone, action="delete", run_id="run-2", delivered_at=T0 + timedelta(hours=1)),
        replace(FIRST, company_id="beta", content_hash="b1"),
        replace(FIRST, data_source="ap_invoice_lines", content_hash="x"),
    ])
    with db.connect() as conn:
        assert last_delivered(conn, "ap_invoices") == {
            DeliveredKey("acme", "supplier_invoices", "Invoice|000123"): "h2",
            DeliveredKey("beta", "supplier_invoices", "Invoice|000123"): "b1",
        }
        assert list(last_delivered(conn, "ap_invoices", company_id="beta").values()) == ["b1"]


def test_an_unknown_action_is_refused(db: StateDB) -> None:
    with pytest.raises(LedgerError, match="unknown delivery action 'upsert'"):
        record(db, [replace(FIRST, action="upsert")])  # type: ignore[arg-type]
