"""Sign-in and session care against the Tableau sandbox, over HTTP with the real TSC."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tableauserverclient as TSC
from pydantic import SecretStr

from visma_tableau_pipeline.sandbox.tableau import TableauSandbox, hs256
from visma_tableau_pipeline.settings import TableauSettings
from visma_tableau_pipeline.tableau.connected_app import connected_app_jwt
from visma_tableau_pipeline.tableau.errors import (
    TableauConfigError,
    TableauSignInError,
    TableauUnavailable,
)
from visma_tableau_pipeline.tableau.pat import PatUsageFile
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession
from visma_tableau_pipeline_tests.tableau.asgi import DropFirst, FailFirst
from visma_tableau_pipeline_tests.tableau.conftest import (
    APP,
    PAT_NAME,
    PAT_SECRET,
    Waits,
    settings_for,
)

SessionFactory = Callable[..., TableauSession]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def project_names(server: TSC.Server) -> list[str]:
    return [p.name.lower() for p in TSC.Pager(server.projects)]


def unauthorized(sandbox: TableauSandbox) -> list[str]:
    return [r.path for r in sandbox.requests if r.status == 401]


def test_pat_sign_in_reaches_the_configured_site(session: TableauSession, served: TableauSandbox,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert session.call(lambda server: server.site_id) == served.site_id
    assert "default" in session.call(project_names)
    assert session.sign_ins == 1
    assert PAT_SECRET not in caplog.text


@pytest.mark.parametrize("change", [{"site": "no-such-site"},
                                    {"pat_secret": SecretStr("wrong-secret-value")}])
def test_refused_sign_in_says_where_and_how_without_the_secret(
    settings: TableauSettings, make_session: SessionFactory, change: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = make_session(settings.model_copy(update=change))
    with pytest.raises(TableauSignInError) as refused:
        session.call(project_names)
    message = str(refused.value)
    assert settings.server_url in message and PAT_NAME in message
    assert PAT_SECRET not in message and "wrong-secret-value" not in message + caplog.text


def test_entering_the_session_signs_in_and_leaving_signs_out(settings: TableauSettings,
                                                             served: TableauSandbox) -> None:
    with TableauSession(settings) as session:
        assert session.sign_ins == 1 and session.server.version != "2.4"  # asked the server
    assert [r.path.rsplit("/", 1)[-1] for r in served.requests][-1] == "signout"
    with pytest.raises(TableauSignInError):
        with TableauSession(settings.model_copy(update={"site": "elsewhere"})):
            pass


def test_settings_without_credentials_are_refused(settings: TableauSettings) -> None:
    with pytest.raises(TableauConfigError, match="TABLEAU_PAT_NAME"):
        TableauSession(settings.model_copy(update={"pat_name": None, "pat_secret": None}))


def test_connected_app_jwt_signs_in_as_the_configured_user(
    settings: TableauSettings, make_session: SessionFactory, served: TableauSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app_settings = settings.model_copy(update={
        "pat_name": None, "pat_secret": None, "username": "pipeline",
        "connected_app_client_id": APP.client_id, "connected_app_secret_id": APP.secret_id,
        "connected_app_secret_value": SecretStr(APP.secret_value),
    })
    session = make_session(app_settings)
    user_id = session.call(lambda server: server.user_id)
    assert session.call(lambda server: server.users.get_by_id(user_id).name) == "pipeline"
    assert APP.secret_value not in caplog.text

    token = connected_app_jwt(app_settings, 1_700_000_000)
    header, claims = hs256.unverified_header(token), hs256.verify(token, APP.secret_value)
    assert header["kid"] == APP.secret_id and header["iss"] == APP.client_id
    assert claims["aud"] == "tableau" and claims["sub"] == "pipeline"
    assert 1_700_000_000 < claims["exp"] <= 1_700_000_000 + 600
    assert "tableau:datasources:overwrite" in claims["scp"] and claims["jti"]
    assert connected_app_jwt(app_settings, 1_700_000_000) != token  # a fresh jti every time


def test_session_ended_by_another_sign_in_with_the_same_pat_recovers(
    session: TableauSession, served: TableauSandbox,
) -> None:
    session.call(project_names)
    intruder = TSC.Server(served.base_url, use_server_version=True)
    intruder.auth.sign_in(TSC.PersonalAccessTokenAuth(PAT_NAME, PAT_SECRET, site_id=served.site_content_url))
    assert "default" in session.call(project_names)
    assert session.sign_ins == 2
    assert len(unauthorized(served)) == 1  # one 401002, then the retry on a new session


@pytest.mark.parametrize("deployment, fresh_min, stale_min", [("server", 229, 231),
                                                              ("cloud", 109, 111)])
def test_session_is_renewed_shortly_before_its_age_limit(
    settings: TableauSettings, make_session: SessionFactory, served: TableauSandbox,
    deployment: str, fresh_min: int, stale_min: int,
) -> None:
    clock = FakeClock()
    session = make_session(settings.model_copy(update={"deployment": deployment}), clock=clock)
    session.call(project_names)
    clock.now += fresh_min * 60
    session.call(project_names)
    assert session.sign_ins == 1
    clock.now += (stale_min - fresh_min) * 60
    session.call(project_names)
    assert session.sign_ins == 2 and unauthorized(served) == []


def test_throttled_requests_are_retried_after_the_wait_tableau_asks_for(
    session: TableauSession, served: TableauSandbox, waits: Waits,
) -> None:
    session.call(project_names)
    served.throttle_next(2, retry_after_s=7)
    assert "default" in session.call(project_names)
    assert len(waits) == 2 and all(wait >= 7 for wait in waits)
    assert sum(r.throttled for r in served.requests) == 2


def test_throttling_beyond_the_retry_budget_raises(
    make_session: SessionFactory, served: TableauSandbox, waits: Waits,
) -> None:
    session = make_session(retry=RetryPolicy(attempts=3, sleep=waits))
    served.throttle_next(5)
    with pytest.raises(TableauUnavailable, match="429"):
        session.call(project_names)
    assert len(waits) == 2


def test_server_errors_are_retried(sandbox: TableauSandbox, waits: Waits) -> None:
    sandbox.app = FailFirst(sandbox.app, lambda method, path: path.endswith("/projects"), 503, 2)
    with sandbox.serve():
        with TableauSession(settings_for(sandbox), retry=RetryPolicy(sleep=waits)) as session:
            assert "default" in session.call(project_names)
    assert len(waits) == 2


def test_answers_dropped_half_way_are_retried(sandbox: TableauSandbox, waits: Waits) -> None:
    sandbox.app = DropFirst(sandbox.app, lambda method, path: path.endswith("/projects"), 2)
    with sandbox.serve():
        with TableauSession(settings_for(sandbox), retry=RetryPolicy(sleep=waits)) as session:
            assert "default" in session.call(project_names)
    assert len(waits) == 2


def test_tableau_that_never_recovers_is_one_typed_error(sandbox: TableauSandbox, waits: Waits) -> None:
    sandbox.app = FailFirst(sandbox.app, lambda method, path: path.endswith("/projects"), 503, 99)
    with sandbox.serve():
        with TableauSession(settings_for(sandbox), retry=RetryPolicy(sleep=waits)) as session:
            with pytest.raises(TableauUnavailable, match=r"HTTP 503 .* through 8 attempts; check Tableau"):
                session.call(project_names)
    assert len(waits) == 7


def test_successful_pat_sign_in_is_recorded_for_expiry_tracking(
    make_session: SessionFactory, tmp_path: Path,
) -> None:
    usage = PatUsageFile(tmp_path / "usage.json")
    session = make_session(pat_usage=usage, wall_clock=lambda: 1_750_000_000.0)
    session.call(project_names)
    assert usage.last_used(PAT_NAME) == datetime.fromtimestamp(1_750_000_000, UTC)
