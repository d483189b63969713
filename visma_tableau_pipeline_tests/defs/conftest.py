"""The Dagster layer's fixtures: settings pointed at fresh sandboxes and a fresh VTP_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import get_settings

COMPANY, MONTH = "nordic-no", "2025-03-01"


@pytest.fixture
def sandbox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VismaSandbox]:
    """The pipeline's settings pointed at a fresh sandbox and a fresh VTP_HOME."""
    with VismaSandbox(40, seed=5) as sandbox:
        monkeypatch.setenv("VTP_SANDBOX_URL", sandbox.base_url)
        monkeypatch.setenv("VTP_HOME", str(tmp_path / "vtp"))
        for name in ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "TABLEAU_SERVER_URL", "VTP_CONFIG"):
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()
        yield sandbox
    get_settings.cache_clear()


@pytest.fixture
def tableau_env(sandbox_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Both sandboxes, the Visma one already synced, and TABLEAU_* pointing at the Tableau one."""
    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.visma.plan import sync_all

    sync_all(get_settings(), resolved_companies(get_settings()), defs().resources["state"].db())
    with serving_tableau(tmp_path, monkeypatch) as tableau:
        yield tableau


@contextmanager
def serving_tableau(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TableauSandbox]:
    """A Tableau sandbox serving while TABLEAU_* point the settings at it."""
    tableau = TableauSandbox(tmp_path / "tableau")
    with tableau.serve():
        for name, value in tableau.settings_env().items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield tableau


def sync_invoice_month(instance: dg.DagsterInstance, company: str = COMPANY,
                       month: str = MONTH) -> dg.ExecuteInProcessResult:
    """Materialize the company's financial periods, then one month of its supplier invoices
    (that run's result)."""
    periods = dg.AssetKey(["visma", "financial_periods"])
    invoices = dg.AssetKey(["visma", "supplier_invoices"])
    assert defs().resolve_implicit_job_def_def_for_assets([periods]).execute_in_process(
        instance=instance, partition_key=company, asset_selection=[periods]).success
    result = defs().resolve_implicit_job_def_def_for_assets([invoices]).execute_in_process(
        instance=instance, asset_selection=[invoices],
        partition_key=dg.MultiPartitionKey({"company": company, "month": month}))
    assert result.success
    return result
