"""Whole builds of dashboard tables from a state store: what holding records back costs a clean build.

Issue 10 made every build hold back records it cannot convert, and the store's reads leave out
records already held back (a NOT EXISTS against `vtp_quarantine` on every record read). A clean
build must cost what it did. This syncs the Visma sandbox (both demo companies, `--size` supplier
invoices for company 1) into a SQLite state store once, then times a full `build_extract` of a
few tables, `--repeat` times each, and prints the minimum and median seconds.

    .venv/bin/python benchmarks/table_build.py [--size 20000] [--repeat 3] [--store DIR]

To compare with another checkout, run the same script with that checkout's package first on the
path: `PYTHONPATH=/path/to/checkout .venv/bin/python benchmarks/table_build.py --store DIR`
(both read the same store when `--store` names one folder).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from visma_tableau_pipeline.delivery.extracts import build_extract
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.settings import EnvSettings, build_settings, sandbox_companies
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.visma.plan import sync_all

TABLES = ("ap_invoices", "ap_invoice_lines", "ap_aging", "vendor_spend", "gl_transactions")
AS_OF = date(2026, 11, 24)
log = logging.getLogger("table_build")


def store(size: int, folder: Path) -> tuple[StateDB, list[str]]:
    """The state store of a full sync of the sandbox at `size`, made once per folder."""
    path = folder / f"state-{size}.db"
    synced = path.exists()  # before StateDB, which creates the file
    db = StateDB(f"sqlite:///{path}")
    if not synced:
        db.create_all()
        with VismaSandbox(size, seed=1) as sandbox:
            started = time.perf_counter()
            os.environ["VTP_SANDBOX"] = "1"
            sync_all(build_settings(EnvSettings(vtp_home=folder, _env_file=None)),
                     sandbox_companies(sandbox.base_url), db, full=True, today=AS_OF)
            log.info("synced %d invoices in %.1f s", size, time.perf_counter() - started)
    db.create_all()
    return db, [company.company_id for company in sandbox_companies("http://127.0.0.1")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", type=Path, help="folder to keep the synced store in between runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("visma_tableau_pipeline").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.store or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        db, company_ids = store(args.size, folder)
        extracts = Path(scratch) / "extracts"
        print(f"| table | rows | min s | median s |  (size {args.size}, {args.repeat} runs)")
        print("|---|---:|---:|---:|")
        for name in TABLES:
            seconds, rows = [], 0
            for attempt in range(args.repeat):
                started = time.perf_counter()
                result = build_extract(db, company_ids, mart_table(name), AS_OF, extracts, f"bench-{attempt}",
                                       full=True)
                seconds.append(time.perf_counter() - started)
                rows = result.rows
            print(f"| {name} | {rows:,} | {min(seconds):.2f} | {statistics.median(seconds):.2f} |")


if __name__ == "__main__":
    main()
