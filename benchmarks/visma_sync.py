"""Full sync of supplier invoices from the Visma sandbox: records/s, API calls, peak memory.

GitHub issue 3. For each size (supplier invoices of company 1, three lines each) it measures:

- decode: the raw bytes of every page, fetched once and kept on disk, then only
  `json.loads(parse_float=Decimal)` timed over them: the ceiling the client is held against;
- msgspec: the same pages decoded to the same values by msgspec, which the client uses: shown
  beside it, because against that decoder the target is a different one;
- read: `VismaClient.read_entity` end to end (records discarded) at each concurrency;
- sync: `sync_window(full=True)` into a SQLite state store in a temporary folder;
- read with added latency per page (default 200 ms) at each concurrency: what concurrency buys.

The sandbox runs in its own process (a thread would fight the client for the GIL), with a rate
limit high enough never to pace: this measures throughput, not Visma's hourly budget. Every
measured case runs in a fresh process, so its peak RSS is its own. Each rate is given by the
clock and by the client process's CPU time: on a shared machine the second is the steadier one.

    .venv/bin/python benchmarks/visma_sync.py [--sizes 100000 1000000] [--latency-sizes 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

PAGE_SIZE = 1000
RATE_LIMIT_PER_HOUR = 100_000_000
MEMORY_TARGET_MB = 1536
DECODE_TARGET_RATIO = 0.5
ENTITY = "supplier_invoices"


# -- the sandbox process ---------------------------------------------------------------------


def serve_sandbox(size: int, latency_ms: int) -> None:
    """Child process: serve the sandbox, print its URL, and serve until stdin closes."""
    from visma_tableau_pipeline.sandbox.visma.faults import FaultPlan
    from visma_tableau_pipeline.sandbox.visma.sandbox import VismaSandbox

    sandbox = VismaSandbox(
        size, 0, rate_limit_per_hour=RATE_LIMIT_PER_HOUR, faults=FaultPlan(page_latency_ms=latency_ms)
    )
    print(sandbox.serve(), flush=True)
    sys.stdin.read()
    sandbox.stop()


@contextmanager
def sandbox_process(size: int, latency_ms: int) -> Iterator[str]:
    """A sandbox in a separate process; yields its base URL once it answers."""
    process = subprocess.Popen(
        [sys.executable, __file__, "_serve", "--size", str(size), "--latency-ms", str(latency_ms)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"the sandbox process exited with {process.wait()}")
        yield url
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the measured cases (each in its own process) ---------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def company_for(url: str) -> Any:
    from visma_tableau_pipeline.settings import sandbox_companies

    return sandbox_companies(url)[0]


def case_decode(url: str, folder: Path) -> dict[str, Any]:
    """Fetch every page's raw bytes to disk (untimed), then time json.loads over them."""
    import httpx

    from visma_tableau_pipeline.visma.auth import TokenProvider
    from visma_tableau_pipeline.visma.catalogue import entity

    company = company_for(url)
    path = entity(ENTITY).path
    files = []
    fetch_started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as http:
        headers = {"Authorization": f"Bearer {TokenProvider(company, http).token()}"}
        pages = 1
        number = 1
        while number <= pages:
            response = http.get(path, params={"pageNumber": number, "pageSize": PAGE_SIZE}, headers=headers)
            response.raise_for_status()
            if number == 1:
                pages = math.ceil(json.loads(response.content)[0]["metadata"]["totalCount"] / PAGE_SIZE)
            file = folder / f"page-{number:06d}.json"
            file.write_bytes(response.content)
            files.append(file)
            number += 1
    fetch_seconds = time.perf_counter() - fetch_started
    import msgspec

    decoders = {"json": lambda raw: json.loads(raw, parse_float=Decimal),
                "msgspec": msgspec.json.Decoder(float_hook=Decimal).decode}
    records = 0
    seconds = dict.fromkeys(decoders, 0.0)
    cpu = dict.fromkeys(decoders, 0.0)
    size = 0
    for file in files:
        raw = file.read_bytes()
        size += len(raw)
        for name, decoder in decoders.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            items = decoder(raw)
            seconds[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
        records += len(items)
        file.unlink()
    return {"records": records, "seconds": seconds["json"], "cpu": cpu["json"], "pages": len(files), "bytes": size,
            "fetch_seconds": fetch_seconds, "msgspec_seconds": seconds["msgspec"], "msgspec_cpu": cpu["msgspec"]}


def case_read(url: str, concurrency: int) -> dict[str, Any]:
    """read_entity end to end, records discarded."""
    from visma_tableau_pipeline.visma.catalogue import entity
    from visma_tableau_pipeline.visma.client import VismaClient

    records = 0
    with VismaClient(company_for(url), max_concurrency=concurrency, page_size=PAGE_SIZE) as client:
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch in client.read_entity(entity(ENTITY)):
            records += len(batch)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stats = client.stats.as_metadata()
    return {"records": records, "seconds": seconds, "cpu": cpu, **stats}


def case_sync(url: str, concurrency: int, folder: Path) -> dict[str, Any]:
    """sync_window(full=True) into a SQLite state store."""
    from visma_tableau_pipeline.state.db import StateDB
    from visma_tableau_pipeline.visma.catalogue import entity
    from visma_tableau_pipeline.visma.client import VismaClient
    from visma_tableau_pipeline.visma.sync import sync_window

    company = company_for(url)
    db = StateDB(f"sqlite:///{folder / 'state.db'}")
    with VismaClient(company, max_concurrency=concurrency, page_size=PAGE_SIZE) as client:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = sync_window(client, db, entity(ENTITY), company_id=company.company_id, run_id="bench", full=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stats = client.stats.as_metadata()
    db.dispose()
    return {"records": result.records_read, "inserted": result.inserted, "seconds": seconds, "cpu": cpu, **stats}


def run_case(kind: str, url: str, concurrency: int, folder: Path) -> dict[str, Any]:
    """Run one case in a fresh process and return its figures."""
    command = [sys.executable, __file__, "_case", kind, "--url", url, "--concurrency", str(concurrency),
               "--folder", str(folder)]
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# -- the table -------------------------------------------------------------------------------


def rate(figures: dict[str, Any]) -> float:
    return figures["records"] / figures["seconds"]


def cpu_rate(figures: dict[str, Any]) -> float | None:
    return figures["records"] / figures["cpu"] if figures.get("cpu") else None


def row(size: int, latency_ms: int, case: str, figures: dict[str, Any], decode: dict[str, Any] | None) -> str:
    """One table line; the ratios compare with the decode-only rates (wall clock and CPU time)."""
    per_cpu = cpu_rate(figures)
    ratio = rate(figures) / rate(decode) if decode else None
    cpu_ratio = per_cpu / cpu_rate(decode) if decode and per_cpu and cpu_rate(decode) else None
    return (f"| {size:>9,} | {latency_ms:>3} | {case:<9} | {figures['records']:>9,} | {figures['seconds']:>6.1f} "
            f"| {rate(figures):>7,.0f} | {_number(ratio, 4, '.2f')} "
            f"| {_number(figures.get('cpu'), 6, '.1f')} | {_number(per_cpu, 7, ',.0f')} "
            f"| {_number(cpu_ratio, 4, '.2f')} "
            f"| {figures.get('api_calls', ''):>5} | {figures.get('pages', ''):>5} "
            f"| {_number(figures.get('peak_rss_mb'), 7, ',.0f')} |")


def _number(value: float | None, width: int, spec: str) -> str:
    return " " * width if value is None else f"{value:>{width}{spec}}"


HEADER = (
    "| invoices  | ms  | case      |   records |  wall s |  inv/s | ×dec |  CPU s | inv/CPU-s | ×dec CPU "
    "| API calls | pages | peak RSS MB |\n"
    "|----------:|----:|:----------|----------:|-------:|--------:|-----:|-------:|--------:|-----:"
    "|------:|------:|--------:|"
)


def bench(sizes: list[int], latency_sizes: list[int], latency_ms: int, concurrencies: list[int],
          sync_concurrency: int) -> None:
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; page size {PAGE_SIZE}; "
          f"targets: end to end >= {DECODE_TARGET_RATIO:.0%} of decode, peak RSS < {MEMORY_TARGET_MB} MB")
    print(HEADER, flush=True)
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="vtp-bench-") as home:
        folder = Path(home)
        for size in sizes:
            with sandbox_process(size, 0) as url:
                decode = run_case("decode", url, 1, folder)
                print(row(size, 0, "decode", decode, None), flush=True)
                fast = {"records": decode["records"], "pages": decode["pages"], "seconds": decode["msgspec_seconds"],
                        "cpu": decode["msgspec_cpu"]}
                print(row(size, 0, "msgspec", fast, decode), flush=True)
                fetched = {"records": decode["records"], "pages": decode["pages"], "seconds": decode["fetch_seconds"]}
                print(row(size, 0, "raw fetch", fetched, decode), flush=True)
                cases = [("read", concurrency) for concurrency in concurrencies] + [("sync", sync_concurrency)]
                for kind, concurrency in cases:
                    figures = run_case(kind, url, concurrency, folder)
                    label = f"{kind} c{concurrency}"
                    print(row(size, 0, label, figures, decode), flush=True)
                    verdicts.append((size, label, rate(figures) / rate(decode),
                                     cpu_rate(figures) / cpu_rate(decode), figures["peak_rss_mb"],
                                     rate(figures) / rate(fast)))
                    (folder / "state.db").unlink(missing_ok=True)
        for size in latency_sizes:
            with sandbox_process(size, latency_ms) as url:
                for concurrency in concurrencies:
                    figures = run_case("read", url, concurrency, folder)
                    print(row(size, latency_ms, f"read c{concurrency}", figures, None), flush=True)
    print()
    for size, case, ratio, cpu_ratio, rss, fast_ratio in verdicts:
        speed = "met" if min(ratio, cpu_ratio) >= DECODE_TARGET_RATIO else (
            "missed" if max(ratio, cpu_ratio) < DECODE_TARGET_RATIO else "met on one measure")
        memory = "met" if rss < MEMORY_TARGET_MB else "missed"
        print(f"{size:>9,} {case:<7}: {ratio:.2f} of decode speed by the clock, {cpu_ratio:.2f} by CPU time "
              f"({speed}); {fast_ratio:.2f} of msgspec's decode speed by the clock; "
              f"peak RSS {rss:,.0f} MB ({memory})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("_serve", help="internal: the sandbox process")
    serve.add_argument("--size", type=int, required=True)
    serve.add_argument("--latency-ms", type=int, default=0)
    case = sub.add_parser("_case", help="internal: one measured case")
    case.add_argument("kind", choices=("decode", "read", "sync"))
    case.add_argument("--url", required=True)
    case.add_argument("--concurrency", type=int, default=1)
    case.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--latency-sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--sync-concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.command == "_serve":
        serve_sandbox(args.size, args.latency_ms)
    elif args.command == "_case":
        if args.kind == "decode":
            figures = case_decode(args.url, args.folder)
        elif args.kind == "read":
            figures = case_read(args.url, args.concurrency)
        else:
            figures = case_sync(args.url, args.concurrency, args.folder)
        print(json.dumps({**figures, "peak_rss_mb": peak_rss_mb()}))
    else:
        bench(args.sizes, args.latency_sizes, args.latency_ms, args.concurrency, args.sync_concurrency)


if __name__ == "__main__":
    main()
