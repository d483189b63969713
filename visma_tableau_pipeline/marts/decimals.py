"""Exact totals of decimal columns, and exact arithmetic on them.

Money columns are pyarrow `decimal128(18, 2)`. pandas 3 sums arrow-backed columns with pyarrow,
which widens a sum to `decimal128(38, 2)`, its widest; adding or subtracting two such sums then
asks for precision 39 and fails with "Decimal precision out of range [1, 38]: 39". So totals are
taken with pyarrow (exact, and fast) and handed over as Python `Decimal` values, and arithmetic on
them runs in `EXACT`, a context wide enough for any decimal128 value that raises instead of
rounding: a wrong cent can never pass silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, localcontext

import pandas as pd

# 76 digits hold the sum or difference of any decimal128 values (38 digits) without rounding.
EXACT = Context(prec=76, traps=[InvalidOperation, Inexact, Rounded, Overflow])


def decimal_totals(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """One row per group of `by` (null keys form groups too), sorted by it, with the sum of each
    of `columns` as a Python `Decimal` (nulls add nothing; a group of nulls totals 0).

    `columns` are arrow decimals (summed by pyarrow) or Python `Decimal` objects (summed in
    `EXACT`). The totals are plain `Decimal` values (object columns), so subtracting or comparing them
    cannot overflow pyarrow's decimal precision; do the arithmetic under `decimal.localcontext(EXACT)`.
    """
    with localcontext(EXACT):
        grouped = frame.groupby(list(by), dropna=False, sort=True)[list(columns)].sum()
    totals = grouped.reset_index()
    for column in columns:
        totals[column] = pd.Series(
            [Decimal(0) if pd.isna(total) else Decimal(total) for total in grouped[column].tolist()],
            dtype=object,
        )
    return totals


def total_differences(table: pd.DataFrame, source: pd.DataFrame, by: Sequence[str],
                      columns: Sequence[str]) -> pd.DataFrame:
    """The groups of `by` whose totals of `columns` differ between a table and the source it must
    agree with: per column the table's total (`<column>_table`), the source's (`<column>_source`)
    and table minus source (`<column>_difference`), as exact Decimals. Empty when all agree; a
    group on one side only counts as 0 on the other."""
    merged = decimal_totals(table, by, columns).merge(
        decimal_totals(source, by, columns), on=list(by), how="outer", suffixes=("_table", "_source"))
    differing = pd.Series(False, index=merged.index)
    with localcontext(EXACT):
        for column in columns:
            for side in ("_table", "_source"):
                merged[column + side] = [Decimal(0) if pd.isna(value) else value for value in merged[column + side]]
            merged[column + "_difference"] = [ours - theirs for ours, theirs in
                                              zip(merged[column + "_table"], merged[column + "_source"], strict=True)]
            differing |= pd.Series([value != 0 for value in merged[column + "_difference"]], index=merged.index)
    return merged[differing].reset_index(drop=True)
