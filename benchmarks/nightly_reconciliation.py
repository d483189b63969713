"""What the nightly reconciliation costs: Visma API calls and wall time of one night's read.

Records deleted in Visma must leave Tableau within a day, so the nightly run reads master data
and every period Visma has not closed in full (`read_in_full`), and closed periods as deltas.
Against a Visma sandbox of `--size` supplier invoices per company (two companies, in their own
process, with a rate limit that never paces) this first syncs everything once, then reads one
night three ways into the same state store and prints a Markdown table:

- deltas: the nightly read before reconciliation (every window as a delta);
- nightly: master data and open periods in full, closed periods as deltas (what runs now);
- weekly: every window in full (the Sunday reconciliation).

API calls are what counts against Visma's hourly budget per company; wall time is local.

    .venv/bin/python benchmarks/nightly_reconciliation.py [--size 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from visma_sync import sandbox_process  # the sandbox in its own process (benchmarks/visma_sync.py)

MODES = {  # name -> (full, open_periods_in_full)
    "deltas (before)": (False, False),
    "nightly (now)": (False, True),
    "weekly full": (True, False),
}


def measure(size: int) -> list[str]:
    """Markdown rows: mode, windows read in full, records read, API calls, wall time."""
    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.settings import get_settings
    from visma_tableau_pipeline.state import StateDB
    from visma_tableau_pipeline.visma.plan import stored_open_periods, sync_all

    with sandbox_process(size, latency_ms=0) as url, tempfile.TemporaryDirectory() as home:
        os.environ.update({"VTP_SANDBOX_URL": url, "VTP_HOME": str(Path(home) / "vtp")})
        get_settings.cache_clear()
        settings = get_settings()
        companies = resolved_companies(settings)
        db = StateDB(settings.state_url)
        rows = []
        for mode, (full, open_in_full) in {"first sync": (True, False), **MODES}.items():
            started = time.perf_counter()
            report = sync_all(settings, companies, db, full=full, open_periods_in_full=open_in_full)
            seconds = time.perf_counter() - started
            in_full = sum(1 for w in report.windows if w.full)
            rows.append(f"| {mode} | {in_full} of {len(report.windows)} | "
                        f"{report.totals()['records_read']:,} | {report.api_calls:,} | {seconds:.1f} s |")
        open_periods = {c.company_id: sorted(stored_open_periods(db, c.company_id)) for c in companies}
        db.dispose()
    return [f"Open periods: {open_periods}", "",
            "| read | windows in full | records read | API calls | wall time |",
            "|---|---|---|---|---|", *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="supplier invoices per company")
    args = parser.parse_args()
    sys.stdout.write("\n".join([f"Sandbox size {args.size:,}", *measure(args.size)]) + "\n")


if __name__ == "__main__":
    main()
