"""Settings from the environment, a YAML file and the encrypted store; the `vtp` command."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from visma_tableau_pipeline.cli import main
from visma_tableau_pipeline.companies import resolved_companies
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.settings import ConfigError, EnvSettings, build_settings, get_settings
from visma_tableau_pipeline_tests.cli_support import assert_one_clear_message, vtp

SECRET = "s3cr3t-that-must-never-be-logged"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "VTP_CONFIG",
                 "TABLEAU_SERVER_URL", "VTP_SECRET_KEY", "VTP_STATE_URL", "VTP_SANDBOX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VTP_HOME", str(tmp_path / "vtp"))
    get_settings.cache_clear()
    yield tmp_path / "vtp"
    get_settings.cache_clear()


def env(home: Path, **values) -> EnvSettings:
    return EnvSettings(vtp_home=home, _env_file=None, **values)


def test_no_credentials_and_no_sandbox_asked_for_stops_naming_the_settings(home):
    settings = build_settings(env(home, vtp_sandbox=False))  # secrets and audit need no company
    assert settings.companies == [] and not settings.sandbox
    with pytest.raises(ConfigError) as stopped:
        resolved_companies(settings)
    for name in ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "VTP_CONFIG", "VTP_SANDBOX=1"):
        assert name in str(stopped.value)


def test_vtp_sync_without_credentials_or_sandbox_stops_and_publishes_nothing(home, monkeypatch):
    monkeypatch.delenv("VTP_SANDBOX", raising=False)
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["sync"])
    assert result.exit_code == 1
    assert "No Visma company is configured" in result.output and "Traceback" not in result.output
    assert not (home / "extracts").exists()


def test_the_sensor_intervals_are_settings_within_their_ranges(home, monkeypatch):
    settings = build_settings(env(home, vtp_sandbox=True))
    assert (settings.webhook_sensor_seconds, settings.automation_sensor_seconds,
            settings.polling_sensor_seconds) == (15, 15, 300)
    monkeypatch.setenv("VTP_WEBHOOK_SENSOR_SECONDS", "10")
    monkeypatch.setenv("VTP_AUTOMATION_SENSOR_SECONDS", "20")
    monkeypatch.setenv("VTP_POLLING_SENSOR_SECONDS", "600")
    settings = build_settings(EnvSettings.read())
    assert (settings.webhook_sensor_seconds, settings.automation_sensor_seconds,
            settings.polling_sensor_seconds) == (10, 20, 600)
    for name, value in (("VTP_WEBHOOK_SENSOR_SECONDS", "1"), ("VTP_AUTOMATION_SENSOR_SECONDS", "86400"),
                        ("VTP_POLLING_SENSOR_SECONDS", "10")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            EnvSettings.read()
        monkeypatch.delenv(name)


def test_the_sandbox_when_asked_for(home):
    settings = build_settings(env(home, vtp_sandbox=True))
    assert settings.sandbox and {c.company_id for c in settings.companies} == {"nordic-no", "nordic-se"}
    assert settings.tableau is None
    assert settings.state_url.endswith("state.db")


def test_one_company_from_the_environment(home):
    settings = build_settings(env(home, visma_client_id="id", visma_client_secret=SECRET,
                                  visma_tenant_id="tenant", visma_company_id="acme"))
    (company,) = settings.companies
    assert not settings.sandbox and company.company_id == "acme" and company.tenant_id == "tenant"
    assert SECRET not in repr(settings)


def test_incomplete_visma_settings_name_what_is_missing(home):
    with pytest.raises(ConfigError, match="VISMA_CLIENT_SECRET"):
        build_settings(env(home, visma_client_id="id", visma_tenant_id="tenant"))


def test_several_companies_from_yaml_with_env_references(home, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_NO", SECRET)
    config = tmp_path / "vtp.yaml"
    config.write_text(
        "companies:\n"
        "  - {company_id: no1, client_id: a, client_secret: 'env:SECRET_NO', tenant_id: t1}\n"
        "  - {company_id: se1, client_id: b, client_secret: plain, tenant_id: t2, max_concurrency: 2}\n"
        "tableau: {server_url: 'https://tableau.example', site: fin, pat_name: vtp, pat_secret: x}\n",
        encoding="utf-8",
    )
    settings = build_settings(env(home, vtp_config=config))
    assert [c.company_id for c in settings.companies] == ["no1", "se1"]
    assert settings.companies[0].client_secret.get_secret_value() == SECRET
    assert settings.tableau.site == "fin"


def test_a_bad_yaml_file_is_a_clear_error(home, tmp_path):
    config = tmp_path / "vtp.yaml"
    config.write_text("companies: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="non-empty list"):
        build_settings(env(home, vtp_config=config))
    with pytest.raises(ConfigError, match="does not exist"):
        build_settings(env(home, vtp_config=tmp_path / "missing.yaml"))


def test_secrets_cli_round_trip_and_settings_use_the_store(home, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(main, ["secrets", "init"]).exit_code == 0
    assert (home / "secret.key").stat().st_mode & 0o077 == 0
    result = runner.invoke(main, ["secrets", "set", "visma/acme/client_secret", "--value", SECRET])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(main, ["secrets", "list"])
    assert "visma/acme/client_secret" in listed.output and SECRET not in listed.output

    from_store = build_settings(env(home, visma_client_id="id", visma_tenant_id="t", visma_company_id="acme"))
    assert from_store.companies[0].client_secret.get_secret_value() == SECRET
    from_env = build_settings(env(home, visma_client_id="id", visma_tenant_id="t",
                                  visma_company_id="acme", visma_client_secret="from-env"))
    assert from_env.companies[0].client_secret.get_secret_value() == "from-env"

    assert runner.invoke(main, ["secrets", "remove", "visma/acme/client_secret"]).exit_code == 0
    missing = runner.invoke(main, ["secrets", "remove", "visma/acme/client_secret"])
    assert missing.exit_code != 0 and "no secret named" in missing.output


def test_vtp_secrets_commands_leave_the_key_and_the_state_database_readable_by_their_owner_only(home):
    vtp = Path(sys.executable).parent / "vtp"
    for command in (["secrets", "init"], ["secrets", "set", "tableau/pat_secret", "--value", SECRET]):
        done = subprocess.run([str(vtp), *command], env=os.environ.copy(), umask=0o022,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in home.iterdir()}
    assert modes == {"secret.key": 0o600, "state.db": 0o600}


def test_a_wrong_key_is_a_clear_error_not_a_traceback(home, monkeypatch):
    runner = CliRunner()
    runner.invoke(main, ["secrets", "init"])
    runner.invoke(main, ["secrets", "set", "tableau/pat_secret", "--value", SECRET])
    monkeypatch.setenv("VTP_SECRET_KEY", "A" * 43 + "=")
    listed = vtp("secrets", "list")
    message = assert_one_clear_message(listed, "vtp secrets failed", "the secret key does not match")
    assert listed.stdout == "" and "tableau/pat_secret" not in message  # no list that looks fine
    got = runner.invoke(main, ["secrets", "set", "tableau/pat_secret", "--value", "x"])
    assert_one_clear_message(got, "the secret key does not match")
    assert SECRET not in listed.output + got.output


def test_vtp_secrets_set_refuses_a_name_it_does_not_know_and_names_those_it_knows(home):
    assert vtp("secrets", "init").exit_code == 0
    refused = vtp("secrets", "set", "tableau/pat", "--value", SECRET)
    assert_one_clear_message(refused, "unknown secret name 'tableau/pat'", "visma/<company_id>/client_id",
                             "visma/<company_id>/client_secret", "tableau/pat_secret",
                             "tableau/connected_app_secret_value")
    assert vtp("secrets", "list").output == ""


def test_vtp_secrets_set_reads_a_piped_value_once_without_an_echo_warning(home):
    vtp_command = Path(sys.executable).parent / "vtp"
    assert subprocess.run([str(vtp_command), "secrets", "init"], capture_output=True, timeout=120).returncode == 0
    done = subprocess.run([str(vtp_command), "secrets", "set", "tableau/pat_secret"], input=SECRET + "\n",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stored tableau/pat_secret\n"
    assert "Warning" not in done.stderr and SECRET not in done.stdout + done.stderr
    from visma_tableau_pipeline.state import SecretStore, StateDB, default_key_file, load_key

    store = SecretStore(StateDB(get_settings().state_url), load_key(default_key_file(home)))
    assert store.get("tableau/pat_secret") == SECRET


def test_the_readme_counts_the_tables_built_record_by_record_right():
    import re

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
             "twenty", "twenty-one", "twenty-two", "twenty-three", "twenty-four"]
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    part, whole = re.search(r"(\S+) of the (\S+) tables build each row from one record", readme).groups()
    assert (words.index(part.lower()), words.index(whole.lower())) == (
        sum(1 for table in MART_TABLES if table.rows_from), len(MART_TABLES))


def test_vtp_sync_against_the_sandbox_logs_no_secret(home, monkeypatch, caplog):
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
    from visma_tableau_pipeline.settings import SANDBOX_CLIENT_SECRET

    with VismaSandbox(30, seed=2) as sandbox:
        monkeypatch.setenv("VTP_SANDBOX_URL", sandbox.base_url)
        monkeypatch.setenv("VTP_FIRST_MONTH", "2026-06-01")
        get_settings.cache_clear()
        caplog.set_level(logging.DEBUG)
        result = CliRunner().invoke(main, ["sync", "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": incremental: master data and the periods Visma has not closed re-read "
                             "in full, closed periods as deltas")
    assert "Visma records read" in lines[1]
    assert [line.split(":")[0] for line in lines[2:4]] == ["  nordic-no", "  nordic-se"]
    assert lines[4:] == ["Tableau: not configured (TABLEAU_SERVER_URL), nothing published",
                         "Records held back: none", lines[6], lines[7]]
    assert lines[6].startswith(f"Extracts: {len(MART_TABLES) + 1} in {home / 'extracts'} (rows: ap_invoices ")
    assert lines[7].startswith("Time: Visma ") and "tables" in lines[7] and "(slowest tables: " in lines[7]
    assert (home / "extracts" / "ap_invoices.hyper").exists()
    assert "sandbox" in caplog.text.lower()
    everything = caplog.text + result.output
    assert SANDBOX_CLIENT_SECRET not in everything
    assert "access_token" not in everything


def test_vtp_check_pings_visma_and_tableau_and_explains_failures(home, monkeypatch, tmp_path):
    from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
    from visma_tableau_pipeline.settings import SANDBOX_CLIENT_ID, SANDBOX_TENANT_IDS

    with VismaSandbox(20, seed=1) as visma, TableauSandbox(tmp_path / "tableau").serve() as tableau_url:
        monkeypatch.setenv("VTP_SANDBOX_URL", visma.base_url)
        get_settings.cache_clear()
        ok = CliRunner().invoke(main, ["check"])
        assert ok.exit_code == 0, ok.output
        assert ok.output.count("ok ") == 4 and "financial periods" in ok.output and "not configured" in ok.output
        assert "the bundled sandbox (VTP_SANDBOX), not a real company" in ok.output

        monkeypatch.setenv("TABLEAU_SERVER_URL", tableau_url)
        monkeypatch.setenv("TABLEAU_SITE", "demo")
        monkeypatch.setenv("TABLEAU_PAT_NAME", "vtp-sandbox")
        monkeypatch.setenv("TABLEAU_PAT_SECRET", "wrong")
        for name, value in {"VISMA_CLIENT_ID": SANDBOX_CLIENT_ID, "VISMA_CLIENT_SECRET": SECRET,
                            "VISMA_TENANT_ID": SANDBOX_TENANT_IDS["nordic-no"],
                            "VISMA_API_URL": visma.base_url,
                            "VISMA_TOKEN_URL": f"{visma.base_url}/connect/token"}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        failed = CliRunner().invoke(main, ["check"])
    assert failed.exit_code == 1
    assert "FAIL Visma company default" in failed.output and "FAIL Tableau" in failed.output
    assert SECRET not in failed.output and "wrong" not in failed.output.replace("wrong secret", "")
