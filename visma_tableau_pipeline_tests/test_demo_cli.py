"""`vtp demo` as a newcomer runs it, then the commands its output and help texts point to."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline_tests.cli_support import SETTINGS_VARIABLES, vtp


@dataclass
class Demo:
    home: Path
    result: Result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One `vtp demo` (small) in a fresh VTP_HOME, and the environment it ran in, for each test."""
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in (*SETTINGS_VARIABLES, "VTP_SANDBOX"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("VTP_HOME", str(root / "vtp"))
        monkeypatch.chdir(root)
        result = vtp("demo", "--size", "20")
        assert result.exit_code == 0, result.output
        yield Demo(root / "vtp", result)
    get_settings.cache_clear()


@pytest.fixture
def in_demo_home(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    monkeypatch.setenv("VTP_HOME", str(demo.home))
    monkeypatch.chdir(demo.home.parent)
    return demo


def test_the_audit_record_help_example_works_as_written(in_demo_home: Demo):
    help_text = vtp("audit", "record", "--help").output
    (example,) = re.findall(r"^\s+(vtp audit record .+)$", help_text, re.MULTILINE)
    result = vtp(*shlex.split(example)[1:])
    assert result.exit_code == 0, result.output
    run_id = re.search(r"\b(vtp-sync-[0-9a-f]+)", in_demo_home.result.output).group(1)
    (line,) = result.output.splitlines()
    assert line.split()[2:6] == ["nordic-no|Invoice|000001", "ap_invoices", "insert", "version"]
    assert line.endswith(f"run {run_id}")


def test_vtp_audit_record_of_an_unknown_record_says_so(in_demo_home: Demo):
    result = vtp("audit", "record", "nordic-no", "Invoice", "999999")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no delivery of nordic-no Invoice 999999 is on the ledger" in result.output


def test_the_demo_ends_saying_where_to_look_next(demo: Demo):
    lines = demo.result.stdout.splitlines()
    assert lines[0].startswith("run vtp-sync-") and "incremental" in lines[0]
    assert lines[2].startswith("  nordic-no: ") and lines[3].startswith("  nordic-se: ")
    assert lines[4].startswith("Tableau (http://127.0.0.1:")
    assert lines[4].endswith(f"sent to {len(MART_TABLES) + 1} data sources")  # + entitlements
    assert any(line.startswith("  ap_invoices create (+32/-0, ") for line in lines)
    assert "Records held back: none" in lines
    tail = lines[lines.index("Where to look next:"):]
    assert tail[1] == ("  Dagster:  VTP_SANDBOX=1 .venv/bin/dagster dev   "
                       "(from the repository root; open http://127.0.0.1:3000)")
    assert tail[2].startswith(f"  Extracts: {demo.home / 'extracts'} ")
    assert (demo.home / "extracts" / "ap_invoices.hyper").exists()
    assert str(demo.home / "tableau-sandbox") in tail[3] and (demo.home / "tableau-sandbox").is_dir()
    port = re.search(r"--tableau-port INTEGER\s+\[default: (\d+)\]", vtp("sandbox", "--help").output).group(1)
    assert f"at http://127.0.0.1:{port} " in tail[4]
