"""A Visma sandbox on a real socket, settings that point the pipeline at it, and a Tableau sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import CompanySettings, EnvSettings, Settings, build_settings, sandbox_companies

# Small pages make every list span several pages, so paging and shifting rows are exercised.
SMALL_PAGES = {
    "/v1/supplierInvoice": 7, "/v1/customerinvoice": 9, "/v1/supplier": 5, "/v1/customer": 6,
    "/v2/journaltransaction": 11, "/v1/supplierPayment": 8, "/v2/generalLedgerBalance": 50,
}
TODAY = date(2026, 11, 24)


@pytest.fixture
def visma_sandbox() -> Iterator[VismaSandbox]:
    with VismaSandbox(60, seed=7, max_page_sizes=SMALL_PAGES) as sandbox:
        yield sandbox


@pytest.fixture
def companies(visma_sandbox: VismaSandbox) -> list[CompanySettings]:
    return sandbox_companies(visma_sandbox.base_url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return build_settings(EnvSettings(vtp_home=tmp_path / "vtp", _env_file=None))


@pytest.fixture
def tableau(tmp_path: Path) -> Iterator[TableauSandbox]:
    sandbox = TableauSandbox(tmp_path / "tableau")
    with sandbox.serve():
        yield sandbox
