"""Visma to Tableau through both sandboxes over HTTP: exact to the cent, incremental, on the ledger.

The Tableau sandbox keeps real .hyper files; these tests query them through the Hyper engine and
compare with the Visma sandbox's own records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tableauhyperapi import Connection, HyperProcess, Telemetry

import visma_tableau_pipeline.delivery.publish as audited
from visma_tableau_pipeline.delivery.row_changes import row_keys_and_hashes
from visma_tableau_pipeline.demo import tableau_sandbox_settings
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.marts.signs import AP_NEGATIVE_DOCUMENT_TYPES
from visma_tableau_pipeline.pipeline import PipelineOutcome, run_pipeline
from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import CompanySettings, Settings, sandbox_companies
from visma_tableau_pipeline.state import StateDB, last_delivered, run_summary
from visma_tableau_pipeline.visma.plan import sync_all
from visma_tableau_pipeline_tests.pipeline.conftest import TODAY, settings_in, small_paged_sandbox


@pytest.fixture
def both(settings, tableau):
    return settings.model_copy(update={"tableau": tableau_sandbox_settings(tableau)})


@dataclass(frozen=True)
class FirstRun:
    visma: VismaSandbox
    companies: list[CompanySettings]
    settings: Settings
    tableau: TableauSandbox
    outcome: PipelineOutcome


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """One first run over both sandboxes, shared by the tests that only look at what it delivered
    (each test that changes something runs its own)."""
    root = tmp_path_factory.mktemp("first-run")
    tableau = TableauSandbox(root / "tableau")
    with small_paged_sandbox() as visma, tableau.serve():
        settings = settings_in(root).model_copy(update={"tableau": tableau_sandbox_settings(tableau)})
        companies = sandbox_companies(visma.base_url)
        yield FirstRun(visma, companies, settings, tableau,
                       run_pipeline(settings, companies=companies, as_of=TODAY))


def hyper_totals(path: Path, amount_column: str) -> dict[str, tuple[int, Decimal]]:
    """Per company: row count and the sum of a NUMERIC column, computed by the Hyper engine."""
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(path.parent)}) as hyper:
        with Connection(hyper.endpoint, str(path)) as conn:
            rows = conn.execute_list_query(
                f'SELECT company_id, COUNT(*), SUM("{amount_column}") FROM "Extract"."Extract" GROUP BY company_id'
            )
    return {company: (count, Decimal(str(total))) for company, count, total in rows}


def visma_ap_totals(visma, companies) -> dict[str, tuple[int, Decimal]]:
    totals = {}
    for company in companies:
        invoices = list(visma.records(company.company_id, "supplier_invoices"))
        signed = sum(
            (-1 if i["documentType"] in AP_NEGATIVE_DOCUMENT_TYPES else 1) * Decimal(str(i["amount"])) for i in invoices
        )
        totals[company.company_id] = (len(invoices), signed)
    return totals


def visma_gl_debits(visma, companies) -> dict[str, tuple[int, Decimal]]:
    totals = defaultdict(lambda: [0, Decimal(0)])
    for company in companies:
        for batch in visma.records(company.company_id, "journal_transactions"):
            for line in batch["journalTransactionLines"]:
                totals[company.company_id][0] += 1
                totals[company.company_id][1] += Decimal(str(line.get("debitAmount") or 0))
    return {c: (n, s) for c, (n, s) in totals.items()}


def assert_tableau_equals_extract(tableau, settings, name: str, key) -> None:
    published = frame_from_hyper(tableau.datasource_path(name)).sort_values(list(key)).reset_index(drop=True)
    rebuilt = frame_from_hyper(settings.extracts_dir / f"{name}.hyper").sort_values(list(key)).reset_index(drop=True)
    assert published.equals(rebuilt), f"{name}: Tableau differs from a full rebuild"


def test_tableau_holds_exactly_the_visma_records_to_the_cent(first_run):
    outcome, tableau, visma_sandbox, companies = first_run.outcome, first_run.tableau, first_run.visma, first_run.companies
    assert all(what.startswith("create") for what in outcome.published.values())
    ap = hyper_totals(tableau.datasource_path("ap_invoices"), "amount_doc_currency")
    assert ap == visma_ap_totals(visma_sandbox, companies)
    gl = hyper_totals(tableau.datasource_path("gl_transactions"), "debit_amount_doc_currency")
    assert gl == visma_gl_debits(visma_sandbox, companies)
    assert outcome.held == []


def test_three_currencies_with_17_digit_rates_reach_tableau_exactly(first_run):
    """Visma writes rates as doubles (`9.799999999999999`); each arrives as that very double."""
    tableau, visma_sandbox, companies = first_run.tableau, first_run.visma, first_run.companies
    published = frame_from_hyper(tableau.datasource_path("ap_invoices"))
    rates = set()
    for company in companies:
        truth = {i["referenceNumber"]: (i["currencyId"], float(i["exchangeRate"]))
                 for i in visma_sandbox.records(company.company_id, "supplier_invoices")
                 if i["documentType"] == "Invoice"}
        rows = published[(published["company_id"] == company.company_id)
                         & (published["document_type"] == "Invoice")]
        assert dict(zip(rows["reference_number"], zip(rows["currency"], rows["exchange_rate"]))) == truth
        assert len({currency for currency, _ in truth.values()}) == 3
        rates.update(rate for _, rate in truth.values())
    assert any(len(repr(rate).replace(".", "").lstrip("0")) >= 16 for rate in rates)


def test_an_incremental_run_sends_only_changes_and_equals_a_full_rebuild(visma_sandbox, companies, both, tableau):
    run_pipeline(both, companies=companies, as_of=TODAY)
    first_bytes = tableau.bytes_received
    company_id = companies[0].company_id
    invoices = list(visma_sandbox.records(company_id, "supplier_invoices"))[:2]
    for invoice in invoices:
        visma_sandbox.modify(company_id, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))

    second = run_pipeline(both, companies=companies, as_of=TODAY)
    assert second.published["ap_invoices"].startswith("incremental (+2/-0")
    assert second.published["suppliers"].startswith("unchanged")
    assert second.published["ap_aging"].startswith("partition")  # today's snapshot replaced whole
    summary = second.summary().splitlines()
    assert f"  {company_id}: " in "\n".join(summary) and "  ap_invoices incremental (+2/-0, " in "\n".join(summary)
    assert "suppliers" in next(line for line in summary if line.startswith("  unchanged, nothing sent: "))
    assert tableau.bytes_received - first_bytes < first_bytes / 5
    from visma_tableau_pipeline.marts.registry import MART_TABLES

    for table in MART_TABLES:
        assert_tableau_equals_extract(tableau, both, table.name, table.key)
    assert hyper_totals(tableau.datasource_path("ap_invoices"), "amount_doc_currency") == visma_ap_totals(visma_sandbox, companies)

    next_day = run_pipeline(both, companies=companies, as_of=TODAY + timedelta(days=1))
    assert next_day.published["ap_aging"].startswith("partition")
    aging = frame_from_hyper(tableau.datasource_path("ap_aging"))
    assert sorted(aging["snapshot_date"].unique()) == [TODAY, TODAY + timedelta(days=1)]
    assert_tableau_equals_extract(tableau, both, "ap_aging", mart_table("ap_aging").key)


def test_records_deleted_in_visma_leave_tableau_by_their_groups(visma_sandbox, companies, both, tableau):
    run_pipeline(both, companies=companies, as_of=TODAY)
    company_id = companies[0].company_id
    # an unpaid one: deleting a paid document takes its payment along (the sandbox keeps the GL
    # reconciled), which would be a second deletion
    invoice = next(r for r in visma_sandbox.records(company_id, "supplier_invoices") if r["balance"] == r["amount"])
    lines = len(invoice["invoiceLines"])
    visma_sandbox.delete(company_id, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))
    account = next(visma_sandbox.records(company_id, "gl_accounts"))
    visma_sandbox.modify(company_id, "gl_accounts", account["accountCD"], {"description": "Omdøpt konto"})

    second = run_pipeline(both, companies=companies, as_of=TODAY)
    assert second.published["ap_invoices"].startswith("unchanged")  # a delta read cannot see deletions
    # the renamed account changes lines of journals that did not change: the whole table is compared
    assert second.published["gl_transactions"].startswith("incremental (+")
    published = frame_from_hyper(tableau.datasource_path("gl_transactions"))
    renamed = published[published["account_number"] == account["accountCD"]]
    assert len(renamed) and set(renamed["account_description"]) == {"Omdøpt konto"}
    db = StateDB(both.state_url)
    reconciliation = sync_all(both, companies, db, full=True, today=TODAY)
    assert reconciliation.totals()["deleted"] == 1

    third = run_pipeline(both, companies=companies, as_of=TODAY)
    assert third.published["ap_invoices"].startswith("incremental (+0/-1")
    assert third.published["ap_invoice_lines"].startswith(f"incremental (+0/-{lines}")
    with db.connect() as conn:
        summary = run_summary(conn, third.sync.run_id)
    assert summary["ap_invoice_lines"] == {"delete": lines}
    for name in ("ap_invoices", "ap_invoice_lines", "gl_transactions", "gl_accounts"):
        assert_tableau_equals_extract(tableau, both, name, mart_table(name).key)


def test_the_ledger_matches_what_tableau_received(first_run):
    first, tableau = first_run.outcome, first_run.tableau
    db = StateDB(first_run.settings.state_url)
    from visma_tableau_pipeline.marts.registry import mart_table

    for name in ("ap_invoices", "gl_transactions", "customers"):
        keys, hashes = row_keys_and_hashes(frame_from_hyper(tableau.datasource_path(name)), mart_table(name).key)
        with db.connect() as conn:
            ledger = {k.record_key: h for k, h in last_delivered(conn, name).items()}
        assert ledger == dict(zip(keys, hashes)), name
    with db.connect() as conn:
        summary = run_summary(conn, first.sync.run_id)
    assert summary["ap_invoices"] == {"insert": first.extracts["ap_invoices"]}


def _crash_after_delivering_a_change(visma_sandbox, companies, both, monkeypatch) -> None:
    """A run that delivers one changed invoice to Tableau and dies before the ledger commits."""
    run_pipeline(both, companies=companies, as_of=TODAY)
    company_id = companies[0].company_id
    invoice = next(visma_sandbox.records(company_id, "supplier_invoices"))
    visma_sandbox.modify(company_id, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))

    def crash(*args, **kwargs):
        raise RuntimeError("the process died after Tableau confirmed the delivery")

    with monkeypatch.context() as patched:
        patched.setattr(audited, "record_deliveries", crash)
        with pytest.raises(RuntimeError):
            run_pipeline(both, companies=companies, as_of=TODAY)


def test_a_crash_between_publish_and_commit_loses_and_doubles_nothing(visma_sandbox, companies, both, tableau, monkeypatch):
    _crash_after_delivering_a_change(visma_sandbox, companies, both, monkeypatch)
    again = run_pipeline(both, companies=companies, as_of=TODAY)
    assert again.published["ap_invoices"].startswith("incremental (+1/-0")  # sent again, not lost
    from visma_tableau_pipeline.marts.registry import mart_table

    assert_tableau_equals_extract(tableau, both, "ap_invoices", mart_table("ap_invoices").key)
    keys, hashes = row_keys_and_hashes(frame_from_hyper(tableau.datasource_path("ap_invoices")), mart_table("ap_invoices").key)
    db = StateDB(both.state_url)
    with db.connect() as conn:
        assert {k.record_key: h for k, h in last_delivered(conn, "ap_invoices").items()} == dict(zip(keys, hashes))
    assert hyper_totals(tableau.datasource_path("ap_invoices"), "amount_doc_currency") == visma_ap_totals(visma_sandbox, companies)


def test_vtp_audit_tells_when_a_record_reached_tableau_and_what_changed(visma_sandbox, companies, both, tableau, monkeypatch, caplog):
    import logging

    from click.testing import CliRunner

    from visma_tableau_pipeline.cli import main
    from visma_tableau_pipeline.sandbox.tableau.sandbox import DEMO_PAT_SECRET
    from visma_tableau_pipeline.settings import get_settings

    caplog.set_level(logging.DEBUG)
    first = run_pipeline(both, companies=companies, as_of=TODAY)
    company_id = companies[0].company_id
    invoice = next(i for i in visma_sandbox.records(company_id, "supplier_invoices") if i["status"] == "Open")
    visma_sandbox.modify(company_id, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))
    second = run_pipeline(both, companies=companies, as_of=TODAY)

    monkeypatch.setenv("VTP_HOME", str(both.home))
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["audit", "record", company_id, invoice["documentType"],
                                       invoice["referenceNumber"], "--table", "ap_invoices"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert first.sync.run_id in lines[0] and "insert" in lines[0]
    assert any(second.sync.run_id in line and "update" in line for line in lines)
    assert any(line.strip().startswith("balance_doc_currency:") for line in lines), result.output
    assert DEMO_PAT_SECRET not in caplog.text


def _vtp_audit_run(settings, run_id: str, monkeypatch) -> dict[str, dict[str, int]]:
    """`vtp audit run RUN_ID` through its entry point, read back as data source -> action -> rows."""
    from visma_tableau_pipeline_tests.cli_support import vtp

    monkeypatch.setenv("VTP_HOME", str(settings.home))
    result = vtp("audit", "run", run_id)
    assert result.exit_code == 0, result.output
    summary = {}
    for line in result.output.splitlines():
        data_source, actions = line.split(maxsplit=1)
        summary[data_source] = {action: int(rows) for action, rows in
                                (part.split() for part in actions.split(", "))}
    return summary


def test_vtp_audit_run_shows_every_kind_of_delivery(visma_sandbox, companies, both, tableau, monkeypatch):
    """Incremental upserts, an aging day replaced whole, an overwrite: each row sent is on the ledger."""
    run_pipeline(both, companies=companies, as_of=TODAY)
    company_id = companies[0].company_id
    invoice = next(visma_sandbox.records(company_id, "supplier_invoices"))
    visma_sandbox.modify(company_id, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))

    second = run_pipeline(both, companies=companies, as_of=TODAY)
    summary = _vtp_audit_run(both, second.sync.run_id, monkeypatch)
    assert summary["ap_invoices"] == {"update": 1}
    aging_rows = second.extracts["ap_aging"]
    assert second.published["ap_aging"].startswith(f"partition (+{aging_rows}/")
    assert sum(summary["ap_aging"].values()) == aging_rows and "resend" in summary["ap_aging"]
    assert "suppliers" not in summary  # nothing was sent to it

    full = run_pipeline(both, companies=companies, as_of=TODAY, full=True)
    summary = _vtp_audit_run(both, full.sync.run_id, monkeypatch)
    assert all(what.startswith("overwrite") for what in full.published.values())
    assert {name: sum(actions.values()) for name, actions in summary.items()} == full.extracts
    assert summary["suppliers"] == {"resend": full.extracts["suppliers"]}


def test_vtp_audit_run_shows_what_a_run_after_a_crash_sent_again(visma_sandbox, companies, both, tableau, monkeypatch):
    _crash_after_delivering_a_change(visma_sandbox, companies, both, monkeypatch)
    again = run_pipeline(both, companies=companies, as_of=TODAY)
    summary = _vtp_audit_run(both, again.sync.run_id, monkeypatch)
    assert summary["ap_invoices"] == {"update": 1}  # the change the crashed run sent, sent again
