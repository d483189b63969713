"""A Tableau sandbox per test, served over HTTP on 127.0.0.1, and settings that point at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from visma_tableau_pipeline.sandbox.tableau import ConnectedApp, TableauSandbox
from visma_tableau_pipeline.settings import TableauSettings
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession

PAT_NAME, PAT_SECRET = "pipeline-pat", "pipeline-pat-secret-value"
APP = ConnectedApp("app-client-id", "app-secret-id", "app-secret-value-do-not-log-32-bytes-long")


class Waits(list[float]):
    """A `sleep` that records the waits instead of sleeping: retry tests stay fast."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sandbox(tmp_path: Path) -> TableauSandbox:
    """Not yet serving: a test may wrap `sandbox.app` first. Use `served`."""
    return TableauSandbox(tmp_path / "tableau", pats={PAT_NAME: PAT_SECRET}, connected_app=APP)


@pytest.fixture
def served(sandbox: TableauSandbox) -> Iterator[TableauSandbox]:
    with sandbox.serve():
        yield sandbox


def settings_for(sandbox: TableauSandbox) -> TableauSettings:
    """PAT settings for a serving sandbox."""
    assert sandbox.base_url is not None, "the sandbox is not serving"
    return TableauSettings(server_url=sandbox.base_url, site=sandbox.site_content_url,
                           project="Visma", pat_name=PAT_NAME, pat_secret=SecretStr(PAT_SECRET))


@pytest.fixture
def settings(served: TableauSandbox) -> TableauSettings:
    return settings_for(served)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def make_session(settings: TableauSettings, waits: Waits) -> Iterator[Callable[..., TableauSession]]:
    """TableauSession factory over the served sandbox; sessions are signed out at the end."""
    sessions: list[TableauSession] = []

    def make(tableau: TableauSettings | None = None, **options: object) -> TableauSession:
        options.setdefault("retry", RetryPolicy(attempts=4, sleep=waits))
        session = TableauSession(tableau or settings, **options)  # type: ignore[arg-type]
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def session(make_session: Callable[..., TableauSession]) -> TableauSession:
    return make_session()
