"""A failed `vtp` command ends with one message in the project's words and exit code 1.

Driven as a user does it: the offending environment variable or VTP_CONFIG file, then the
command. The message names the setting and what to do; a traceback appears only with `-v`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from visma_tableau_pipeline_tests.cli_support import assert_one_clear_message, vtp

VTP = Path(sys.executable).parent / "vtp"
PASSWORD = "hunter2-never-shown"


YAML_TABLEAU_LIST = "companies:\n  - {company_id: a, client_id: b, client_secret: c, tenant_id: d}\ntableau: [one, two]\n"
YAML_TABLEAU_TYPES = ("companies:\n  - {company_id: a, client_id: b, client_secret: c, tenant_id: d}\n"
                      "tableau: {server_url: 'https://t.example', deployment: moon}\n")

BAD_SETTINGS = {
    "first month not a date": ({"VTP_FIRST_MONTH": "13-2025"},
                               ["VTP_FIRST_MONTH='13-2025'", "not a date", "use YYYY-MM-DD"]),
    "sandbox size not a number": ({"VTP_SANDBOX_SIZE": "lots"},
                                  ["VTP_SANDBOX_SIZE='lots'", "whole number"]),
    "state url unparseable": ({"VTP_STATE_URL": f"postgresql://vtp:{PASSWORD}@db:port/vtp"},
                              ["VTP_STATE_URL", "postgresql+psycopg2://user@host/db"]),
    "state url of another database": ({"VTP_STATE_URL": "mysql://vtp@db/vtp"},
                                      ["VTP_STATE_URL", "SQLite or PostgreSQL"]),
    "tableau deployment unknown": ({"TABLEAU_SERVER_URL": "https://t.example", "TABLEAU_DEPLOYMENT": "moon"},
                                   ["TABLEAU_DEPLOYMENT='moon'", "'cloud' or 'server'"]),
    "retry budget not a number": ({"VTP_STATE_RETRY_SECONDS": "half a minute"},
                                  ["VTP_STATE_RETRY_SECONDS='half a minute'", "not a number"]),
}

BAD_FILES = {
    "tableau section is a list": (YAML_TABLEAU_LIST.encode(), ["tableau is a list", "mapping of settings"]),
    "tableau setting mistyped": (YAML_TABLEAU_TYPES.encode(),
                                 ["tableau.deployment='moon'", "'cloud' or 'server'"]),
    "a bare string": (b"just some words\n", ["the text 'just some words'", "mapping of settings"]),
    "not UTF-8": ("companies:\n  - {company_id: Bjørn}\n".encode("latin-1"), ["not UTF-8", "save it as UTF-8"]),
    "not YAML": (b"companies: [unclosed\n", ["not valid YAML"]),
    "a company mistyped": (b"companies:\n  - {company_id: a, client_id: b, client_secret: c, tenant_id: d, "
                           b"max_concurrency: many}\n",
                           ["companies[0].max_concurrency='many'", "whole number"]),
}


@pytest.mark.parametrize("variables, phrases", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_a_bad_setting_is_named_with_what_to_do(home, monkeypatch, variables, phrases):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    message = assert_one_clear_message(vtp("sync"), "vtp sync failed", *phrases)
    assert PASSWORD not in message


@pytest.mark.parametrize("content, phrases", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_config_file_is_named_with_what_to_do(home, tmp_path, monkeypatch, content, phrases):
    config = tmp_path / "vtp.yaml"
    config.write_bytes(content)
    monkeypatch.setenv("VTP_CONFIG", str(config))
    assert_one_clear_message(vtp("check"), "VTP_CONFIG", str(config), *phrases)


def test_the_installed_command_shows_the_traceback_only_with_v(home):
    env = {**os.environ, "VTP_FIRST_MONTH": "2025-13-01"}
    plain = subprocess.run([str(VTP), "sync"], env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines() == [
        "Error: vtp sync failed: VTP_FIRST_MONTH='2025-13-01': not a date; use YYYY-MM-DD"
    ]
    verbose = subprocess.run([str(VTP), "-v", "sync"], env=env, capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith("Error: vtp sync failed: VTP_FIRST_MONTH=")


def test_a_data_source_deleted_in_tableau_is_published_again_in_full(home, tmp_path, monkeypatch, caplog):
    import logging

    import tableauserverclient as TSC

    from visma_tableau_pipeline.marts.hyper import frame_from_hyper
    from visma_tableau_pipeline.marts.registry import mart_table
    from visma_tableau_pipeline.sandbox.tableau.sandbox import DEMO_PAT_NAME, DEMO_PAT_SECRET, TableauSandbox
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox

    tableau = TableauSandbox(tmp_path / "tableau", pats={DEMO_PAT_NAME: DEMO_PAT_SECRET})
    with VismaSandbox(30, seed=2) as visma, tableau.serve():
        for name, value in {"VTP_SANDBOX_URL": visma.base_url, "VTP_FIRST_MONTH": "2026-06-01",
                            **tableau.settings_env()}.items():
            monkeypatch.setenv(name, value)
        first = vtp("sync", "--as-of", "2026-11-24")
        assert first.exit_code == 0, first.output

        server = TSC.Server(tableau.base_url, use_server_version=True)
        server.auth.sign_in(TSC.PersonalAccessTokenAuth(DEMO_PAT_NAME, DEMO_PAT_SECRET,
                                                        site_id=tableau.site_content_url))
        (deleted,) = [d for d in TSC.Pager(server.datasources) if d.name == "ap_invoices"]
        server.datasources.delete(deleted.id)
        server.auth.sign_out()
        invoice = next(i for i in visma.records("nordic-no", "supplier_invoices")
                       if i["financialPeriod"] >= "202606")  # in the synced months
        visma.modify("nordic-no", "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))

        caplog.set_level(logging.WARNING)
        second = vtp("sync", "--as-of", "2026-11-24")
    assert second.exit_code == 0, second.output
    assert "ap_invoices create" in second.output and "1 changed" in second.output
    assert any("ap_invoices" in r.getMessage() and deleted.id in r.getMessage()
               and "no longer exists in Tableau" in r.getMessage() for r in caplog.records)
    published = frame_from_hyper(tableau.datasource_path("ap_invoices"))
    extract = frame_from_hyper(home / "extracts" / "ap_invoices.hyper")
    assert len(published) == len(extract) > 0
    key = list(mart_table("ap_invoices").key)
    assert published.sort_values(key).reset_index(drop=True).equals(
        extract.sort_values(key).reset_index(drop=True))
