"""How Dagster loads the code location and what its resources show.

Importing reads no setting; loading does, and stops with the settings' own message. Dagster
shows resource configuration in its UI: a secret appears there only as the name of its
environment variable or of the place it is kept, and a run still signs in with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.defs.tableau.entitlements import DIRECTORY_KEY
from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_TENANT_IDS,
    get_settings,
)
from visma_tableau_pipeline_tests.cli_support import SETTINGS_VARIABLES, vtp

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"
COMPANY = "nordic-no"
PERIODS = dg.AssetKey(["visma", "financial_periods"])


def _clean_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any setting or sandbox, plus `settings`, for a child."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in {*SETTINGS_VARIABLES, "VTP_SANDBOX"} and not name.startswith("DAGSTER_")}
    return {**environment, "PYTHONPATH": str(REPO), "VTP_HOME": str(tmp_path / "vtp"),
            "DAGSTER_HOME": str(tmp_path), **settings}


def _run(command: list[str], environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True, timeout=300)


IMPORT_EVERYTHING = """
import importlib, pkgutil
import visma_tableau_pipeline.defs as package
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in [*names, "visma_tableau_pipeline.definitions"]:
    importlib.import_module(name)
print(f"imported {len(names) + 1} modules")
from visma_tableau_pipeline.definitions import defs
defs()
"""


def test_importing_the_code_location_reads_no_setting_and_loading_it_does(tmp_path):
    """A malformed setting would stop any import that read one; only loading the definitions stops."""
    (tmp_path / "dagster.yaml").write_text("")
    done = _run([sys.executable, "-c", IMPORT_EVERYTHING],
                _clean_environment(tmp_path, VTP_POLLING_SENSOR_SECONDS="often"), tmp_path)
    assert done.returncode != 0 and done.stdout.startswith("imported "), done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "visma_tableau_pipeline.settings.ConfigError: VTP_POLLING_SENSOR_SECONDS='often': "
        "not a whole number; use digits only, e.g. 300")


def test_without_a_company_loading_the_code_location_names_the_settings_to_set(tmp_path):
    (tmp_path / "dagster.yaml").write_text("")
    done = _run([str(DAGSTER), "definitions", "validate", "-m", "visma_tableau_pipeline.definitions"],
                _clean_environment(tmp_path), tmp_path)
    assert done.returncode != 0
    for name in ("No Visma company is configured", "VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID",
                 "VTP_CONFIG", "VTP_SANDBOX=1"):
        assert name in done.stdout + done.stderr, name


@pytest.mark.parametrize("how", [["-w", "workspace.yaml"], []], ids=["workspace.yaml", "pyproject"])
def test_dagster_loads_the_code_location_as_the_repository_configures_it(tmp_path, how):
    """`dagster dev` from the repository root loads it the same way: workspace.yaml, or
    [tool.dagster] in pyproject.toml when no workspace is named."""
    (tmp_path / "dagster.yaml").write_text("")
    done = _run([str(DAGSTER), "definitions", "validate", *how], _clean_environment(tmp_path, VTP_SANDBOX="1"), REPO)
    assert done.returncode == 0, done.stderr
    assert "Validation successful for code location visma_tableau_pipeline" in done.stdout


SECRETS = {"visma": "visma-secret-6f1d2e", "tableau": "tableau-secret-93ab07", "password": "db-password-51c8e4"}


@pytest.fixture
def configured(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh VTP_HOME, no setting of the developer's, and no sandbox asked for."""
    monkeypatch.delenv("VTP_SANDBOX")
    for name in ("VISMA_COMPANY_ID", "VISMA_API_URL", "VISMA_TOKEN_URL", "VTP_ENTITLEMENTS"):
        monkeypatch.delenv(name, raising=False)
    yield home
    get_settings.cache_clear()


def _keep_secrets_in(where: str, home: Path, monkeypatch: pytest.MonkeyPatch, visma: dict[str, str],
                     tableau: dict[str, str]) -> str:
    """Point the settings at one company and a Tableau, their secrets kept `where`; what Dagster
    should show instead of them."""
    visma_secret, pat_secret = visma.pop("client_secret"), tableau.pop("pat_secret")
    if where == "vtp secrets":
        assert vtp("secrets", "init").exit_code == 0
        for name, value in (("visma/nordic-no/client_secret", visma_secret), ("tableau/pat_secret", pat_secret)):
            assert vtp("secrets", "set", name, "--value", value).exit_code == 0
    if where in ("environment", "vtp secrets"):
        for name, value in {**{f"VISMA_{k.upper()}": v for k, v in visma.items()},
                            **{f"TABLEAU_{k.upper()}": v for k, v in tableau.items()}}.items():
            monkeypatch.setenv(name, value)
        if where == "environment":
            monkeypatch.setenv("VISMA_CLIENT_SECRET", visma_secret)
            monkeypatch.setenv("TABLEAU_PAT_SECRET", pat_secret)
        get_settings.cache_clear()
        return "VISMA_CLIENT_SECRET" if where == "environment" else "visma/nordic-no/client_secret"
    config = home.parent / "vtp.yaml"
    if where == "config file, env:NAME":
        monkeypatch.setenv("SECRET_NO", visma_secret)
        monkeypatch.setenv("SECRET_PAT", pat_secret)
        visma_secret, pat_secret = "env:SECRET_NO", "env:SECRET_PAT"
    company = {**visma, "client_secret": visma_secret}
    site = {**tableau, "pat_secret": pat_secret}
    config.write_text("companies:\n  - {" + ", ".join(f"{k}: '{v}'" for k, v in company.items()) + "}\n"
                      "tableau: {" + ", ".join(f"{k}: '{v}'" for k, v in site.items()) + "}\n", encoding="utf-8")
    monkeypatch.setenv("VTP_CONFIG", str(config))
    get_settings.cache_clear()
    return "SECRET_NO" if where == "config file, env:NAME" else str(config)


WHERE = ["environment", "config file, env:NAME", "config file", "vtp secrets"]


@pytest.mark.parametrize("where", WHERE)
def test_the_resources_dagster_shows_name_where_each_secret_is_kept_never_its_value(
        configured, monkeypatch, where):
    monkeypatch.setenv("VTP_STATE_URL", f"postgresql+psycopg2://vtp:{SECRETS['password']}@127.0.0.1:1/vtp")
    if where == "vtp secrets":  # the store lives in the state database: a reachable one here
        monkeypatch.setenv("VTP_STATE_URL", f"sqlite:///{configured / 'state.db'}")
    shown_instead = _keep_secrets_in(
        where, configured, monkeypatch,
        visma={"company_id": COMPANY, "client_id": "id", "tenant_id": "tenant", "client_secret": SECRETS["visma"]},
        tableau={"server_url": "https://tableau.example", "pat_name": "vtp", "pat_secret": SECRETS["tableau"]})
    # what the webserver receives from the code location, resources and their config included
    shown = serialize_value(RepositorySnap.from_def(defs().get_repository_def()))
    assert all(value not in shown for value in SECRETS.values())
    assert shown_instead in shown and "VTP_STATE_URL" in shown


@pytest.mark.parametrize("where", WHERE)
def test_a_run_signs_in_to_visma_and_tableau_with_the_secrets_wherever_they_are_kept(
        configured, monkeypatch, tmp_path, where):
    tableau = TableauSandbox(tmp_path / "tableau")
    with VismaSandbox(20, seed=5) as visma, tableau.serve():
        site = tableau.settings_env()
        _keep_secrets_in(
            where, configured, monkeypatch,
            visma={"company_id": COMPANY, "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET,
                   "tenant_id": SANDBOX_TENANT_IDS[COMPANY], "api_url": visma.base_url,
                   "token_url": f"{visma.base_url}/connect/token"},
            tableau={"server_url": site["TABLEAU_SERVER_URL"], "site": site["TABLEAU_SITE"],
                     "pat_name": site["TABLEAU_PAT_NAME"], "pat_secret": site["TABLEAU_PAT_SECRET"]})
        instance = dg.DagsterInstance.ephemeral()
        periods = defs().resolve_implicit_job_def_def_for_assets([PERIODS]).execute_in_process(
            instance=instance, partition_key=COMPANY, asset_selection=[PERIODS])
        directory = defs().resolve_implicit_job_def_def_for_assets([DIRECTORY_KEY]).execute_in_process(
            instance=instance, asset_selection=[DIRECTORY_KEY])
    assert periods.success and directory.success
    assert periods.get_asset_materialization_events()[0].materialization.metadata["records_read"].value > 0
    assert directory.get_asset_materialization_events()[0].materialization.metadata["users"].value > 0
