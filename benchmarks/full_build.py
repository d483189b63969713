"""Whole builds of every dashboard table against the speed of decoding the same stored records.

Issue 12 asks that a full sync builds its tables at half the JSON decode speed or better, and that
memory stays flat in size. This syncs the Visma sandbox into a SQLite state store once (as
`table_build.py` does; keep `--store` between runs), then measures on that store:

- the JSON decode speed: `json.loads` of every stored payload text, records/s (and msgspec's
  exact decode, which the store's reader uses, for reference);
- for each table, in a subprocess of its own so that its peak RSS (`ru_maxrss`) is its own: a full
  `build_extract` (read from the store, build, write the Hyper file), its seconds, the records of
  its sources it read, records/s, and that speed over the decode speed;
- in total: the distinct stored records that any table reads over the sum of the tables' seconds,
  the same ratio, and the largest peak RSS. CPU seconds (the process's and its Hyper server's)
  are shown too, and a ratio by them: on a shared machine they vary less than wall time.

    .venv/bin/python benchmarks/full_build.py [--size 20000] [--store DIR] [--tables a,b]

To compare with another checkout, run it with that checkout's package first on the path:
`PYTHONPATH=/path/to/checkout .venv/bin/python benchmarks/full_build.py --store DIR`.

Each table is built from the records into a folder of its own. With `--extracts DIR` the tables
write into one kept folder in the order given, so that a table derived from other extracts
(`FromExtracts`: aging, vendor spend, cash flow, the close) listed after the tables it reads is
derived from their extracts, as a nightly run derives it (its "records read" are then the
records it would otherwise decode):

    .venv/bin/python benchmarks/full_build.py --size 20000 --store DIR --extracts DIR/extracts \
        --tables gl_balances,ap_invoices,ar_invoices,supplier_payment_lines,customer_payment_lines,period_close
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from table_build import AS_OF, store

from visma_tableau_pipeline.delivery.extracts import BUILD_CHUNK, build_extract
from visma_tableau_pipeline.marts.registry import MART_TABLES, mart_table
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.payloads import load_payload
from visma_tableau_pipeline.state.schema import records


def records_read(db: StateDB, company_ids: list[str], entities: set[str]) -> int:
    """Live stored records of `entities`: what a build of tables reading them decodes."""
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(records).where(
            records.c.company_id.in_(company_ids), records.c.entity.in_(sorted(entities)),
            records.c.deleted_at.is_(None))).scalar_one())


def decode_speed(db: StateDB, entities: set[str]) -> dict[str, float]:
    """Records/s of decoding the stored texts: `json.loads` with each record dropped at once, and
    `json.loads` and the store's exact decode each keeping a chunk (`BUILD_CHUNK`) of records at a
    time, as a build holds them (Python's garbage collector then walks the records it keeps)."""
    with db.connect() as conn:
        texts = list(conn.execute(select(records.c.payload).where(
            records.c.entity.in_(sorted(entities)), records.c.deleted_at.is_(None))).scalars())
    speeds = {}
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        json.loads(text)
    speeds["dropped"] = len(texts) / (time.perf_counter() - started)
    for name, decode in (("kept", json.loads), ("exact", load_payload)):
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(texts), BUILD_CHUNK):
            kept = [decode(text) for text in texts[start:start + BUILD_CHUNK]]
        speeds[name] = len(texts) / (time.perf_counter() - started)
        speeds[name + " cpu"] = len(texts) / (time.process_time() - cpu)
        del kept
    return speeds


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the Hyper server it starts)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not `ru_maxrss`: Linux carries a parent's
    peak into a child over fork and exec, so every subprocess would report the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(db: StateDB, company_ids: list[str], name: str, extracts: Path | None = None) -> dict[str, float]:
    """One full build of `name` in this process (into `extracts`, else a folder of its own):
    seconds, rows, and this process's peak RSS."""
    with tempfile.TemporaryDirectory() as scratch:
        started, cpu = time.perf_counter(), cpu_seconds()
        result = build_extract(db, company_ids, mart_table(name), AS_OF, extracts or Path(scratch), "bench",
                               full=True)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "rows": result.rows, "peak_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--store", type=Path, help="folder to keep the synced store in between runs")
    parser.add_argument("--tables", help="comma-separated table names (default: every table)")
    parser.add_argument("--extracts", type=Path, help="one folder every table writes its extract into, in order")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a subprocess measuring one table
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.store or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        db, company_ids = store(args.size, folder)
        if args.one:
            print(json.dumps(measure_one(db, company_ids, args.one, args.extracts)))
            return
        tables = [mart_table(name) for name in args.tables.split(",")] if args.tables else list(MART_TABLES)
        every_source = {source for table in tables for source in table.sources}
        speeds = decode_speed(db, every_source)
        loads_speed = speeds["kept"]
        print(f"size {args.size}: JSON decode of the stored texts with json.loads, records/s: {loads_speed:,.0f} "
              f"keeping a chunk of {BUILD_CHUNK:,} records at a time (the speed the ratios use), "
              f"{speeds['dropped']:,.0f} dropping each record at once; the store's exact msgspec decode "
              f"{speeds['exact']:,.0f}")
        print("| table | records read | rows | seconds | CPU s | records/s | / decode | peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        total_seconds, total_cpu, peak = 0.0, 0.0, 0.0
        for table in tables:
            measured = json.loads(subprocess.run(
                [sys.executable, __file__, "--size", str(args.size), "--store", str(folder), "--one", table.name,
                 *(["--extracts", str(args.extracts)] if args.extracts else [])],
                check=True, capture_output=True, text=True, env=os.environ).stdout)
            read = records_read(db, company_ids, set(table.sources))
            speed = read / measured["seconds"]
            total_seconds += measured["seconds"]
            total_cpu += measured["cpu"]
            peak = max(peak, measured["peak_mb"])
            print(f"| {table.name} | {read:,} | {measured['rows']:,.0f} | {measured['seconds']:.2f} "
                  f"| {measured['cpu']:.2f} | {speed:,.0f} | {speed / loads_speed:.2f} | {measured['peak_mb']:,.0f} |")
        read = records_read(db, company_ids, every_source)
        speed = read / total_seconds
        print(f"| **total** | {read:,} | | {total_seconds:.2f} | {total_cpu:.2f} | {speed:,.0f} "
              f"| {speed / loads_speed:.2f} | {peak:,.0f} |")
        print(f"total over the decode speed dropping each record: {speed / speeds['dropped']:.2f}; "
              f"by CPU time (build over json.loads keeping chunks): {read / total_cpu / speeds['kept cpu']:.2f}")


if __name__ == "__main__":
    main()
