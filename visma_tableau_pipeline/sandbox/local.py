"""Running the sandboxes for a user: in this process, or served for other processes.

When the sandbox is asked for, the pipeline reads the Visma sandbox at `VTP_SANDBOX_URL` when
that is set (for example by `vtp sandbox` in another terminal), and with `VTP_SANDBOX=1` alone
starts one inside the current process on a free port. Its data is deterministic, so every process sees the same demo
group.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from visma_tableau_pipeline.sandbox.tableau.sandbox import DEMO_PAT_NAME, DEMO_PAT_SECRET
from visma_tableau_pipeline.sandbox.tableau.sandbox import serve as serve_tableau
from visma_tableau_pipeline.sandbox.visma.demo import sandbox_companies
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import CompanySettings, TableauSettings

if TYPE_CHECKING:
    from visma_tableau_pipeline.pipeline import PipelineOutcome

log = logging.getLogger(__name__)

DEFAULT_SIZE = 300
_lock = threading.Lock()
_in_process: VismaSandbox | None = None


def sandbox_company_settings(size: int = DEFAULT_SIZE) -> list[CompanySettings]:
    """The demo companies, pointing at a running Visma sandbox (started here, of `size` supplier
    invoices, if need be)."""
    global _in_process
    url = os.environ.get("VTP_SANDBOX_URL")
    if url:
        return sandbox_companies(url)
    with _lock:
        if _in_process is None:
            _in_process = VismaSandbox(size)
            _in_process.serve()
            log.info("Visma sandbox started in this process at %s (%d supplier invoices)",
                     _in_process.base_url, size)
        return sandbox_companies(_in_process.base_url)


def tableau_sandbox_settings(base_url: str, site: str) -> TableauSettings:
    """Settings that publish to a Tableau sandbox with its demo personal access token."""
    return TableauSettings(
        server_url=base_url, site=site, project="Visma", pat_name=DEMO_PAT_NAME,
        pat_secret=DEMO_PAT_SECRET, deployment="server",
    )


def serve_forever(
    host: str, visma_port: int, tableau_port: int, size: int, announce: Callable[[str], None]
) -> None:
    """Serve both sandboxes until interrupted, and say how to point the pipeline at them."""
    visma = VismaSandbox(size)
    visma_url = visma.serve(host, visma_port)
    storage = Path(tempfile.mkdtemp(prefix="vtp-tableau-sandbox-"))
    with serve_tableau(host, tableau_port, storage) as tableau:
        exports = {"VTP_SANDBOX_URL": visma_url, **tableau.settings_env()}
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
    from visma_tableau_pipeline.pipeline import run_pipeline
    from visma_tableau_pipeline.settings import get_settings

    settings = get_settings()
    storage = settings.home / "tableau-sandbox"
    with VismaSandbox(size) as visma, serve_tableau(storage_dir=storage) as tableau:
        log.info("Visma sandbox at %s, Tableau sandbox at %s", visma.base_url, tableau.base_url)
        demo_settings = settings.model_copy(
            update={"tableau": tableau_sandbox_settings(tableau.base_url, tableau.site_content_url)}
        )
        return DemoOutcome(run_pipeline(demo_settings, companies=sandbox_companies(visma.base_url)), storage)
