"""`TableauSandbox`: a Tableau Server stand-in that the real tableauserverclient talks to over HTTP.

    sandbox = TableauSandbox(tmp_path, pats={"ci": "s3cret"})
    with sandbox.serve() as base_url:
        server = TSC.Server(base_url, use_server_version=True)
        server.auth.sign_in(TSC.PersonalAccessTokenAuth("ci", "s3cret", site_id="demo"))
        ...
    sandbox.datasource_path("ap_invoices")   # the stored .hyper, readable with pantab

Knobs for tests and benchmarks: `throttle_next` / `throttle_every` (429 with Retry-After),
`job_delay_s`, `session_lifetime_s` and an injectable `clock`; `bytes_received` and `requests`
report what clients sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from starlette.applications import Starlette

from visma_tableau_pipeline.sandbox.server import ServerThread
from visma_tableau_pipeline.sandbox.tableau.app import build_app
from visma_tableau_pipeline.sandbox.tableau.auth import (
    DEFAULT_SESSION_LIFETIME_S,
    Authenticator,
    ConnectedApp,
)
from visma_tableau_pipeline.sandbox.tableau.datasources import DatasourceCatalog
from visma_tableau_pipeline.sandbox.tableau.directory import Directory, SandboxUser, Site
from visma_tableau_pipeline.sandbox.tableau.hyper_engine import HyperEngine
from visma_tableau_pipeline.sandbox.tableau.jobs import JobBook
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock
from visma_tableau_pipeline.sandbox.tableau.state import SandboxState, ServerVersion
from visma_tableau_pipeline.sandbox.tableau.traffic import RequestRecord, Traffic
from visma_tableau_pipeline.sandbox.tableau.webhooks import Delivery, WebhookRegistry

log = logging.getLogger(__name__)

DEMO_PAT_NAME = "vtp-sandbox"
DEMO_PAT_SECRET = "vtp-sandbox-secret"
DEMO_CONNECTED_APP = ConnectedApp(
    "vtp-sandbox-app", "vtp-sandbox-secret-id", "vtp-sandbox-connected-app-secret"
)


class TableauSandbox:
    """One Tableau site (`site_content_url`) with its users, projects, data sources and files.

    `pats` maps token name → secret (tokens belong to the first user, the site admin);
    `connected_app` enables JWT sign-in; `users` replaces the demo users (first = admin).
    """

    def __init__(
        self,
        storage_dir: Path | str,
        pats: Mapping[str, str] | None = None,
        connected_app: ConnectedApp | None = None,
        users: Sequence[SandboxUser] | None = None,
        session_lifetime_s: float = DEFAULT_SESSION_LIFETIME_S,
        site_content_url: str = "demo",
        *,
        site_name: str = "Demo",
        job_delay_s: float = 0.0,
        webhook_retry_delay_s: float = 1.0,
        version: ServerVersion = ServerVersion(),
        clock: Clock = time.time,
    ) -> None:
        self.storage_dir = Path(storage_dir)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self._pats = dict(pats) if pats is not None else {DEMO_PAT_NAME: DEMO_PAT_SECRET}
        directory = Directory(Site(site_content_url, site_name), users, clock)
        jobs = JobBook(clock, job_delay_s)
        webhooks = WebhookRegistry(directory.site.id, clock, webhook_retry_delay_s)
        self._engine = HyperEngine(self.storage_dir / "hyper-logs")
        self.state = SandboxState(
            directory=directory,
            auth=Authenticator(
                directory,
                self._pats,
                connected_app,
                session_lifetime_s,
                clock,
            ),
            datasources=DatasourceCatalog(self.storage_dir, self._engine, directory, jobs, webhooks, clock),
            jobs=jobs,
            webhooks=webhooks,
            traffic=Traffic(clock),
            clock=clock,
            version=version,
        )
        self.app: Starlette = build_app(self.state)
        self.base_url: str | None = None

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve over HTTP in a background thread; yields the base URL for `TSC.Server`.

        On exit the server stops and the sandbox closes (one `serve` per sandbox); files stay.
        """
        server = ServerThread(self.app, host, port)
        self.base_url = server.start()
        log.info("Tableau sandbox serving site %r on %s", self.site_content_url, self.base_url)
        try:
            yield self.base_url
        finally:
            server.stop()
            self.base_url = None
            self.close()

    def close(self) -> None:
        """Finish webhook deliveries and stop the Hyper process. Stored files stay."""
        self.state.webhooks.close()
        with self.state.lock:
            self._engine.close()

    @property
    def site_content_url(self) -> str:
        return self.state.directory.site.content_url

    @property
    def site_id(self) -> str:
        return self.state.directory.site.id

    @property
    def directory(self) -> Directory:
        """Users, groups and projects: `add_user`, `add_group`, `create_project`, ..."""
        return self.state.directory

    def datasource_path(self, name: str) -> Path:
        """The stored .hyper of the data source called `name` (KeyError if none or ambiguous)."""
        with self.state.lock:
            catalog = self.state.datasources
            return catalog.file_of(catalog.by_name(name))

    @property
    def bytes_received(self) -> int:
        """Request body bytes received so far (what clients sent to "Tableau")."""
        return self.state.traffic.bytes_received

    @property
    def requests(self) -> list[RequestRecord]:
        return self.state.traffic.requests

    def throttle_next(self, count: int, retry_after_s: int = 0) -> None:
        self.state.traffic.throttle_next(count, retry_after_s)

    def throttle_every(self, nth: int, retry_after_s: int = 0) -> None:
        self.state.traffic.throttle_every(nth, retry_after_s)

    def clear_faults(self) -> None:
        self.state.traffic.clear_faults()

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        return self.state.webhooks.deliveries

    def wait_for_webhooks(self) -> None:
        """Block until every webhook fired so far has been delivered (or given up on)."""
        self.state.webhooks.wait_for_deliveries()

    def settings_env(self) -> dict[str, str]:
        """The TABLEAU_* variables that point the pipeline at this sandbox (needs `serve`)."""
        if self.base_url is None:
            raise RuntimeError("the sandbox is not serving; call serve() first")
        if not self._pats:
            raise RuntimeError("the sandbox has no PAT to name; pass pats=...")
        pat_name, pat_secret = next(iter(self._pats.items()))
        return {
            "TABLEAU_SERVER_URL": self.base_url,
            "TABLEAU_SITE": self.site_content_url,
            "TABLEAU_PAT_NAME": pat_name,
            "TABLEAU_PAT_SECRET": pat_secret,
        }


@contextmanager
def serve(
    host: str = "127.0.0.1", port: int = 0, storage_dir: Path | str = ".vtp/tableau-sandbox"
) -> Iterator[TableauSandbox]:
    """The demo sandbox for `vtp sandbox`: demo PAT and Connected App, files under `storage_dir`.

    Yields the serving sandbox; its `base_url` and `settings_env()` say how to reach it.
    """
    sandbox = TableauSandbox(storage_dir, connected_app=DEMO_CONNECTED_APP)
    with sandbox.serve(host, port):
        yield sandbox
