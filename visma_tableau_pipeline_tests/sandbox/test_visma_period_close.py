"""Closing and reopening a financial period in the Visma sandbox: by its admin API, by Python and
by `vtp sandbox close-period`, seen through `/v1/financialPeriod` as Visma writes it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from visma_tableau_pipeline.cli import main
from visma_tableau_pipeline.sandbox.visma import VismaSandbox
from visma_tableau_pipeline.visma.periods import CLOSE_FLAGS, closed_modules
from visma_tableau_pipeline_tests.sandbox.visma_support import SandboxClient


@pytest.fixture(scope="module")
def sandbox() -> Iterator[VismaSandbox]:
    with VismaSandbox(10, seed=3) as running:
        yield running


def served_period(sandbox: VismaSandbox, company_id: str, period_id: str) -> dict:
    periods = SandboxClient(sandbox, company_id).json("/v1/financialPeriod")
    assert isinstance(periods, list)
    return next(p for p in periods if p["period"] == period_id)


def test_the_served_periods_keep_the_dto_of_the_contract(sandbox, openapi):
    periods = SandboxClient(sandbox).json("/v1/financialPeriod")
    fields = list(openapi["components"]["schemas"]["FinancialPeriodDto"]["properties"])
    assert isinstance(periods, list)
    assert all(list(period) == fields for period in periods)  # no lastModifiedDateTime among them
    assert set(CLOSE_FLAGS.values()) == {f for f in fields if f.startswith("closedIn")}


def test_the_admin_api_closes_one_module_and_reopens_it(sandbox):
    before = served_period(sandbox, "nordic-no", "202610")
    assert closed_modules(before) == frozenset()  # the demo's open month
    closed = httpx.post(f"{sandbox.base_url}/_sandbox/close-period",
                        json={"company_id": "nordic-no", "period": "202610", "modules": ["GL"]}).json()
    after = served_period(sandbox, "nordic-no", "202610")
    assert closed == after and closed_modules(after) == {"GL"}
    assert {k: v for k, v in after.items() if k != "closedInGeneralLedger"} == \
        {k: v for k, v in before.items() if k != "closedInGeneralLedger"}
    assert closed_modules(served_period(sandbox, "nordic-se", "202604")) == frozenset()  # other company

    httpx.post(f"{sandbox.base_url}/_sandbox/close-period",
               json={"company_id": "nordic-no", "period": "202610", "reopen": True})
    assert closed_modules(served_period(sandbox, "nordic-no", "202610")) == frozenset()


def test_a_closed_month_can_be_reopened_in_python(sandbox):
    assert closed_modules(served_period(sandbox, "nordic-se", "202603")) == set(CLOSE_FLAGS)
    sandbox.close_period("nordic-se", "202603", ["ap", "AR"], reopen=True)
    assert closed_modules(served_period(sandbox, "nordic-se", "202603")) == set(CLOSE_FLAGS) - {"AP", "AR"}
    sandbox.close_period("nordic-se", "202603")
    assert closed_modules(served_period(sandbox, "nordic-se", "202603")) == set(CLOSE_FLAGS)


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"company_id": "nordic-no", "period": "209901"}, 404, "no financial period '209901'"),
    ({"company_id": "nordic-no", "period": "202610", "modules": ["XX"]}, 400, "no module XX"),
    ({"company_id": "acme", "period": "202610"}, 404, "no demo company 'acme'"),
])
def test_the_admin_api_names_what_it_cannot_close(sandbox, body, status, message):
    response = httpx.post(f"{sandbox.base_url}/_sandbox/close-period", json=body)
    assert response.status_code == status and message in response.json()["error"]


def test_vtp_sandbox_close_period_talks_to_a_running_sandbox(sandbox):
    runner = CliRunner()
    args = ["sandbox", "close-period", "--url", sandbox.base_url, "--company", "nordic-no", "--period", "202611"]
    result = runner.invoke(main, [*args, "--module", "AP", "--module", "AR"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "nordic-no 202611: closed in AP, AR"
    assert closed_modules(served_period(sandbox, "nordic-no", "202611")) == {"AP", "AR"}

    result = runner.invoke(main, [*args, "--reopen"])
    assert result.output.strip() == "nordic-no 202611: closed in no module"

    result = runner.invoke(main, [*args[:-1], "000000"])
    assert result.exit_code == 1 and "no financial period '000000'" in result.output
