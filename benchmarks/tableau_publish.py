"""Incremental Tableau publish of ap_invoices after 1% of its invoices changed, against a full one.

GitHub issue 4. Target: the incremental publish sends under 5% of the bytes of a full
re-publish and takes under 5% of its time. Every step is `publish_extract`, what the pipeline
and the Dagster assets call: delivery to the Tableau sandbox and the audit ledger, end to end.

1. input (not publish time): the Visma sandbox's supplier invoices of company 1 stored in a
   SQLite state store as a sync stores them, then
   the ap_invoices extract built from the store and its extract cursor noted, as `build_extract`
   does (built in chunks here, to bound the benchmark's memory);
2. create: first publish (CreateNew) of the extract;
3. overwrite: full re-publish (`full=True`, Overwrite): the baseline of the ratios;
4. 1% changed (not publish time): every 100th invoice paid (both balances 0.00), its description
   edited and lastModifiedDateTime a day later, stored again as a sync stores a change;
5. incremental: the next publish: only the rows of records written since the last delivery
   are rebuilt, compared with what the data source holds, and sent;
6. unchanged: the same call once more (nothing to send: the cost of finding that out);
7. check: the sandbox's stored extract equals a full rebuild of the table from the store.

The sandbox runs in its own process (a thread would share the GIL with the client) and reports
the request bytes it received, which cross-check the payload sizes the outcome reports.
Uploads over loopback cost next to nothing, so one line also models a 100 Mbit/s link (each
step's time plus its bytes at 12.5 MB/s).

    .venv/bin/python benchmarks/tableau_publish.py [--size 1000000] [--cache DIR]

`--cache DIR` keeps the input state store between runs (the input takes minutes to generate).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

TABLE = "ap_invoices"
COMPANY = "nordic-no"
AS_OF = date(2025, 12, 31)
CHUNK = 100_000
CHANGE_EVERY = 100  # 1% of the rows
TARGET_RATIO = 0.05
PROJECT = "Benchmarks"
LINK_MBIT_S = 100
LINK_BYTES_PER_S = LINK_MBIT_S * 1_000_000 / 8


# -- the sandbox process ---------------------------------------------------------------------


def serve_sandbox(storage_dir: Path) -> None:
    """Child process: serve the sandbox, print its settings, then answer queries from stdin.

    `bytes` prints the request bytes received so far; `path <name>` the stored file of a data
    source. The sandbox stops when stdin closes.
    """
    from visma_tableau_pipeline.sandbox.tableau.sandbox import TableauSandbox

    sandbox = TableauSandbox(storage_dir)
    with sandbox.serve():
        print(json.dumps(sandbox.settings_env()), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "bytes":
                print(sandbox.bytes_received, flush=True)
            elif command == "path":
                print(sandbox.datasource_path(argument), flush=True)


class SandboxProcess:
    """The Tableau sandbox in a child process, and the two questions the benchmark asks it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"the sandbox process exited with {process.wait()}")
        self.env: dict[str, str] = json.loads(line)

    def _ask(self, question: str) -> str:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(question + "\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().strip()

    def bytes_received(self) -> int:
        return int(self._ask("bytes"))

    def datasource_path(self, name: str) -> Path:
        return Path(self._ask(f"path {name}"))


@contextmanager
def sandbox_process(storage_dir: Path) -> Iterator[SandboxProcess]:
    process = subprocess.Popen(
        [sys.executable, __file__, "_serve", "--storage", str(storage_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        yield SandboxProcess(process)
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the input -------------------------------------------------------------------------------


def store_input(size: int, db: Any) -> dict[str, float]:
    """Company 1's supplier invoices from the Visma sandbox's generator, stored page by page."""
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox

    generated = VismaSandbox(size).records(COMPANY, "supplier_invoices")
    timings = {"generate records": 0.0, "store records": 0.0}
    stored = 0
    while True:
        started = time.perf_counter()
        chunk = list(itertools.islice(generated, CHUNK))
        timings["generate records"] += time.perf_counter() - started
        if not chunk:
            break
        started = time.perf_counter()
        store(db, chunk, "bench-load")
        timings["store records"] += time.perf_counter() - started
        stored += len(chunk)
        print(f"  input: {stored:,} invoices stored", file=sys.stderr, flush=True)
    return timings


def store(db: Any, invoices: list[dict], run_id: str) -> None:
    """Store invoices as `visma.sync` stores a page of them."""
    from visma_tableau_pipeline.state.keys import key_string
    from visma_tableau_pipeline.state.record_store import upsert_records
    from visma_tableau_pipeline.visma.catalogue import entity, record_key
    from visma_tableau_pipeline.visma.periods import period_of_record

    invoices_entity = entity("supplier_invoices")
    rows = [(key_string(record_key(invoices_entity, invoice)), period_of_record(invoice),
             invoice.get("lastModifiedDateTime"), invoice) for invoice in invoices]
    with db.transaction() as conn:
        upsert_records(conn, COMPANY, "supplier_invoices", rows, run_id)


def build_input_extract(db: Any, folder: Path) -> tuple[Path, float]:
    """The ap_invoices extract from the store, and its extract cursor, as `build_extract` makes them."""
    from visma_tableau_pipeline.delivery.extracts import write_extract
    from visma_tableau_pipeline.marts.inputs import MartInputs
    from visma_tableau_pipeline.marts.registry import build_with, mart_table
    from visma_tableau_pipeline.state.changed_records import settled_moment
    from visma_tableau_pipeline.state.delivered import set_cursor
    from visma_tableau_pipeline.state.record_store import iter_records

    table = mart_table(TABLE)
    started = time.perf_counter()
    frames = []
    cursor = settled_moment(db.dialect)
    with db.connect() as conn:
        records = iter_records(conn, COMPANY, "supplier_invoices")
        while chunk := [{**record, "company_id": COMPANY} for record in itertools.islice(records, CHUNK)]:
            frames.append(build_with(table, MartInputs({"supplier_invoices": chunk}, AS_OF)))
    path = write_extract(pd.concat(frames, ignore_index=True), folder, table, AS_OF)
    with db.transaction() as conn:
        set_cursor(conn, TABLE, "extract", cursor, "bench-load")
    return path, time.perf_counter() - started


def change_every_100th(db: Any) -> int:
    """Every 100th stored invoice paid and edited, stored again as a sync stores a change."""
    from visma_tableau_pipeline.state.record_store import iter_records

    with db.connect() as conn:
        invoices = list(itertools.islice(iter_records(conn, COMPANY, "supplier_invoices"), 0, None, CHANGE_EVERY))
    for invoice in invoices:
        invoice["balance"] = invoice["balanceInCurrency"] = Decimal("0.00")
        invoice["description"] = (invoice.get("description") or "") + " (endret)"
        invoice["status"] = "Closed"
        invoice["lastModifiedDateTime"] = invoice["lastModifiedDateTime"].replace("2025-", "2026-", 1)
    for start in range(0, len(invoices), 1000):
        store(db, invoices[start:start + 1000], "bench-change")
    return len(invoices)


# -- timing ----------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    """Wraps named functions of a module so that each call's time adds to its name's total."""

    totals: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def watching(self, module: Any, names: dict[str, str]) -> Iterator[None]:
        originals = {name: getattr(module, name) for name in names}
        for name, label in names.items():
            setattr(module, name, self._timed(originals[name], label))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(module, name, original)

    def _timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.totals[label] += time.perf_counter() - started
        return timed


PHASES = {  # functions `publish_extract` calls, by module and the phase they stand for
    "visma_tableau_pipeline.delivery.publish": {
        "frame_from_hyper": "read extract",
        "_changed_rows": "rebuild changed rows",
        "delivered_hashes": "read rows held",
        "_from_ledger": "read rows held",
        "_row_contents": "ledger",
        "record_deliveries": "ledger",
        "apply_delivery": "ledger",
        "replace_delivered": "ledger",
    },
    "visma_tableau_pipeline.delivery.deliver": {
        "compute_changes": "hash + compare",
        "schema_fingerprint": "hash + compare",
        "find_datasource": "look up data source",
        "write_hyper": "write extract",
        "publish_full": "upload + publish",
        "write_payloads": "write payload",
        "publish_changes": "upload + job",
    },
}


@dataclass(frozen=True)
class Step:
    name: str
    mode: str
    seconds: float
    bytes_sent: int
    bytes_received: int  # request bytes the sandbox counted, sign-in and lookups included
    rows_upserted: int
    phases: dict[str, float]


def deliver(sandbox: SandboxProcess, name: str, call: Callable[[], Any]) -> tuple[Step, Any]:
    import importlib

    watch = Stopwatch()
    received = sandbox.bytes_received()
    with contextlib.ExitStack() as stack:
        for module, names in PHASES.items():
            stack.enter_context(watch.watching(importlib.import_module(module), names))
        started = time.perf_counter()
        outcome = call()
        seconds = time.perf_counter() - started
    step = Step(name, outcome.mode, seconds, outcome.bytes_sent,
                sandbox.bytes_received() - received, outcome.rows_upserted, dict(watch.totals))
    print(f"  {name}: {seconds:.1f} s, {outcome.bytes_sent:,} bytes", file=sys.stderr, flush=True)
    return step, outcome


# -- the benchmark ---------------------------------------------------------------------------


def bench(size: int, cache: Path | None) -> None:
    from visma_tableau_pipeline.delivery.extracts import build_extract, publish_target
    from visma_tableau_pipeline.delivery.publish import publish_extract
    from visma_tableau_pipeline.marts.hyper import frame_from_hyper
    from visma_tableau_pipeline.marts.registry import mart_table
    from visma_tableau_pipeline.settings import TableauSettings
    from visma_tableau_pipeline.state.db import StateDB
    from visma_tableau_pipeline.tableau import TableauSession, ensure_project

    table = mart_table(TABLE)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"{size:,} {TABLE} rows, every {CHANGE_EVERY}th changed; target < {TARGET_RATIO:.0%}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="vtp-tableau-bench-") as home:
        folder = Path(home)
        store_path = (cache or folder) / f"state-{size}.db"
        if cache:
            cache.mkdir(parents=True, exist_ok=True)
        fresh = not store_path.exists()
        work_store = folder / "state.db"
        db = StateDB(f"sqlite:///{store_path}")
        input_timings = store_input(size, db) if fresh else {}
        db.dispose()
        shutil.copy(store_path, work_store)  # the runs change the store; the cache stays as loaded
        db = StateDB(f"sqlite:///{work_store}")
        extract, whole_build = build_input_extract(db, folder / "extracts")
        target = publish_target(db, [COMPANY], table, AS_OF)
        workdir = folder / "work"
        workdir.mkdir()
        with sandbox_process(folder / "sandbox") as sandbox:
            env = sandbox.env
            settings = TableauSettings(server_url=env["TABLEAU_SERVER_URL"], site=env["TABLEAU_SITE"],
                                       pat_name=env["TABLEAU_PAT_NAME"],
                                       pat_secret=env["TABLEAU_PAT_SECRET"])
            with TableauSession(settings) as session:
                project = ensure_project(session, PROJECT)

                def publish(run_id: str, full: bool = False) -> Any:
                    return publish_extract(session, db, project, target, extract, workdir,
                                           run_id=run_id, full=full)

                create, _ = deliver(sandbox, "create", lambda: publish("bench-create"))
                overwrite, _ = deliver(sandbox, "overwrite", lambda: publish("bench-overwrite", full=True))
                started = time.perf_counter()
                changed = change_every_100th(db)
                input_timings["store 1% changes"] = time.perf_counter() - started
                started = time.perf_counter()
                updated = build_extract(db, [COMPANY], table, AS_OF, extract.parent, "bench-incremental")
                extract_update = time.perf_counter() - started
                if updated.mode != "updated":
                    raise AssertionError(f"the extract was {updated.mode}: {updated.reason}")
                incremental, _ = deliver(sandbox, "incremental", lambda: publish("bench-incremental"))
                unchanged, _ = deliver(sandbox, "unchanged", lambda: publish("bench-unchanged"))
                stored = frame_from_hyper(sandbox.datasource_path(TABLE))
        rebuilt, _ = build_input_extract(db, folder / "rebuilt")
        expected = frame_from_hyper(rebuilt)
        check = compare(stored, expected, changed, table.key)
        compare(frame_from_hyper(extract), expected, changed, table.key)  # the local extract too
        db.dispose()
    report(size, input_timings, [create, overwrite, incremental, unchanged], check,
           Extracts(whole_build, extract_update, len(updated.frame)))


def compare(stored: pd.DataFrame, expected: pd.DataFrame, changed: int, key: tuple[str, ...]) -> str:
    """The stored extract equals a full rebuild from the store; raises when it does not."""
    if len(stored) != len(expected):
        raise AssertionError(f"the stored extract has {len(stored):,} rows, not {len(expected):,}")
    ordered = [stored.sort_values(list(key)).reset_index(drop=True),
               expected.sort_values(list(key)).reset_index(drop=True)]
    pd.testing.assert_frame_equal(ordered[0], ordered[1], check_dtype=False)
    edited = ordered[0][ordered[0]["description"].fillna("").str.endswith(" (endret)")]
    if len(edited) != changed:
        raise AssertionError(f"{len(edited):,} rows carry the change, not {changed:,}")
    shown = "; ".join(f"{r.reference_number}: balance {r.balance_doc_currency}, {r.description!r}"
                      for r in edited.head(3).itertuples())
    return (f"stored extract: {len(stored):,} rows, equal to a full rebuild from the store "
            f"({changed:,} invoices changed); e.g. {shown}")


@dataclass(frozen=True)
class Extracts:
    """Bringing the extract up to the store: whole, or by the changed records' groups."""

    whole_seconds: float  # every record decoded and built, the file written
    update_seconds: float  # `build_extract` after the change: the changed groups replaced
    rows_rebuilt: int


def report(size: int, input_timings: dict[str, float], steps: list[Step], check: str,
           extracts: Extracts) -> None:
    baseline = steps[1]
    print()
    print("Input (not publish time): " + ", ".join(f"{name} {seconds:.1f} s"
                                                   for name, seconds in input_timings.items()))
    print()
    print("| step        | mode        | rows sent |      s | × full s | bytes sent    | × full bytes "
          "| sandbox bytes |")
    print("|:------------|:------------|----------:|-------:|---------:|--------------:|-------------:"
          "|--------------:|")
    for step in steps:
        print(f"| {step.name:<11} | {step.mode:<11} | {step.rows_upserted:>9,} | {step.seconds:>6.1f} "
              f"| {step.seconds / baseline.seconds:>8.3f} | {step.bytes_sent:>13,} "
              f"| {step.bytes_sent / baseline.bytes_sent:>12.4f} | {step.bytes_received:>13,} |")
    print()
    incremental = steps[2]
    full_s, incremental_s = (step.seconds + step.bytes_sent / LINK_BYTES_PER_S
                             for step in (baseline, incremental))
    print(f"Modelled, had the uploads crossed a {LINK_MBIT_S} Mbit/s link instead of loopback: "
          f"full {full_s:.1f} s, incremental {incremental_s:.1f} s ({incremental_s / full_s:.1%})")
    full_path = extracts.whole_seconds + baseline.seconds
    incremental_path = extracts.update_seconds + incremental.seconds
    print(f"From the store to Tableau (extract, then publish): full {extracts.whole_seconds:.1f} + "
          f"{baseline.seconds:.1f} = {full_path:.1f} s (the whole table built and written, then "
          f"Overwrite); incremental {extracts.update_seconds:.2f} + {incremental.seconds:.2f} = "
          f"{incremental_path:.2f} s ({extracts.rows_rebuilt:,} rows rebuilt into the extract, then "
          f"the changed rows sent): {incremental_path / full_path:.2%}")
    print()
    print("Where the time goes (s):")
    for step in steps:
        phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in step.phases.items())
        rest = step.seconds - sum(step.phases.values())
        print(f"  {step.name}: {phases}, other {rest:.2f}")
    print()
    print(check)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for what, ratio in (("time", incremental.seconds / baseline.seconds),
                        ("bytes", incremental.bytes_sent / baseline.bytes_sent)):
        verdict = "met" if ratio < TARGET_RATIO else "MISSED"
        print(f"incremental {what}: {ratio:.2%} of the full re-publish (target < {TARGET_RATIO:.0%}: "
              f"{verdict})")
    ratio = incremental_path / full_path
    print(f"incremental time from the store to Tableau: {ratio:.2%} of the full path (target < "
          f"{TARGET_RATIO:.0%}: {'met' if ratio < TARGET_RATIO else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("_serve", help="internal: the sandbox process")
    serve.add_argument("--storage", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, help="keep the input state store here between runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.command == "_serve":
        serve_sandbox(args.storage)
    else:
        bench(args.size, args.cache)


if __name__ == "__main__":
    main()
