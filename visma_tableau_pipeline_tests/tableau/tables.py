"""A small dashboard-like table for the Tableau tests: text keys, a line number, exact money
(including a small negative amount that pantab 5.3.0 cannot write directly), dates and nulls."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pyarrow as pa

KEY = ("company_id", "document_type", "reference_number")


def money(values: list[str | None]) -> pd.Series:
    decimals = [None if v is None else Decimal(v) for v in values]
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(decimals, pa.decimal128(18, 2))))


def dates(values: list[date | None]) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, pa.date32())))


def invoices(count: int, *, company: str = "c1") -> pd.DataFrame:
    """`count` invoices with deterministic content; amounts include -0.05 and nulls."""
    refs = [f"{n:06d}" for n in range(1, count + 1)]
    amounts = ["-0.05" if n % 7 == 0 else None if n % 11 == 0 else f"{n * 13}.{n % 100:02d}"
               for n in range(1, count + 1)]
    return pd.DataFrame({
        "company_id": pd.array([company] * count, dtype="string"),
        "document_type": pd.array(["Invoice" if n % 5 else "CreditNote" for n in range(1, count + 1)],
                                  dtype="string"),
        "reference_number": pd.array(refs, dtype="string"),
        "line_count": pd.array([n % 4 + 1 for n in range(1, count + 1)], dtype="Int64"),
        "amount_base_currency": money(amounts),
        "due_date": dates([date(2025, 1 + n % 12, 1 + n % 28) for n in range(1, count + 1)]),
        "supplier_name": pd.array([None if n % 9 == 0 else f"Supplier {n % 17}"
                                   for n in range(1, count + 1)], dtype="string"),
    })


def edited(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows 0-2 changed (amount, a null, a name), rows 3-4 gone, one new invoice added."""
    frame = frame.copy()
    frame["amount_base_currency"] = money(
        ["999.99", None, "-0.01"] + [None if pd.isna(v) else str(v)
                                      for v in frame["amount_base_currency"][3:]])
    frame.loc[2, "supplier_name"] = "Renamed supplier"
    frame = frame.drop(index=[3, 4]).reset_index(drop=True)
    new = invoices(1)
    new.loc[0, "reference_number"] = "900001"
    return pd.concat([frame, new], ignore_index=True)


def rows_of(frame: pd.DataFrame) -> list[tuple]:
    """The frame's rows as plain Python values (None for nulls), sorted: order-free and exact."""
    rows = [tuple(None if pd.isna(value) else value for value in row)
            for row in frame.itertuples(index=False)]
    return sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row))
