"""The sandboxes for a user: served for other processes (`vtp sandbox`), or the whole demo
(`vtp demo`) in this process."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from visma_tableau_pipeline.pipeline import PipelineOutcome, run_pipeline
from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox
from visma_tableau_pipeline.sandbox.tableau.sandbox import serve as serve_tableau
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.size import CLIENT_COMPANY_SIZE
from visma_tableau_pipeline.settings import TableauSettings, get_settings, sandbox_companies

log = logging.getLogger(__name__)


def tableau_sandbox_settings(tableau: TableauSandbox) -> TableauSettings:
    """Settings that publish to a serving Tableau sandbox with its demo personal access token."""
    env = tableau.settings_env()
    return TableauSettings(
        server_url=env["TABLEAU_SERVER_URL"], site=env["TABLEAU_SITE"], project="Visma",
        pat_name=env["TABLEAU_PAT_NAME"], pat_secret=SecretStr(env["TABLEAU_PAT_SECRET"]), deployment="server",
    )


def serve_forever(
    host: str, visma_port: int, tableau_port: int, size: int, announce: Callable[[str], None],
    client_companies: int = 0, client_size: int = CLIENT_COMPANY_SIZE.supplier_invoices,
) -> None:
    """Serve both sandboxes until interrupted, and say how to point the pipeline at them."""
    visma = VismaSandbox(size, client_companies=client_companies, client_size=client_size)
    visma_url = visma.serve(host, visma_port)
    storage = Path(tempfile.mkdtemp(prefix="vtp-tableau-sandbox-"))
    with serve_tableau(host, tableau_port, storage) as tableau:
        clients = {"VTP_SANDBOX_COMPANIES": str(client_companies)} if client_companies else {}
        exports = {"VTP_SANDBOX_URL": visma_url, **clients, **tableau.settings_env()}
        announce(
            "Visma and Tableau sandboxes are running. In another shell:\n"
            + "".join(f"  export {name}={value}\n" for name, value in exports.items())
            + "  vtp sync          # or: dagster dev\n"
            "Leave VISMA_CLIENT_ID unset: with VTP_SANDBOX_URL the pipeline reads the sandbox. Ctrl-C stops."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            visma.stop()


@dataclass(frozen=True)
class DemoOutcome:
    """What the demo did, and where a newcomer looks next."""

    pipeline: PipelineOutcome
    tableau_storage: Path  # the Tableau sandbox's published .hyper files, kept after the demo

    def summary(self) -> str:
        """The run's summary, then where to look: the demo's sandboxes stop with it, so the
        next steps name what stays (Dagster on the same state, the extracts, the published files)
        and how to serve a Tableau sandbox that stays up."""
        return "\n".join([
            self.pipeline.summary(),
            "",
            "Where to look next:",
            "  Dagster:  VTP_SANDBOX=1 .venv/bin/dagster dev   (from the repository root; open http://127.0.0.1:3000)",
            f"  Extracts: {self.pipeline.extracts_dir} (one .hyper per table: open one in Tableau Desktop)",
            f"  Tableau:  the demo's Tableau sandbox stopped with it; what it published is in {self.tableau_storage}.",
            "            `vtp sandbox` serves one that stays up, at http://127.0.0.1:8766 (and Visma at :8765);",
            "            export the variables it prints, then `vtp sync` publishes to it.",
        ])


def run_demo(size: int) -> DemoOutcome:
    """Both sandboxes in this process, then the whole pipeline: sync, extracts, publish."""
    settings = get_settings()
    storage = settings.home / "tableau-sandbox"
    with VismaSandbox(size) as visma, serve_tableau(storage_dir=storage) as tableau:
        log.info("Visma sandbox at %s, Tableau sandbox at %s", visma.base_url, tableau.base_url)
        demo_settings = settings.model_copy(
            update={"tableau": tableau_sandbox_settings(tableau)}
        )
        return DemoOutcome(run_pipeline(demo_settings, companies=sandbox_companies(visma.base_url)), storage)
