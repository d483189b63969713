"""The production instance: deploy/dagster.yaml on the real PostgreSQL server, state there too.

Materializes a Visma partition and a dashboard table with Dagster's runs and event logs in
PostgreSQL (dagster-postgres) and the project's state database on the same server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.state import StateDB, count
from visma_tableau_pipeline.state.schema import metadata
from visma_tableau_pipeline_tests.defs.conftest import sync_invoice_month

REPO = Path(__file__).resolve().parents[2]
COMPANY, MONTH = "nordic-no", "2025-04-01"


@pytest.mark.postgres
def test_runs_and_state_live_in_postgresql(postgres_url, tmp_path, monkeypatch):
    url = make_url(postgres_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for name, value in {
        "DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": url.host, "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": url.database, "VTP_STATE_URL": postgres_url, "VTP_HOME": str(tmp_path / "vtp"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "TABLEAU_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)

    with VismaSandbox(40, seed=9) as sandbox:
        monkeypatch.setenv("VTP_SANDBOX_URL", sandbox.base_url)
        get_settings.cache_clear()
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            invoices, ap = dg.AssetKey(["visma", "supplier_invoices"]), mart_asset_key(mart_table("ap_invoices"))
            sync_invoice_month(instance, COMPANY, MONTH)
            assert defs().resolve_implicit_job_def_def_for_assets([ap]).execute_in_process(
                instance=instance, asset_selection=[ap]).success
            materialized = instance.get_latest_materialization_event(invoices)
            assert materialized is not None and materialized.dagster_event.partition == f"{COMPANY}|{MONTH}"
        truth = sum(1 for r in sandbox.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == "202504")
    get_settings.cache_clear()
    state = StateDB(postgres_url)
    try:
        with state.connect() as conn:
            assert count(conn, COMPANY, "supplier_invoices") == truth > 0
    finally:
        metadata.drop_all(state.engine)  # the session's database is shared with the `db` fixture
        state.dispose()
