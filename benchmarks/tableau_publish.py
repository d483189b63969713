"""Incremental Tableau publish of ap_invoices after 1% of its rows changed, against a full publish.

GitHub issue 4. Target: the incremental publish sends under 5% of the bytes of a full
re-publish and takes under 5% of its time. Steps, all through `deliver_table` against the
Tableau sandbox:

1. input (not publish time): the Visma sandbox's supplier invoices of company 1, generated in
   chunks, built into the ap_invoices dashboard table, written to .hyper and read back with
   `frame_from_hyper`, as the pipeline publishes it (so the dtypes are production's);
2. create: first publish (CreateNew) of the whole table;
3. overwrite: full re-publish (`full=True`, Overwrite): the baseline of the ratios;
4. incremental: every 100th row changed (the invoice paid: both balances 0.00, its description
   edited, last_modified_at a day later), then `deliver_table` with the hashes and schema of
   step 3: end to end, and split into hashing and change set, payload writing, upload and job;
5. unchanged: the same call once more (nothing to send: the cost of finding that out);
6. check: the sandbox's stored extract, read back, equals the changed table row for row.

The sandbox runs in its own process (a thread would share the GIL with the client) and reports
the request bytes it received, which cross-check the payload sizes `deliver_table` reports.
Uploads over loopback cost next to nothing, so one line also models a 100 Mbit/s link (each
step's time plus its bytes at 12.5 MB/s).

    .venv/bin/python benchmarks/tableau_publish.py [--size 1000000] [--cache DIR]

`--cache DIR` keeps the input extract between runs (the input takes minutes to generate).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
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


def build_input(size: int, folder: Path, cache: Path | None) -> tuple[pd.DataFrame, dict[str, float]]:
    """The ap_invoices table as the pipeline publishes it (read back from its extract)."""
    from visma_tableau_pipeline.marts.hyper import frame_from_hyper, write_hyper

    name = f"{TABLE}-input-{size}"
    directory = cache or folder
    timings: dict[str, float] = {}
    path = directory / f"{name}.hyper"
    if not path.exists():
        frame, timings = generate_table(size)
        started = time.perf_counter()
        write_hyper(frame, directory, name)
        timings["write extract"] = time.perf_counter() - started
        del frame
    started = time.perf_counter()
    frame = frame_from_hyper(path)
    timings["read extract"] = time.perf_counter() - started
    return frame, timings


def generate_table(size: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Company 1's supplier invoices from the Visma sandbox's generator, built into the table."""
    from visma_tableau_pipeline.marts.registry import build_mart
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox

    records = VismaSandbox(size).records(COMPANY, "supplier_invoices")
    timings = {"generate records": 0.0, "build table": 0.0}
    frames = []
    while True:
        started = time.perf_counter()
        chunk = [{**record, "company_id": COMPANY} for record in itertools.islice(records, CHUNK)]
        timings["generate records"] += time.perf_counter() - started
        if not chunk:
            break
        started = time.perf_counter()
        frames.append(build_mart(TABLE, {"supplier_invoices": chunk}, AS_OF))
        timings["build table"] += time.perf_counter() - started
        print(f"  input: {sum(len(f) for f in frames):,} rows", file=sys.stderr, flush=True)
    started = time.perf_counter()
    frame = pd.concat(frames, ignore_index=True)
    timings["build table"] += time.perf_counter() - started
    return frame, timings


def change_every_100th(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """A copy with every 100th invoice paid and edited, as a day of Visma work would."""
    changed = frame.copy()
    rows = changed.index[::CHANGE_EVERY]
    for column in ("balance_doc_currency", "balance_base_currency"):
        changed.loc[rows, column] = Decimal("0.00")
    changed.loc[rows, "description"] = changed.loc[rows, "description"].fillna("") + " (endret)"
    changed.loc[rows, "last_modified_at"] = changed.loc[rows, "last_modified_at"] + timedelta(days=1)
    return changed, rows


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


PHASES = {  # functions `deliver_table` calls, by the phase they stand for
    "schema_fingerprint": "hash + change set",
    "compute_changes": "hash + change set",
    "find_datasource": "look up data source",
    "write_hyper": "write extract",
    "publish_full": "upload + publish",
    "write_payloads": "write payload",
    "publish_changes": "upload + job",
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
    from visma_tableau_pipeline.tableau import delivery

    watch = Stopwatch()
    received = sandbox.bytes_received()
    with watch.watching(delivery, PHASES):
        started = time.perf_counter()
        outcome = call()
        seconds = time.perf_counter() - started
    step = Step(name, outcome.mode, seconds, outcome.bytes_sent,
                sandbox.bytes_received() - received, outcome.rows_upserted, dict(watch.totals))
    print(f"  {name}: {seconds:.1f} s, {outcome.bytes_sent:,} bytes", file=sys.stderr, flush=True)
    return step, outcome


# -- the benchmark ---------------------------------------------------------------------------


def bench(size: int, cache: Path | None) -> None:
    from visma_tableau_pipeline.marts.hyper import frame_from_hyper
    from visma_tableau_pipeline.marts.registry import mart_table
    from visma_tableau_pipeline.settings import TableauSettings
    from visma_tableau_pipeline.tableau import TableauSession, deliver_table, ensure_project

    key = mart_table(TABLE).key
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"{size:,} {TABLE} rows, every {CHANGE_EVERY}th changed; target < {TARGET_RATIO:.0%}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="vtp-tableau-bench-") as home:
        folder = Path(home)
        if cache:
            cache.mkdir(parents=True, exist_ok=True)
        frame, input_timings = build_input(size, folder, cache)
        changed, rows = change_every_100th(frame)
        workdir = folder / "work"
        with sandbox_process(folder / "sandbox") as sandbox:
            env = sandbox.env
            settings = TableauSettings(server_url=env["TABLEAU_SERVER_URL"], site=env["TABLEAU_SITE"],
                                       pat_name=env["TABLEAU_PAT_NAME"],
                                       pat_secret=env["TABLEAU_PAT_SECRET"])
            with TableauSession(settings) as session:
                project = ensure_project(session, PROJECT)

                def publish(data: pd.DataFrame, previous: Any, **options: Any) -> Any:
                    return deliver_table(
                        session, project, TABLE, data, key,
                        previous.hashes if previous else {}, workdir,
                        previous_schema=previous.schema_fingerprint if previous else None,
                        **options)

                create, first = deliver(sandbox, "create", lambda: publish(frame, None))
                overwrite, full = deliver(sandbox, "overwrite", lambda: publish(frame, first, full=True))
                incremental, update = deliver(sandbox, "incremental", lambda: publish(changed, full))
                unchanged, _ = deliver(sandbox, "unchanged", lambda: publish(changed, update))
                stored = frame_from_hyper(sandbox.datasource_path(TABLE))
    check = compare(stored, changed, rows, key)
    report(size, input_timings, [create, overwrite, incremental, unchanged], check)


def compare(stored: pd.DataFrame, expected: pd.DataFrame, rows: pd.Index,
            key: tuple[str, ...]) -> str:
    """The stored extract equals the changed table; raises when it does not."""
    if len(stored) != len(expected):
        raise AssertionError(f"the stored extract has {len(stored):,} rows, not {len(expected):,}")
    ordered = [stored.sort_values(list(key)).reset_index(drop=True),
               expected.sort_values(list(key)).reset_index(drop=True)]
    pd.testing.assert_frame_equal(ordered[0], ordered[1], check_dtype=False)
    sample = expected.loc[rows[:3], [*key, "balance_doc_currency", "description"]]
    stored_sample = stored.merge(sample[list(key)], on=list(key))
    shown = "; ".join(
        f"{r.reference_number}: balance {r.balance_doc_currency}, {r.description!r}"
        for r in stored_sample.itertuples()
    )
    return (f"stored extract: {len(stored):,} rows, equal to the changed table "
            f"({len(rows):,} rows changed); e.g. {shown}")


def report(size: int, input_timings: dict[str, float], steps: list[Step], check: str) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("_serve", help="internal: the sandbox process")
    serve.add_argument("--storage", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, help="keep the input extract here between runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.command == "_serve":
        serve_sandbox(args.storage)
    else:
        bench(args.size, args.cache)


if __name__ == "__main__":
    main()
