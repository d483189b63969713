"""Serve the Visma sandbox in the foreground: `python -m visma_tableau_pipeline.sandbox.visma`."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.size import DemoSize
from visma_tableau_pipeline.settings import SANDBOX_CLIENT_ID, SANDBOX_TENANT_IDS

log = logging.getLogger(__name__)


def serve(host: str = "127.0.0.1", port: int = 8765, size: DemoSize | int = 2000, *, seed: int = 0,
          webhook_url: str | None = None, webhook_secret: str | None = None) -> None:
    """Serve until interrupted (blocking)."""
    sandbox = VismaSandbox(size, seed, webhook_url=webhook_url, webhook_secret=webhook_secret)
    log.info("Visma sandbox on http://%s:%s (token URL /connect/token, client %s, companies %s)",
             host, port, SANDBOX_CLIENT_ID, ", ".join(SANDBOX_TENANT_IDS))
    uvicorn.run(sandbox.app, host=host, port=port, log_level="info", access_log=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m visma_tableau_pipeline.sandbox.visma",
                                     description="Serve the Visma.net ERP sandbox with the demo companies.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--size", type=int, default=2000, help="supplier invoices of company 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.host, args.port, args.size, seed=args.seed, webhook_url=args.webhook_url,
          webhook_secret=args.webhook_secret)
