"""Fixtures shared by every test folder.

`db` is an empty state database on SQLite and on the machine's PostgreSQL in turn. PostgreSQL
tests run in a database of their own (CREATE DATABASE vtp_test_<random>, dropped at the end), so
they never touch other users of the `test` database; with VTP_REQUIRE_POSTGRES set (as in CI) an
unreachable server fails them instead of skipping them.

Property tests (hypothesis) run the settings profile named by HYPOTHESIS_PROFILE: `ci` (the
default: 200 examples, what every test run does) or `long` (2,000 examples with longer runs of
steps, for a search before a release or after a change to paging or reconciliation).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from visma_tableau_pipeline.state import StateDB

# Tests read the bundled sandbox unless they set credentials; it must be asked for (as a user
# does with VTP_SANDBOX=1), since a missing credential never falls back to it.
os.environ.setdefault("VTP_SANDBOX", "1")
from visma_tableau_pipeline.state.schema import metadata

settings.register_profile("ci", max_examples=200, stateful_step_count=8, deadline=None, print_blob=True,
                          derandomize=True)  # CI draws the same examples every run; `long` explores
settings.register_profile("long", max_examples=2000, stateful_step_count=16, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# the `home` fixture (a fresh VTP_HOME) for every test that runs `vtp`; `s3` and `s3_bucket`, an
# S3-compatible server for the extracts shared between machines
pytest_plugins = ["visma_tableau_pipeline_tests.cli_support", "visma_tableau_pipeline_tests.s3_server"]

OPENAPI_PATH = Path(__file__).parent / "reference" / "visma-net-erp-openapi-2025-04-24.json"


@pytest.fixture(scope="session")
def openapi() -> dict:
    """Visma's own OpenAPI document (a copy of the public 2025-04-24 version): the contract."""
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


ADMIN_URL = os.environ.get(
    "VTP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throw-away PostgreSQL database for this test session."""
    admin = create_engine(
        ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"vtp_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL at {ADMIN_URL} is not reachable: {exc.orig}"
        if os.environ.get("VTP_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDB]:
    """An empty state database, on each backend in turn."""
    if request.param == "sqlite":
        state = StateDB(f"sqlite:///{tmp_path / 'home' / 'state.db'}")
        yield state
        state.dispose()
        return
    state = StateDB(request.getfixturevalue("postgres_url"))
    try:
        yield state
    finally:
        metadata.drop_all(state.engine)
        state.dispose()
