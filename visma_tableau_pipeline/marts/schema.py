"""Declared columns and dtypes of the dashboard tables.

Every table has a fixed column list with one dtype per column, so that a frame built from no
records, from one company or from ten has the same shape, and the Hyper file Tableau sees keeps
the same column types from run to run (a type change breaks published workbooks).

Column types follow Visma's contract (its OpenAPI document types every amount, rate and quantity
as `number`/`double`) and what a finance user reads:

- Money is a pyarrow `decimal128(18, 2)` column (`pd.ArrowDtype`): exact, vectorised, written by
  `marts.hyper` to Hyper `NUMERIC(18,2)`, so that sums reconcile to the cent. Visma sends a double,
  so an amount may arrive as `1234.5600000000002`: digits that are only the double's own
  representation error (the value is within 2^-50 of its magnitude from a cent) are dropped, the
  documented rule of `money_value`. An amount with a real sub-cent part, or beyond the 16 integer
  digits NUMERIC(18,2) holds, is not rounded: it is refused (`RejectedValue`) and its record held
  back with that reason.
- Rates and quantities are doubles in the contract and Hyper `DOUBLE` columns here: a double holds
  every value the contract admits exactly (`1.0275229357798166`, a 17-digit exchange rate, did not
  fit the NUMERIC(18,10) these were before), and nobody reconciles them to the cent.

A value no column can carry raises `RejectedValue` (field, value, reason), never a silent change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum
from typing import Any

import pandas as pd
import pyarrow as pa


class MartError(ValueError):
    """A dashboard table could not be built; the message names the table and the column."""


class RejectedValue(MartError):
    """One value of one record that its column cannot carry: the record is held back.

    `field` is the Visma field (dotted path) where known, else the table column.
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field} = {_shown(value)}: {reason}")
        self.field, self.value, self.reason = field, value, reason


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Kind(Enum):
    """What a column holds; decides its pandas dtype and its Hyper type."""

    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"
    MONEY = "money"  # NUMERIC(18,2): amounts (see the module docstring for Visma's doubles)
    QUANTITY = "quantity"  # DOUBLE: quantities, unit prices (a double in Visma's contract)
    RATE = "rate"  # DOUBLE: exchange rates (a double in Visma's contract)

    @property
    def arrow_type(self) -> pa.DataType | None:
        """The pyarrow type that carries the column, for the kinds pandas has no own dtype for."""
        return _ARROW_TYPES.get(self)

    @property
    def dtype(self) -> Any:
        """The pandas dtype of the column."""
        arrow_type = self.arrow_type
        if arrow_type is not None:
            return pd.ArrowDtype(arrow_type)
        return _PANDAS_DTYPES[self]


# Short names for the column declarations of the table modules.
TEXT, INT, BOOL, DATE, TIMESTAMP = Kind.TEXT, Kind.INT, Kind.BOOL, Kind.DATE, Kind.TIMESTAMP
MONEY, QUANTITY, RATE = Kind.MONEY, Kind.QUANTITY, Kind.RATE

_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.DATE: pa.date32(),
    Kind.MONEY: pa.decimal128(18, 2),
    Kind.QUANTITY: pa.float64(),
    Kind.RATE: pa.float64(),
}
MONEY_TYPE: pa.Decimal128Type = _ARROW_TYPES[Kind.MONEY]
_CENT = Decimal("0.01")
_MONEY_LIMIT = Decimal(10) ** (MONEY_TYPE.precision - MONEY_TYPE.scale)
_DOUBLE_NOISE = Decimal(2) ** -50  # relative: a few units in the last place of a double


def money_value(value: Any, field: str) -> Decimal | None:
    """An amount as the cents a money column keeps, by the rule in the module docstring."""
    if value is None:
        return None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RejectedValue(field, value, "not a finite number; a money column needs one")
    cents = value.quantize(_CENT, rounding=ROUND_HALF_EVEN) if abs(value) < _MONEY_LIMIT else None
    if cents is None or abs(cents) >= _MONEY_LIMIT:
        raise RejectedValue(field, value, f"too large: a money column holds at most "
                                          f"{MONEY_TYPE.precision - MONEY_TYPE.scale} integer digits")
    if cents != value and abs(value - cents) > abs(value) * _DOUBLE_NOISE:
        raise RejectedValue(field, value, "has a part below the cent; a money column keeps cents "
                                          "and does not round an amount")
    return cents


def double_value(value: Any, field: str) -> float | None:
    """A rate or quantity as the double Visma's contract says it is (correctly rounded)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise RejectedValue(field, value, "not a number")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        number = math.inf
    if not math.isfinite(number):
        raise RejectedValue(field, value, "outside the range of a double, the contract's type")
    return number
_PANDAS_DTYPES: dict[Kind, str] = {
    Kind.TEXT: "string",
    Kind.INT: "Int64",
    Kind.BOOL: "boolean",
    Kind.TIMESTAMP: "datetime64[us]",
}


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    kind: Kind


def columns(*pairs: tuple[str, Kind]) -> tuple[Column, ...]:
    """Columns from (name, kind) pairs: the compact way the table modules declare themselves."""
    return tuple(Column(name, kind) for name, kind in pairs)


@dataclass(frozen=True)
class TableSchema:
    """The declared column list of one dashboard table."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in declared order."""
        return tuple(column.name for column in self.columns)

    def with_text_columns(self, extra: Iterable[str]) -> TableSchema:
        """This schema plus text columns derived from data (dimension segments), in that order."""
        known = set(self.names)
        added = tuple(Column(name, Kind.TEXT) for name in extra if name not in known)
        return TableSchema(self.name, self.columns + added)

    def frame(self, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """A frame with exactly the declared columns and dtypes; keys a row lacks become null."""
        materialised = list(rows)
        data = {
            column.name: _series(self.name, column, [row.get(column.name) for row in materialised])
            for column in self.columns
        }
        return pd.DataFrame(data, columns=list(self.names))

    def frame_from_arrays(self, arrays: Mapping[str, pa.Array], rows: int) -> pd.DataFrame:
        """A frame like `frame` from Arrow columns already of each kind's Arrow type (the
        column-wise build, `marts/columnar.py`); a column not given is null."""
        data = {column.name: _series_from_arrow(column, arrays.get(column.name), rows) for column in self.columns}
        return pd.DataFrame(data, columns=list(self.names))

    def conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` reduced to the declared columns, in order, with the declared dtypes."""
        missing = [name for name in self.names if name not in frame.columns]
        if missing:
            raise MartError(f"table {self.name}: frame lacks declared columns {missing}")
        data = {column.name: _cast(self.name, column, frame[column.name]) for column in self.columns}
        return pd.DataFrame(data, columns=list(self.names)).reset_index(drop=True)


def _series(table: str, column: Column, values: list[Any]) -> pd.Series:
    arrow_type = column.kind.arrow_type
    try:
        if column.kind in (Kind.QUANTITY, Kind.RATE):
            values = [double_value(value, column.name) for value in values]
        if arrow_type is not None:
            try:
                array = pa.array(values, type=arrow_type)
            except (pa.ArrowException, ValueError, TypeError):
                if column.kind is not Kind.MONEY:
                    raise
                # the rare slow path: Visma's double noise rounded away, or the value named
                array = pa.array([money_value(value, column.name) for value in values], type=arrow_type)
            return pd.Series(pd.arrays.ArrowExtensionArray(array))
        return pd.Series(pd.array(values, dtype=column.kind.dtype))
    except RejectedValue:
        raise
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as error:
        raise MartError(
            f"table {table}, column {column.name} ({column.kind.value}): {error}"
        ) from error


# The Arrow type of each kind's values in a column-wise build (`frame_from_arrays`).
ARROW_TYPES: dict[Kind, pa.DataType] = {Kind.TEXT: pa.string(), Kind.INT: pa.int64(), Kind.BOOL: pa.bool_(),
                                        Kind.TIMESTAMP: pa.timestamp("us"), **_ARROW_TYPES}


def _series_from_arrow(column: Column, array: pa.Array | None, rows: int) -> pd.Series:
    expected = ARROW_TYPES[column.kind]
    if array is None:
        array = pa.nulls(rows, expected)
    if array.type != expected or len(array) != rows:
        raise MartError(f"column {column.name} ({column.kind.value}): {len(array)} values of {array.type}, "
                        f"not {rows} of {expected}")
    if column.kind.arrow_type is not None:
        return pd.Series(pd.arrays.ArrowExtensionArray(array))
    if column.kind is Kind.TIMESTAMP:
        return pd.Series(pd.array(array.to_numpy(zero_copy_only=False), dtype=column.kind.dtype))
    return pd.Series(pd.array(array, dtype=column.kind.dtype))


def _cast(table: str, column: Column, series: pd.Series) -> pd.Series:
    try:
        return series.astype(column.kind.dtype).reset_index(drop=True)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise MartError(
            f"table {table}, column {column.name} ({column.kind.value}): {error}"
        ) from error
