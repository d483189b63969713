"""A stand-in for Visma.net ERP (and Visma Connect) that speaks the real wire formats.

See sandbox.py for the Python interface, app.py for HTTP, demo.py for the demo credentials.
"""

from visma_tableau_pipeline.sandbox.visma.demo import (
    COMPANY_TENANT_IDS,
    CUSTOMER_TENANT_ID,
    DEFAULT_SANDBOX_URL,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    sandbox_companies,
)
from visma_tableau_pipeline.sandbox.visma.faults import FaultPlan
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.serve import serve
from visma_tableau_pipeline.sandbox.visma.size import DemoSize
from visma_tableau_pipeline.sandbox.visma.webhooks import sign as sign_webhook

__all__ = [
    "COMPANY_TENANT_IDS",
    "CUSTOMER_TENANT_ID",
    "DEFAULT_SANDBOX_URL",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "DemoSize",
    "FaultPlan",
    "VismaSandbox",
    "sandbox_companies",
    "serve",
    "sign_webhook",
]
