"""The Visma sandbox's generated client companies (`vtp sandbox --companies N`): an accounting
office's many small companies, each its own tenant, read by the settings and `vtp sync`.

Their records are checked against Visma's OpenAPI document with the demo group's
(`test_visma_contract.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from visma_tableau_pipeline.cli import main
from visma_tableau_pipeline.marts.hyper import query_extract
from visma_tableau_pipeline.sandbox.visma import VismaSandbox
from visma_tableau_pipeline.settings import SANDBOX_TENANT_IDS, get_settings, sandbox_companies
from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline_tests.cli_support import SETTINGS_VARIABLES


def _numbers(sandbox: VismaSandbox, company_id: str) -> list[tuple[str, str]]:
    return [(r["referenceNumber"], str(r["amount"])) for r in sandbox.records(company_id, "supplier_invoices")]


def test_by_default_the_sandbox_serves_the_demo_group_only():
    sandbox = VismaSandbox(20)
    assert list(sandbox.companies) == list(SANDBOX_TENANT_IDS)
    assert [c.company_id for c in sandbox_companies("http://sandbox")] == list(SANDBOX_TENANT_IDS)


def test_client_companies_are_their_own_tenants_with_their_own_deterministic_books():
    sandbox = VismaSandbox(20, seed=4, client_companies=3, client_size=12)
    settings = sandbox_companies("http://sandbox", 3)
    assert [c.company_id for c in settings] == ["nordic-no", "nordic-se", "client-001", "client-002", "client-003"]
    assert {c.company_id: c.tenant_id for c in settings} == {
        company_id: sandbox.tenant_id(company_id) for company_id in sandbox.companies}
    assert len({c.tenant_id for c in settings}) == 5
    assert sandbox.count("client-002", "supplier_invoices") == 12
    assert _numbers(sandbox, "client-002") == _numbers(VismaSandbox(20, seed=4, client_companies=2, client_size=12),
                                                       "client-002")
    assert _numbers(sandbox, "client-002") != _numbers(sandbox, "client-003")
    assert _numbers(sandbox, "client-002") != _numbers(VismaSandbox(20, seed=5, client_companies=2, client_size=12),
                                                       "client-002")


def test_the_visma_client_reads_a_client_company_with_its_own_token():
    with VismaSandbox(20, seed=4, client_companies=2, client_size=12) as sandbox:
        client_002 = next(c for c in sandbox_companies(sandbox.base_url, 2) if c.company_id == "client-002")
        with VismaClient(client_002) as client:
            read = [record for batch in client.read_entity(entity("supplier_invoices")) for record in batch]
        assert sorted(r["referenceNumber"] for r in read) == sorted(n for n, _ in _numbers(sandbox, "client-002"))
        assert sandbox.request_log["client-002"] > 0 and sandbox.request_log["client-001"] == 0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VTP_HOME", str(tmp_path / "vtp"))
    monkeypatch.setenv("VTP_FIRST_MONTH", "2026-06-01")
    monkeypatch.chdir(tmp_path)
    yield tmp_path / "vtp"
    get_settings.cache_clear()


def test_vtp_sync_reads_every_client_company_the_sandbox_serves(home, monkeypatch):
    with VismaSandbox(20, seed=4, client_companies=2, client_size=12) as sandbox:
        monkeypatch.setenv("VTP_SANDBOX_URL", sandbox.base_url)
        monkeypatch.setenv("VTP_SANDBOX_COMPANIES", "2")
        get_settings.cache_clear()
        result = CliRunner().invoke(main, ["sync", "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    published = query_extract(home / "extracts" / "ap_invoices.hyper",
                              "SELECT DISTINCT t.company_id FROM {extract} ORDER BY 1")
    assert list(published["company_id"]) == ["client-001", "client-002", "nordic-no", "nordic-se"]
