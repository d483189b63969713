"""Whatever Visma sends: every record arrives, or is held back with a reason, and never stops the rest.

Each test changes records in the Visma sandbox to values Visma's contract admits (or a malformed
one), runs the whole pipeline over HTTP, and reads the Hyper extracts back.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.pipeline import run_pipeline
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import CompanySettings, Settings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.state.quarantine import held_records
from visma_tableau_pipeline.visma.catalogue import entity, record_key
from visma_tableau_pipeline_tests.pipeline.conftest import TODAY

INVOICES = entity("supplier_invoices")


def _invoices(sandbox: VismaSandbox, company_id: str, count: int) -> list[dict]:
    """Open invoices (they feed every AP table, aging included) of one company."""
    records = [r for r in sandbox.records(company_id, INVOICES.name)
               if r.get("status") == "Open" and r.get("documentType") == "Invoice"]
    assert len(records) >= count, "the sandbox should have enough open invoices"
    return records[:count]


def _change(sandbox: VismaSandbox, company_id: str, invoice: dict, changes: dict) -> str:
    sandbox.modify(company_id, INVOICES.name, record_key(INVOICES, invoice), changes)
    return invoice["referenceNumber"]


def _rows(settings: Settings, table: str, company_id: str, reference: str) -> pd.DataFrame:
    frame = frame_from_hyper(settings.extracts_dir / f"{table}.hyper")
    return frame[(frame["company_id"] == company_id) & (frame["reference_number"] == reference)]


def test_17_digit_rates_and_double_noise_in_amounts_arrive_exactly(
    visma_sandbox: VismaSandbox, companies: list[CompanySettings], settings: Settings,
) -> None:
    company = companies[0].company_id
    rated, noisy = _invoices(visma_sandbox, company, 2)
    rate = _change(visma_sandbox, company, rated, {"exchangeRate": Decimal("1.0275229357798166")})
    noise = _change(visma_sandbox, company, noisy, {"balance": Decimal("0.30000000000000004")})

    outcome = run_pipeline(settings, as_of=TODAY, companies=companies)

    assert outcome.held == []
    assert _rows(settings, "ap_invoices", company, rate)["exchange_rate"].tolist() == [1.0275229357798166]
    # a double's representation error beyond the cent is dropped: the amount is 0.30
    assert _rows(settings, "ap_invoices", company, noise)["balance_doc_currency"].tolist() == [Decimal("0.30")]
    assert _rows(settings, "ap_aging", company, noise)["open_balance_doc_currency"].tolist() == [Decimal("0.30")]


def test_a_bad_record_is_held_back_with_its_reason_and_the_rest_arrives(
    visma_sandbox: VismaSandbox, companies: list[CompanySettings], settings: Settings,
) -> None:
    company = companies[0].company_id
    dated, sub_cent, huge = _invoices(visma_sandbox, company, 3)
    bad = {
        _change(visma_sandbox, company, dated, {"date": "yesterday"}): ("date", "'yesterday'"),
        _change(visma_sandbox, company, sub_cent, {"amount": Decimal("100.005")}): ("amount", "Decimal('100.005')"),
        _change(visma_sandbox, company, huge, {"balance": Decimal("1E+20")}): ("balance", "Decimal('1E+20')"),
    }
    expected_count = sum(1 for _ in visma_sandbox.records(company, INVOICES.name))

    outcome = run_pipeline(settings, as_of=TODAY, companies=companies)

    held = {item.key.split("|")[1]: item for item in outcome.held}
    assert set(held) == set(bad)
    for reference, (field, value) in bad.items():
        item = held[reference]
        assert (item.company_id, item.entity, item.value) == (company, INVOICES.name, value)
        assert item.field.endswith(field) or item.field.startswith(field), item
        assert item.reason
        assert _rows(settings, "ap_invoices", company, reference).empty
        assert _rows(settings, "ap_aging", company, reference).empty
    invoices = frame_from_hyper(settings.extracts_dir / "ap_invoices.hyper")
    assert (invoices["company_id"] == company).sum() == expected_count - len(bad)
    assert "3 records held back" in outcome.summary() and "'yesterday'" in outcome.summary()
    # the other company is untouched by the first one's bad records
    other = companies[1].company_id
    assert (invoices["company_id"] == other).sum() == sum(1 for _ in visma_sandbox.records(other, INVOICES.name))


def test_a_held_record_stays_out_until_visma_sends_a_good_version(
    visma_sandbox: VismaSandbox, companies: list[CompanySettings], settings: Settings,
) -> None:
    company = companies[0].company_id
    (invoice,) = _invoices(visma_sandbox, company, 1)
    good_date = invoice["date"]
    reference = _change(visma_sandbox, company, invoice, {"date": "yesterday"})
    db = StateDB(settings.state_url)

    first = run_pipeline(settings, as_of=TODAY, companies=companies)
    second = run_pipeline(settings, as_of=TODAY, companies=companies)  # nothing new from Visma

    assert [item.key for item in first.held] == [item.key for item in second.held]
    assert _rows(settings, "ap_invoices", company, reference).empty

    _change(visma_sandbox, company, invoice, {"date": good_date})
    third = run_pipeline(settings, as_of=TODAY, companies=companies)

    assert third.held == []
    with db.connect() as conn:
        assert held_records(conn) == []
    assert len(_rows(settings, "ap_invoices", company, reference)) == 1
    assert key_string(record_key(INVOICES, invoice)) not in {item.key for item in third.held}


def test_vtp_sync_exits_2_and_vtp_quarantine_list_names_the_record(
    visma_sandbox: VismaSandbox, tmp_path, monkeypatch,
) -> None:
    from click.testing import CliRunner

    from visma_tableau_pipeline.cli import main
    from visma_tableau_pipeline.settings import get_settings

    for name in ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "VTP_CONFIG",
                 "TABLEAU_SERVER_URL", "VTP_STATE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VTP_HOME", str(tmp_path / "vtp"))
    monkeypatch.setenv("VTP_SANDBOX_URL", visma_sandbox.base_url)
    monkeypatch.setenv("VTP_SANDBOX", "1")
    get_settings.cache_clear()
    company = "nordic-no"
    (invoice,) = _invoices(visma_sandbox, company, 1)
    reference = _change(visma_sandbox, company, invoice, {"date": "yesterday"})
    runner = CliRunner()
    try:
        synced = runner.invoke(main, ["sync", "--as-of", TODAY.isoformat()])
        listed = runner.invoke(main, ["quarantine", "list"])
        _change(visma_sandbox, company, invoice, {"date": invoice["date"]})
        clean = runner.invoke(main, ["sync", "--as-of", TODAY.isoformat()])
        emptied = runner.invoke(main, ["quarantine", "list"])
    finally:
        get_settings.cache_clear()

    assert synced.exit_code == 2, synced.output
    assert "1 records held back" in synced.output
    line = f"{company} supplier_invoices Invoice|{reference}: date = 'yesterday': not an ISO 8601 date-time"
    assert line in listed.output and listed.exit_code == 0
    assert clean.exit_code == 0, clean.output
    assert "No records are held back." in emptied.output
