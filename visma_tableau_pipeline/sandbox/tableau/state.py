"""Everything one sandbox server holds, built once by `TableauSandbox` and shared by the routes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from visma_tableau_pipeline.sandbox.tableau.auth import Authenticator
from visma_tableau_pipeline.sandbox.tableau.datasources import DatasourceCatalog
from visma_tableau_pipeline.sandbox.tableau.directory import Directory
from visma_tableau_pipeline.sandbox.tableau.jobs import JobBook
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock
from visma_tableau_pipeline.sandbox.tableau.traffic import Traffic
from visma_tableau_pipeline.sandbox.tableau.webhooks import WebhookRegistry


@dataclass(frozen=True)
class ServerVersion:
    product_version: str = "2024.2.0"
    build: str = "20242.24.0711.1636"
    rest_api_version: str = "3.24"


@dataclass
class SandboxState:
    directory: Directory
    auth: Authenticator
    datasources: DatasourceCatalog
    jobs: JobBook
    webhooks: WebhookRegistry
    traffic: Traffic
    clock: Clock
    version: ServerVersion = ServerVersion()
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held by every request's work: the records and the Hyper engine are not thread-safe."""
