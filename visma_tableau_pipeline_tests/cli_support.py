"""Running `vtp` as a user does, in the test's process, and what a failed command must show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from visma_tableau_pipeline.cli import main
from visma_tableau_pipeline.settings import get_settings

# Variables of the developer's shell that would change what a command reads.
SETTINGS_VARIABLES = ("VISMA_CLIENT_ID", "VISMA_CLIENT_SECRET", "VISMA_TENANT_ID", "VTP_CONFIG",
             "TABLEAU_SERVER_URL", "TABLEAU_SITE", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET",
             "VTP_SECRET_KEY", "VTP_STATE_URL", "VTP_SANDBOX_URL", "VTP_FIRST_MONTH",
             "VTP_SANDBOX_SIZE", "VTP_SANDBOX_COMPANIES", "TABLEAU_DEPLOYMENT", "VTP_RETRY_BACKOFF_SECONDS",
             "VTP_VISMA_RETRY_SECONDS", "VTP_STATE_RETRY_SECONDS", "VTP_TABLEAU_RETRY_SECONDS")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh VTP_HOME and an environment without the developer's settings."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VTP_HOME", str(tmp_path / "vtp"))
    monkeypatch.setenv("VTP_SANDBOX", "1")
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    get_settings.cache_clear()
    yield tmp_path / "vtp"
    get_settings.cache_clear()


def vtp(*args: str) -> Result:
    """`vtp ARGS` through its click entry point, with the settings read afresh."""
    get_settings.cache_clear()
    return CliRunner().invoke(main, list(args))


def assert_one_clear_message(result: Result, *phrases: str) -> str:
    """Exit code 1, no traceback, and a last line on stderr holding every phrase."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), f"escaped: {result.exception!r}"
    assert "Traceback" not in result.output
    message = result.stderr.strip().splitlines()[-1]
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    return message
