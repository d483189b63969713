"""Short outages are ridden out within a bounded, logged budget; longer ones end in one message.

Visma: the sandbox on a real socket answers 503s or drops connections mid-answer, by request
number. PostgreSQL: a TCP proxy in front of the real server refuses or drops connections, then
forwards. Commands run as a user runs them; retry waits are shortened through the settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from visma_tableau_pipeline.sandbox.visma import FaultPlan, VismaSandbox
from visma_tableau_pipeline.settings import SANDBOX_CLIENT_SECRET
from visma_tableau_pipeline.state import StateDB, StateUnavailableError
from visma_tableau_pipeline.state.schema import metadata
from visma_tableau_pipeline_tests.cli_support import assert_one_clear_message, vtp
from visma_tableau_pipeline_tests.tcp_proxy import TcpProxy, proxy_to

AS_OF = "2026-11-24"
PASSWORD = "hunter2-never-shown"


@pytest.fixture
def visma(home, monkeypatch) -> Iterator[VismaSandbox]:
    """The Visma sandbox as the sync's target, with retry waits of milliseconds."""
    with VismaSandbox(20, seed=3) as sandbox:
        monkeypatch.setenv("VTP_SANDBOX_URL", sandbox.base_url)
        monkeypatch.setenv("VTP_FIRST_MONTH", "2026-10-01")
        monkeypatch.setenv("VTP_RETRY_BACKOFF_SECONDS", "0.01")
        yield sandbox


def retries_logged(caplog: pytest.LogCaptureFixture, what: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and what in r.getMessage()]


def test_ten_503s_in_a_row_from_visma_are_ridden_out(visma, caplog):
    visma.faults = FaultPlan(error_burst_start=2, error_burst_length=10)  # one request, ten times
    caplog.set_level(logging.INFO)
    result = vtp("sync", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert "Visma records read" in result.output
    retries = retries_logged(caplog, "retrying Visma call")
    assert len(retries) == 10
    for message in retries:
        assert "HTTP 503" in message and "company nordic-no" in message and "entity " in message
    assert SANDBOX_CLIENT_SECRET not in caplog.text + result.output


def test_visma_that_never_recovers_ends_in_one_message(visma, monkeypatch, caplog):
    visma.faults = FaultPlan(error_every=1)
    monkeypatch.setenv("VTP_VISMA_RETRY_SECONDS", "1")
    result = vtp("sync", "--as-of", AS_OF)
    message = assert_one_clear_message(
        result, "vtp sync failed", "Visma answered with a server error", "company nordic-no",
        "entity financial_periods", "HTTP 503", "attempts", "Run the sync again later",
    )
    assert SANDBOX_CLIENT_SECRET not in message + caplog.text


def test_connections_dropped_mid_answer_by_visma_are_retried(visma, caplog):
    visma.faults = FaultPlan(drop_at=(2, 3, 7))
    caplog.set_level(logging.INFO)
    result = vtp("sync", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    retries = retries_logged(caplog, "retrying Visma call")
    assert len(retries) == 3 and all("the network failed" in m for m in retries)


@pytest.fixture
def postgres_behind_proxy(postgres_url: str) -> Iterator[tuple[TcpProxy, URL]]:
    """A proxy to the test PostgreSQL server (refusing until brought up), and the URL through it
    with a password (trust auth ignores it) that must never be shown."""
    real = make_url(postgres_url)
    with proxy_to(real.host or "127.0.0.1", real.port or 5432) as proxy:
        yield proxy, real.set(host="127.0.0.1", port=proxy.port, password=PASSWORD)
    cleanup = StateDB(postgres_url)
    metadata.drop_all(cleanup.engine)
    cleanup.dispose()


def test_a_command_waits_for_postgresql_to_come_back(home, postgres_behind_proxy, monkeypatch, caplog):
    proxy, url = postgres_behind_proxy
    monkeypatch.setenv("VTP_STATE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("VTP_RETRY_BACKOFF_SECONDS", "0.01")
    assert vtp("secrets", "init").exit_code == 0
    proxy.drop_next(4)  # a server restarting: four connections closed at once, then it serves
    caplog.set_level(logging.INFO)
    result = vtp("secrets", "list")
    assert result.exit_code == 0, result.output
    assert proxy.dropped == 4
    retries = retries_logged(caplog, "state database")
    assert len(retries) == 4 and all(f"127.0.0.1:{proxy.port}" in m for m in retries)
    assert PASSWORD not in caplog.text + result.output


def test_postgresql_that_stays_down_ends_in_one_message(home, postgres_behind_proxy, monkeypatch, caplog):
    proxy, url = postgres_behind_proxy  # never brought up: connections are refused
    monkeypatch.setenv("VTP_STATE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("VTP_STATE_RETRY_SECONDS", "0.5")
    monkeypatch.setenv("VTP_RETRY_BACKOFF_SECONDS", "0.01")
    vtp("secrets", "init")
    message = assert_one_clear_message(
        vtp("secrets", "list"), "vtp secrets failed", f"postgres:***@127.0.0.1:{proxy.port}/",
        "could not be reached", "check that the PostgreSQL server is running",
    )
    assert PASSWORD not in message + caplog.text


def test_a_restart_between_transactions_is_ridden_out(postgres_behind_proxy, caplog):
    proxy, url = postgres_behind_proxy
    proxy.up()
    db = StateDB(url.render_as_string(hide_password=False), backoff_s=0.01)
    with db.transaction() as conn:
        conn.execute(text("SELECT 1"))
    proxy.cut()  # the server restarts: the pooled connection is dead ...
    proxy.drop_next(3)  # ... and it takes a few attempts to come back
    caplog.set_level(logging.WARNING)
    with db.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert proxy.dropped == 3 and len(retries_logged(caplog, "state database")) == 3
    db.dispose()


def test_a_connection_lost_inside_a_transaction_is_a_typed_error(postgres_behind_proxy):
    proxy, url = postgres_behind_proxy
    proxy.up()
    db = StateDB(url.render_as_string(hide_password=False), backoff_s=0.01)
    with pytest.raises(StateUnavailableError, match="lost during a transaction") as lost:
        with db.transaction() as conn:
            conn.execute(text("SELECT 1"))
            proxy.cut()
            conn.execute(text("SELECT 1"))
    assert PASSWORD not in str(lost.value) and f"127.0.0.1:{proxy.port}" in str(lost.value)
    db.dispose()
