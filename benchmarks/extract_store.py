"""Shared extracts: what pushing and pulling an extract through an S3-compatible store costs.

With VTP_EXTRACTS_URL every build shares its whole extract (an object store replaces whole
objects), and a run on another machine downloads it when its own copy differs. This writes an
extract of `--rows` invoice-like rows (decimals, dates, texts) with the project's Hyper writer,
starts moto's S3 server on localhost (as the tests do) and times, through s3fs:
- the first push (hash, upload, pointer), a push of the same file again (pointer only),
- a pull into an empty folder (download, hash check, rename), a pull when the copy is current
  (one pointer read; the local hash comes from its record).

    .venv/bin/python benchmarks/extract_store.py [--rows 1000000] [--repeat 3]

Figures are from localhost: on a real network, upload and download take what the link allows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from visma_tableau_pipeline.delivery.extract_store import ExtractStore
from visma_tableau_pipeline.marts.hyper import write_hyper
from visma_tableau_pipeline_tests.s3_server import serving_s3


def invoices(rows: int) -> pd.DataFrame:
    generator = np.random.default_rng(1)
    cents = generator.integers(-10_000_000, 10_000_000, rows)
    amounts = pa.array([Decimal(int(c)).scaleb(-2) for c in cents], pa.decimal128(18, 2))
    return pd.DataFrame({
        "company_id": pd.Series(np.where(generator.random(rows) < 0.5, "nordic-no", "nordic-se"), dtype="string"),
        "reference_number": pd.Series([f"{n:08d}" for n in range(rows)], dtype="string"),
        "supplier_name": pd.Series([f"Leverandør {n % 5000}" for n in range(rows)], dtype="string"),
        "due_date": pd.Series(pd.Timestamp("2026-01-01") + pd.to_timedelta(generator.integers(0, 365, rows), "D")),
        "amount_doc_currency": pd.Series(amounts, dtype=pd.ArrowDtype(pa.decimal128(18, 2))),
    })


def timed(step: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, serving_s3() as s3:
        os.environ.update(s3.credentials_env())
        s3.create_bucket("bench")
        store = ExtractStore("s3://bench/extracts", {"endpoint_url": s3.endpoint})
        frame = invoices(args.rows)
        first_push_seconds = []
        for dropped in range(args.repeat):  # a new content each time
            extract = write_hyper(frame.head(args.rows - dropped), Path(scratch) / "a", "ap_invoices")
            started = time.perf_counter()
            store.push("ap_invoices", extract, None, "bench")
            first_push_seconds.append(time.perf_counter() - started)
        size_mb = extract.stat().st_size / 1e6
        print(f"extract: {args.rows} rows, {size_mb:.1f} MB")
        pulled = Path(scratch) / "b" / "ap_invoices.hyper"

        def empty_pull() -> None:
            for leftover in pulled.parent.glob("*"):
                leftover.unlink()
            for leftover in pulled.parent.glob(".*"):
                leftover.unlink()
            store.pull("ap_invoices", pulled)

        rows = {
            "push, new content": first_push_seconds,
            "push, same content (pointer only)": timed(lambda: store.push("ap_invoices", extract, None, "bench"),
                                                       args.repeat),
            "pull into an empty folder": timed(empty_pull, args.repeat),
            "pull, copy current": timed(lambda: store.pull("ap_invoices", pulled), args.repeat),
        }
        for step, seconds in rows.items():
            print(f"{step:38s} min {min(seconds):6.2f} s  median {statistics.median(seconds):6.2f} s"
                  + (f"  ({size_mb / min(seconds):.0f} MB/s)" if min(seconds) > 0.2 else ""))


if __name__ == "__main__":
    main()
