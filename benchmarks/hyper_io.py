"""Hyper reads and writes: one Hyper process per OS process, rows as Parquet, against pantab.

pantab starts a Hyper process for every call, and its writes needed a second process (the exact
decimal copy); `marts/hyper.py` now keeps one process (`marts/hyper_process.py`) and moves rows
as Parquet files Hyper reads and writes itself. This times, for a table shaped like `ap_invoices`
(texts, two money columns, a date, a timestamp, a flag) of each `--rows` size: writing an extract,
reading it whole, counting its rows, and replacing 10 groups in it; and pantab's write and read
of the same frame. Median of `--repeat` runs, in milliseconds.

    .venv/bin/python benchmarks/hyper_io.py [--rows 100 10000 300000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pantab
import pyarrow as pa

from visma_tableau_pipeline.marts.hyper import (
    EXTRACT_TABLE,
    extract_rows,
    frame_from_hyper,
    replace_groups,
    write_hyper,
)


def invoices(rows: int) -> pd.DataFrame:
    """An `ap_invoices`-like frame of `rows` rows over 100 suppliers."""
    rng = np.random.default_rng(7)

    def money() -> pa.Array:
        cents = rng.integers(-10**9, 10**9, rows)
        return pa.array([Decimal(int(c)).scaleb(-2) for c in cents], pa.decimal128(18, 2))

    table = pa.table({
        "company_id": pa.array(["nordic-no"] * rows),
        "reference_number": pa.array([f"{i:08d}" for i in range(rows)]),
        "supplier_number": pa.array([f"S{i % 100:04d}" for i in range(rows)]),
        "amount_doc_currency": money(), "amount_base_currency": money(),
        "due_date": pa.array(pd.date_range("2020-01-01", periods=rows, freq="min").date),
        "last_modified_at": pa.array(pd.date_range("2020-01-01", periods=rows, freq="s", tz="UTC")).cast(
            pa.timestamp("us", "UTC")),
        "released": pa.array([bool(i % 2) for i in range(rows)]),
    })
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100, 10_000, 300_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame_from_hyper(write_hyper(invoices(1), Path(tempfile.mkdtemp()), "warm"))  # the one process started
    print(f"{'rows':>8} | {'write':>7} {'read':>7} {'count':>7} {'replace 10':>10} | {'pantab write':>12} "
          f"{'pantab read':>11}   (median ms of {args.repeat})")
    for rows in args.rows:
        write, read, count, replace, pantab_write, pantab_read = figures(invoices(rows), args.repeat)
        print(f"{rows:>8} | {write:>7.0f} {read:>7.0f} {count:>7.0f} {replace:>10.0f} | {pantab_write:>12.0f} "
              f"{pantab_read:>11.0f}")


def figures(frame: pd.DataFrame, repeat: int) -> list[float]:
    """Median milliseconds of each operation on `frame` (see the module docstring)."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_hyper(frame, Path(folder), "ap_invoices")
        groups = frame[["company_id", "reference_number"]].head(10)
        ours = [
            median_ms(lambda: write_hyper(frame, Path(folder), "ap_invoices"), repeat),
            median_ms(lambda: frame_from_hyper(path), repeat),
            median_ms(lambda: extract_rows(path), repeat),
            median_ms(lambda: replace_groups(path, frame.head(10), groups), repeat),
        ]
        other = Path(folder) / "pantab.hyper"
        # pantab cannot write -0.05 (see marts/hyper.py); unscaled integers time the same work
        unscaled = frame.assign(**{column: (frame[column].astype("float64") * 100).astype("int64")
                                   for column in ("amount_doc_currency", "amount_base_currency")})
        return [*ours,
                median_ms(lambda: pantab.frame_to_hyper(unscaled, other, table=EXTRACT_TABLE), repeat),
                median_ms(lambda: pantab.frame_from_hyper(other, table=EXTRACT_TABLE), repeat)]

if __name__ == "__main__":
    main()
