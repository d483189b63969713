"""A stand-in for Visma.net ERP (and Visma Connect) that speaks the real wire formats.

See sandbox.py for the Python interface, app.py for HTTP, companies.py for the demo group (its
credentials are in `settings`, which point the pipeline at it when it is asked for).
"""

from visma_tableau_pipeline.sandbox.visma.faults import FaultPlan
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.serve import serve
from visma_tableau_pipeline.sandbox.visma.size import DemoSize
from visma_tableau_pipeline.sandbox.visma.webhooks import sign as sign_webhook

__all__ = [
    "DemoSize",
    "FaultPlan",
    "VismaSandbox",
    "serve",
    "sign_webhook",
]
