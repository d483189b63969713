"""Which Visma companies this process reads: the configured ones, or the demo sandbox's.

Settings say *whether* the sandbox is the target (VTP_SANDBOX=1 or VTP_SANDBOX_URL); starting
one in this process when no URL is given is done here, above both settings and the sandbox.
Its data is deterministic, so every process sees the same demo group. The sandbox is imported
only then: a deployment reading the real Visma never loads it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from visma_tableau_pipeline.settings import (
    NOTHING_TO_READ,
    CompanySettings,
    ConfigError,
    Settings,
    sandbox_companies,
)

if TYPE_CHECKING:
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox

log = logging.getLogger(__name__)

_lock = threading.Lock()
_in_process: VismaSandbox | None = None


def resolved_companies(settings: Settings) -> list[CompanySettings]:
    """The companies to read, with the sandbox started in this process when it is the target.

    Raises ConfigError naming the settings when no company is configured and the sandbox was
    not asked for.
    """
    if not settings.sandbox:
        if not settings.companies:
            raise ConfigError(NOTHING_TO_READ)
        return settings.companies
    return sandbox_company_settings(settings.sandbox_size, settings.sandbox_companies)


def sandbox_company_settings(size: int, client_companies: int = 0) -> list[CompanySettings]:
    """The demo companies (and `client_companies` generated ones), pointing at a running Visma
    sandbox (VTP_SANDBOX_URL, else one started here with `size` supplier invoices)."""
    global _in_process
    url = os.environ.get("VTP_SANDBOX_URL")
    if url:
        return sandbox_companies(url, client_companies)
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox  # only when asked for

    with _lock:
        if _in_process is None:
            _in_process = VismaSandbox(size, client_companies=client_companies)
            _in_process.serve()
            log.info("Visma sandbox started in this process at %s (%d supplier invoices)",
                     _in_process.base_url, size)
        return sandbox_companies(_in_process.base_url, client_companies)
