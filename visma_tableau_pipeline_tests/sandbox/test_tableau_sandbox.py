"""The Tableau sandbox, driven by the real tableauserverclient over HTTP.

Each test runs its own sandbox on 127.0.0.1 (free port) with its files under tmp_path, so what
a test sees on disk is what TSC made the sandbox store.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pantab
import pyarrow as pa
import pytest
import requests
import tableauserverclient as TSC
from requests.adapters import HTTPAdapter
from tableauhyperapi import Connection, HyperProcess, SqlType, TableName, Telemetry
from tableauserverclient.server.endpoint.exceptions import (
    FailedSignInError,
    JobFailedException,
    ServerResponseError,
)
from urllib3.util.retry import Retry

from visma_tableau_pipeline.sandbox.tableau import ConnectedApp, TableauSandbox, encode_hs256_jwt

EXTRACT = TableName("Extract", "Extract")
PAT_NAME, PAT_SECRET = "ci-token", "ci-secret-value"
APP = ConnectedApp("client-123", "secret-id-456", "connected-app-secret-value-of-32-plus-bytes")


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[TableauSandbox]:
    box = TableauSandbox(tmp_path / "tableau", pats={PAT_NAME: PAT_SECRET}, connected_app=APP)
    with box.serve():
        yield box


def signed_in(base_url: str, **server_options: object) -> TSC.Server:
    server = TSC.Server(base_url, use_server_version=True, **server_options)
    server.auth.sign_in(TSC.PersonalAccessTokenAuth(PAT_NAME, PAT_SECRET, site_id="demo"))
    return server


@pytest.fixture
def server(sandbox: TableauSandbox) -> TSC.Server:
    assert sandbox.base_url is not None
    return signed_in(sandbox.base_url)


def write_hyper(path: Path, keys: list[int], amounts: list[str], names: list[str] | None = None) -> Path:
    """A one-table extract like the pipeline's: `"Extract"."Extract"` with a NUMERIC(18,2) amount."""
    table = pa.table(
        {
            "invoice_id": pa.array(keys, pa.int64()),
            "amount_base_currency": pa.array([Decimal(a) for a in amounts], pa.decimal128(18, 2)),
            "supplier": pa.array(names or [f"supplier {k}" for k in keys], pa.string()),
        }
    )
    pantab.frame_to_hyper(table, path, table=EXTRACT)
    return path


def stored_rows(sandbox: TableauSandbox, name: str) -> dict[int, tuple[Decimal, str]]:
    frame = pantab.frame_from_hyper(sandbox.datasource_path(name), table=EXTRACT, return_type="pyarrow")
    return {
        row["invoice_id"]: (row["amount_base_currency"], row["supplier"]) for row in frame.to_pylist()
    }


def publish(server: TSC.Server, path: Path, mode: str = "CreateNew", name: str = "ap_invoices") -> TSC.DatasourceItem:
    project = server.projects.filter(name="default")[0]
    return server.datasources.publish(TSC.DatasourceItem(project.id, name=name), path, mode)


# -- sign-in and sessions -------------------------------------------------------------------


def test_server_info_gives_the_rest_version_tsc_then_uses(server: TSC.Server) -> None:
    assert server.version == "3.24"
    assert server.server_info.get().product_version == "2024.2.0"


def test_pat_sign_in_returns_site_and_user(sandbox: TableauSandbox, server: TSC.Server) -> None:
    assert server.site_id == sandbox.site_id
    assert server.users.get_by_id(server.user_id).name == "admin"


def test_wrong_pat_secret_is_401001(sandbox: TableauSandbox) -> None:
    server = TSC.Server(sandbox.base_url)
    with pytest.raises(FailedSignInError) as caught:
        server.auth.sign_in(TSC.PersonalAccessTokenAuth(PAT_NAME, "wrong", site_id="demo"))
    assert caught.value.code == "401001"


def test_second_sign_in_with_the_same_pat_ends_the_first_session(sandbox: TableauSandbox) -> None:
    assert sandbox.base_url is not None
    first = signed_in(sandbox.base_url)
    second = signed_in(sandbox.base_url)
    with pytest.raises(FailedSignInError) as caught:
        first.projects.get()
    assert caught.value.code == "401002"
    assert caught.value.detail == "Invalid authentication credentials were provided."
    assert second.projects.get()[0]


def test_session_expires_after_its_lifetime(tmp_path: Path) -> None:
    clock = FakeClock()
    box = TableauSandbox(tmp_path, pats={PAT_NAME: PAT_SECRET}, session_lifetime_s=120 * 60, clock=clock)
    with box.serve() as base_url:
        server = signed_in(base_url)
        clock.now += 119 * 60
        assert server.projects.get()[0]
        clock.now += 2 * 60
        with pytest.raises(FailedSignInError) as caught:
            server.projects.get()
    assert caught.value.code == "401002"


def connected_app_jwt(expires_in_s: int = 300, secret: str = APP.secret_value, sub: str = "analyst") -> str:
    claims = {
        "iss": APP.client_id,
        "sub": sub,
        "aud": "tableau",
        "exp": int(time.time()) + expires_in_s,
        "jti": str(uuid.uuid4()),
        "scp": ["tableau:content:read", "tableau:datasources:create"],
    }
    return encode_hs256_jwt(claims, secret, headers={"kid": APP.secret_id, "iss": APP.client_id})


def test_connected_app_jwt_signs_in_as_its_subject(sandbox: TableauSandbox) -> None:
    server = TSC.Server(sandbox.base_url, use_server_version=True)
    server.auth.sign_in(TSC.JWTAuth(connected_app_jwt(), site_id="demo"))
    assert server.users.get_by_id(server.user_id).name == "analyst"


@pytest.mark.parametrize(
    "token_args",
    [{"secret": "not-the-app-secret"}, {"expires_in_s": 20 * 60}, {"expires_in_s": -5}, {"sub": "nobody"}],
    ids=["bad-signature", "exp-over-10-minutes", "expired", "unknown-user"],
)
def test_connected_app_jwt_is_refused_when_invalid(sandbox: TableauSandbox, token_args: dict) -> None:
    server = TSC.Server(sandbox.base_url, use_server_version=True)
    with pytest.raises(FailedSignInError) as caught:
        server.auth.sign_in(TSC.JWTAuth(connected_app_jwt(**token_args), site_id="demo"))
    assert caught.value.code == "401001"


def test_password_sign_in_and_sign_out(sandbox: TableauSandbox) -> None:
    server = TSC.Server(sandbox.base_url, use_server_version=True)
    server.auth.sign_in(TSC.TableauAuth("analyst", "analyst", site_id="demo"))
    token = server.auth_token
    server.auth.sign_out()
    server._set_auth(sandbox.site_id, None, token)
    with pytest.raises(FailedSignInError):
        server.projects.get()


# -- projects and publishing ----------------------------------------------------------------


def test_create_project_and_page_through_projects(server: TSC.Server) -> None:
    for name in ("Visma", "Finance", "Archive"):
        server.projects.create(TSC.ProjectItem(name))
    first_page, pagination = server.projects.get(TSC.RequestOptions(pagenumber=1, pagesize=2))
    assert len(first_page) == 2 and pagination.total_available == 4
    assert {p.name for p in TSC.Pager(server.projects, TSC.RequestOptions(pagesize=2))} == {
        "default", "Visma", "Finance", "Archive"
    }
    with pytest.raises(ServerResponseError) as caught:
        server.projects.create(TSC.ProjectItem("Visma"))
    assert caught.value.code == "409006"


def test_publish_create_new_stores_the_real_hyper_file(
    sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path
) -> None:
    source = write_hyper(tmp_path / "ap.hyper", [1, 2], ["100.10", "-3.30"])
    item = publish(server, source)
    assert item.name == "ap_invoices" and item.project_name == "default"
    assert server.datasources.get_by_id(item.id).name == "ap_invoices"
    assert stored_rows(sandbox, "ap_invoices") == {
        1: (Decimal("100.10"), "supplier 1"),
        2: (Decimal("-3.30"), "supplier 2"),
    }
    hyper_options = {"log_dir": str(tmp_path)}
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters=hyper_options) as hyper:
        with Connection(hyper.endpoint, sandbox.datasource_path("ap_invoices")) as connection:
            columns = connection.catalog.get_table_definition(EXTRACT).columns
    assert columns[1].type == SqlType.numeric(18, 2)


def test_publish_create_new_twice_is_a_409004_conflict(server: TSC.Server, tmp_path: Path) -> None:
    source = write_hyper(tmp_path / "ap.hyper", [1], ["1.00"])
    publish(server, source)
    with pytest.raises(ServerResponseError) as caught:
        publish(server, source)
    assert caught.value.code == "409004"


def test_publish_overwrite_replaces_and_append_adds_rows(
    sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path
) -> None:
    first = publish(server, write_hyper(tmp_path / "a.hyper", [1, 2], ["1.00", "2.00"]))
    overwritten = publish(server, write_hyper(tmp_path / "b.hyper", [3], ["3.00"]), "Overwrite")
    assert overwritten.id == first.id
    assert set(stored_rows(sandbox, "ap_invoices")) == {3}
    publish(server, write_hyper(tmp_path / "c.hyper", [4, 5], ["4.40", "5.50"]), "Append")
    assert stored_rows(sandbox, "ap_invoices") == {
        3: (Decimal("3.00"), "supplier 3"),
        4: (Decimal("4.40"), "supplier 4"),
        5: (Decimal("5.50"), "supplier 5"),
    }
    assert [d.name for d in TSC.Pager(server.datasources)] == ["ap_invoices"]


def test_publish_of_a_file_that_is_not_hyper_is_refused(server: TSC.Server, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.hyper"
    bogus.write_bytes(b"not a hyper database" * 100)
    with pytest.raises(ServerResponseError) as caught:
        publish(server, bogus)
    assert caught.value.code == "400011"


def test_chunked_publish_goes_through_file_uploads(
    sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TSC switches to fileUploads at 64 MB; its own settings bring that down to 1 MB here."""
    monkeypatch.setenv("TSC_FILESIZE_LIMIT_MB", "1")
    monkeypatch.setenv("TSC_CHUNK_SIZE_MB", "1")
    count = 150_000
    source = write_hyper(
        tmp_path / "big.hyper", list(range(count)), [f"{k}.25" for k in range(count)],
        [f"supplier number {k:08d}" for k in range(count)],
    )
    assert source.stat().st_size > 2 * 1024 * 1024
    publish(server, source, name="big")
    chunk_puts = [r for r in sandbox.requests if r.method == "PUT" and "/fileUploads/" in r.path]
    assert len(chunk_puts) >= 3
    assert sandbox.datasource_path("big").read_bytes() == source.read_bytes()
    assert sandbox.bytes_received > source.stat().st_size


def test_delete_datasource_removes_the_file(sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path) -> None:
    item = publish(server, write_hyper(tmp_path / "a.hyper", [1], ["1.00"]))
    stored = sandbox.datasource_path("ap_invoices")
    server.datasources.delete(item.id)
    assert not stored.exists()
    with pytest.raises(ServerResponseError) as caught:
        server.datasources.get_by_id(item.id)
    assert caught.value.code == "404011"


# -- incremental updates and jobs -----------------------------------------------------------

UPSERT_BY_KEY = {
    "action": "upsert",
    "source-schema": "Extract",
    "source-table": "Extract",
    "target-schema": "Extract",
    "target-table": "Extract",
    "condition": {"op": "eq", "source-col": "invoice_id", "target-col": "invoice_id"},
}


def test_update_hyper_data_applies_upsert_delete_and_insert(
    sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path
) -> None:
    item = publish(server, write_hyper(tmp_path / "a.hyper", [1, 2, 3], ["1.00", "2.00", "3.00"]))
    delta = write_hyper(tmp_path / "delta.hyper", [2, 4], ["20.20", "-40.05"], ["changed", "new"])
    actions = [
        UPSERT_BY_KEY,
        {
            "action": "delete",
            "target-schema": "Extract",
            "target-table": "Extract",
            "condition": {"op": "lt", "target-col": "amount_base_currency", "const": {"type": "numeric", "v": "1.50"}},
        },
    ]
    job = server.datasources.update_hyper_data(item, request_id="req-1", actions=actions, payload=delta)
    assert job.type == "UpdateUploadedFile"
    server.jobs.wait_for_job(job)
    assert stored_rows(sandbox, "ap_invoices") == {
        2: (Decimal("20.20"), "changed"),
        3: (Decimal("3.00"), "supplier 3"),
    }
    insert = [{"action": "insert", "source-table": "Extract", "target-table": "Extract"}]
    more = write_hyper(tmp_path / "more.hyper", [7], ["7.70"])
    server.jobs.wait_for_job(server.datasources.update_hyper_data(item, request_id="req-2", actions=insert, payload=more))
    assert set(stored_rows(sandbox, "ap_invoices")) == {2, 3, 7}


def test_the_same_request_id_applies_once(sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path) -> None:
    item = publish(server, write_hyper(tmp_path / "a.hyper", [1], ["1.00"]))
    insert = [{"action": "insert", "source-table": "Extract", "target-table": "Extract"}]
    delta = write_hyper(tmp_path / "delta.hyper", [2], ["2.00"])
    first = server.datasources.update_hyper_data(item, request_id="same", actions=insert, payload=delta)
    again = server.datasources.update_hyper_data(item, request_id="same", actions=insert, payload=delta)
    assert again.id == first.id
    frame = pantab.frame_from_hyper(sandbox.datasource_path("ap_invoices"), table=EXTRACT)
    assert sorted(frame["invoice_id"]) == [1, 2]


def test_a_failing_action_rolls_back_the_whole_request(
    sandbox: TableauSandbox, server: TSC.Server, tmp_path: Path
) -> None:
    item = publish(server, write_hyper(tmp_path / "a.hyper", [1, 2], ["1.00", "2.00"]))
    delta = write_hyper(tmp_path / "delta.hyper", [3], ["3.00"])
    actions = [
        {"action": "insert", "source-table": "Extract", "target-table": "Extract"},
        {"action": "delete", "target-table": "Extract", "condition": {"op": "eq", "target-col": "no_such_column", "const": {"type": "integer", "v": 1}}},
    ]
    job = server.datasources.update_hyper_data(item, request_id="bad", actions=actions, payload=delta)
    with pytest.raises(JobFailedException) as caught:
        server.jobs.wait_for_job(job)
    assert "no_such_column" in caught.value.notes[0]
    assert set(stored_rows(sandbox, "ap_invoices")) == {1, 2}


def test_wait_for_job_polls_until_the_job_completes(tmp_path: Path) -> None:
    box = TableauSandbox(tmp_path, pats={PAT_NAME: PAT_SECRET}, job_delay_s=0.3)
    with box.serve() as base_url:
        server = signed_in(base_url)
        item = publish(server, write_hyper(tmp_path / "a.hyper", [1], ["1.00"]))
        job = server.datasources.refresh(item)
        assert job.completed_at is None
        done = server.jobs.wait_for_job(job, timeout=10)
        polls = [r for r in box.requests if r.path.endswith(f"/jobs/{job.id}")]
    assert done.finish_code == 0 and done.completed_at is not None
    assert len(polls) >= 2


# -- throttling, directory, webhooks, what is never served ------------------------------------


def test_429_then_success_when_the_client_retries(sandbox: TableauSandbox) -> None:
    assert sandbox.base_url is not None
    server = signed_in(sandbox.base_url)
    sandbox.throttle_next(1)
    with pytest.raises(ServerResponseError) as caught:
        server.projects.get()
    assert caught.value.code == "429000"

    def retrying_session() -> requests.Session:
        session = requests.Session()
        retry = Retry(total=3, status_forcelist=[429], allowed_methods=None, backoff_factor=0, raise_on_status=False)
        session.mount("http://", HTTPAdapter(max_retries=retry))
        return session

    patient = signed_in(sandbox.base_url, session_factory=retrying_session)
    sandbox.throttle_next(2)
    assert patient.projects.get()[0]
    last = [(r.status, r.throttled) for r in sandbox.requests if r.path.endswith("/projects")][-3:]
    assert last == [(429, True), (429, True), (200, False)]


def test_every_nth_request_is_throttled(sandbox: TableauSandbox, server: TSC.Server) -> None:
    sandbox.throttle_every(3)
    outcomes = []
    for _ in range(6):
        try:
            server.projects.get()
            outcomes.append("ok")
        except ServerResponseError:
            outcomes.append("429")
    assert outcomes == ["ok", "ok", "429", "ok", "ok", "429"]


def test_users_and_groups_list_with_roles_and_members(sandbox: TableauSandbox, server: TSC.Server) -> None:
    sandbox.directory.add_user("auditor", "Viewer", "auditor@demo.example")
    users = {u.name: u for u in TSC.Pager(server.users)}
    assert users["admin"].site_role == "SiteAdministratorCreator"
    assert users["auditor"].email == "auditor@demo.example"
    added = server.users.add(TSC.UserItem("controller", "Explorer"))
    finance = server.groups.filter(name="Finance")[0]
    server.groups.add_user(finance, added.id)
    server.groups.populate_users(finance)
    assert {u.name for u in finance.users} == {"analyst", "viewer", "controller"}
    assert {g.name for g in TSC.Pager(server.groups)} >= {"All Users", "Finance", "Data Engineering"}


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    arrived = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        type(self).arrived.set()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "arrived": threading.Event()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks/long-secret", handler.received
    finally:
        httpd.shutdown()


def test_webhooks_fire_to_their_destination(
    sandbox: TableauSandbox, server: TSC.Server, receiver: tuple[str, list[dict]], tmp_path: Path
) -> None:
    url, received = receiver
    for event in ("datasource-created", "datasource-refresh-succeeded"):
        hook = TSC.WebhookItem()
        hook.name, hook.url, hook.event = f"on {event}", url, event
        server.webhooks.create(hook)
    listed = {w.event for w in server.webhooks.get()[0]}
    assert listed == {"datasource-created", "datasource-refresh-succeeded"}
    item = publish(server, write_hyper(tmp_path / "a.hyper", [1], ["1.00"]))
    server.datasources.refresh(item)
    sandbox.wait_for_webhooks()
    assert [(p["event_type"], p["resource_luid"]) for p in received] == [
        ("DatasourceCreated", item.id),
        ("DatasourceRefreshSucceeded", item.id),
    ]
    assert received[0]["resource"] == "DATASOURCE" and received[0]["site_luid"] == sandbox.site_id
    assert received[0]["resource_name"] == "ap_invoices" and received[0]["created_at"].endswith("Z")
    for webhook in server.webhooks.get()[0]:
        server.webhooks.delete(webhook.id)
    assert server.webhooks.get()[0] == []


def test_views_are_never_served(server: TSC.Server) -> None:
    with pytest.raises(ServerResponseError) as caught:
        server.views.get()
    assert caught.value.code == "404003"
