"""What a `vtp sync` costs when little or nothing changed in Visma, at a given size of the books.

Issue 12: a run's cost should follow the day's changes, not the size of the books. Against `vtp
sandbox --size N` (both sandboxes, in their own process), this runs `vtp sync` as a user does:

1. `--full` once (the first load);
2. again the same day, nothing changed in Visma;
3. the next day (`--as-of` one day later), nothing changed: the nightly run, with a new aging
   snapshot to take;
4. the day after, with `--changes` open supplier invoices paid in Visma (each payment also posts
   to the general ledger).

For each it prints the wall time of the whole command and the split the summary's time line
gives (Visma, tables, Tableau, slowest tables). Compare sizes: the second and third rows should
hardly grow from 10,000 to 100,000.

    .venv/bin/python benchmarks/nightly_cost.py --size 10000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from deployment import BIN, Processes, start_sandboxes  # `vtp sandbox` on free ports (benchmarks/deployment.py)

from visma_tableau_pipeline.marts.hyper import query_extract

AS_OF = date(2026, 12, 3)
RUNS = (  # (label, extra arguments)
    ("first load (--full)", ["--full", "--as-of", AS_OF.isoformat()]),
    ("same day, nothing changed", ["--as-of", AS_OF.isoformat()]),
    ("next day, nothing changed", ["--as-of", (AS_OF + timedelta(days=1)).isoformat()]),
)
CHANGED_DAY = AS_OF + timedelta(days=2)


def pay_invoices(env: dict[str, str], count: int) -> None:
    """Pay `count` open supplier invoices through the sandbox's admin API, as a user would in Visma."""
    open_invoices = query_extract(Path(env["VTP_HOME"]) / "extracts" / "ap_invoices.hyper",
                                  "SELECT * FROM {extract} WHERE t.status = 'Open' AND t.document_type = 'Invoice'"
                                  ).head(count)
    for company_id, reference in zip(open_invoices["company_id"], open_invoices["reference_number"], strict=True):
        httpx.post(f"{env['VTP_SANDBOX_URL']}/_sandbox/modify", timeout=60, json={
            "company_id": company_id, "entity": "supplier_invoices", "key": ["Invoice", reference]},
        ).raise_for_status()


def run_sync(env: dict[str, str], arguments: list[str]) -> tuple[float, str]:
    """Wall seconds of one `vtp sync` and its summary's time line."""
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "vtp"), "sync", *arguments], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 2):  # 2: records held back, the rest delivered
        raise RuntimeError(f"vtp sync {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    found = re.search(r"^Time: (.*)$", done.stdout, re.MULTILINE)
    return seconds, found.group(1) if found else "(no time line)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000, help="supplier invoices per demo company")
    parser.add_argument("--changes", type=int, default=20, help="supplier invoices paid before the last run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "logs").mkdir()
        processes = Processes(root / "logs")
        try:
            stack = start_sandboxes(root / "run", args.size, processes)
            print(f"| run (size {args.size:,}) | wall s | split |")
            print("|---|---:|---|")
            for label, arguments in RUNS:
                seconds, split = run_sync(stack.env, arguments)
                print(f"| {label} | {seconds:.1f} | {split} |", flush=True)
            pay_invoices(stack.env, args.changes)
            seconds, split = run_sync(stack.env, ["--as-of", CHANGED_DAY.isoformat()])
            print(f"| day after, {args.changes} invoices paid | {seconds:.1f} | {split} |", flush=True)
        finally:
            processes.stop_all()


if __name__ == "__main__":
    main()
