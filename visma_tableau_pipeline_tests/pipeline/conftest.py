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


def small_paged_sandbox() -> VismaSandbox:
    """The Visma sandbox these tests read: 60 invoices per company, lists on several pages."""
    return VismaSandbox(60, seed=7, max_page_sizes=SMALL_PAGES)


@pytest.fixture
def visma_sandbox() -> Iterator[VismaSandbox]:
    with small_paged_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def companies(visma_sandbox: VismaSandbox) -> list[CompanySettings]:
    return sandbox_companies(visma_sandbox.base_url)


def settings_in(folder: Path) -> Settings:
    """Settings of a deployment whose VTP_HOME is `folder`/vtp (the sandbox's companies)."""
    return build_settings(EnvSettings(vtp_home=folder / "vtp", _env_file=None))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path)


@pytest.fixture
def tableau(tmp_path: Path) -> Iterator[TableauSandbox]:
    sandbox = TableauSandbox(tmp_path / "tableau")
    with sandbox.serve():
        yield sandbox
