"""The Tableau REST sandbox: a real HTTP server in Tableau's wire format, with real .hyper files.

See `sandbox.TableauSandbox` for use; `serve` runs the demo site for `vtp sandbox`.
"""

from visma_tableau_pipeline.sandbox.tableau.auth import ConnectedApp
from visma_tableau_pipeline.sandbox.tableau.directory import SandboxUser
from visma_tableau_pipeline.sandbox.tableau.hs256 import encode as encode_hs256_jwt
from visma_tableau_pipeline.sandbox.tableau.sandbox import (
    DEMO_CONNECTED_APP,
    DEMO_PAT_NAME,
    DEMO_PAT_SECRET,
    TableauSandbox,
    serve,
)
from visma_tableau_pipeline.sandbox.tableau.state import ServerVersion
from visma_tableau_pipeline.sandbox.tableau.traffic import RequestRecord
from visma_tableau_pipeline.sandbox.tableau.webhooks import Delivery

__all__ = [
    "DEMO_CONNECTED_APP",
    "DEMO_PAT_NAME",
    "DEMO_PAT_SECRET",
    "ConnectedApp",
    "Delivery",
    "RequestRecord",
    "SandboxUser",
    "ServerVersion",
    "TableauSandbox",
    "encode_hs256_jwt",
    "serve",
]
