"""The Visma sandbox's first journal read: what a client waits for page 1 of `/v2/journaltransaction`.

The journal pages by line, so its first page needs the line count of every batch, and the GL
balances need every batch's lines: one pass over the whole journal (every subledger document and
payment posts a batch), made once per company. This times that first page, and then the first
page of the GL balances (which reuses the pass), per company, in a fresh sandbox.

    .venv/bin/python benchmarks/sandbox_journal.py [--size 100000]

To compare with another checkout, put its package first on the path:
`PYTHONPATH=/path/to/checkout .venv/bin/python benchmarks/sandbox_journal.py`.
"""

from __future__ import annotations

import argparse
import resource
import time

from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.size import DemoSize
from visma_tableau_pipeline.sandbox.visma.store import Query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="supplier invoices of company 1")
    args = parser.parse_args()
    sandbox = VismaSandbox(DemoSize(supplier_invoices=args.size), seed=1)
    print(f"| company | batches | journal page 1 s | GL balances page 1 s |  (size {args.size:,})")
    print("|---|---:|---:|---:|")
    for company in sandbox.companies:
        data = sandbox.company(company)
        started = time.perf_counter()
        data.store("journal_transactions").page(Query(), 0, 1000, 1000)
        journal_seconds = time.perf_counter() - started
        started = time.perf_counter()
        data.store("gl_balances").page(Query(), 0, 1000, 1000)
        balances_seconds = time.perf_counter() - started
        print(f"| {company} | {len(data.journal):,} | {journal_seconds:.2f} | {balances_seconds:.2f} |")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
