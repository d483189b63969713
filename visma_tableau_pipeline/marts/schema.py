"""Declared columns and dtypes of the dashboard tables.

Every table has a fixed column list with one dtype per column, so that a frame built from no
records, from one company or from ten has the same shape, and the Hyper file Tableau sees keeps
the same column types from run to run (a type change breaks published workbooks).

Money is a pyarrow `decimal128(18, 2)` column (`pd.ArrowDtype`): exact, vectorised, and written by
`marts.hyper` to Hyper `NUMERIC(18,2)`. A value with more decimals than its column holds is an
error, never a silent rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pandas as pd
import pyarrow as pa


class MartError(ValueError):
    """A dashboard table could not be built; the message names the table and the column."""


class Kind(Enum):
    """What a column holds; decides its pandas dtype and its Hyper type."""

    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"
    MONEY = "money"  # NUMERIC(18,2): amounts
    QUANTITY = "quantity"  # NUMERIC(18,6): quantities, unit prices, hours
    RATE = "rate"  # NUMERIC(18,10): exchange rates

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
    Kind.QUANTITY: pa.decimal128(18, 6),
    Kind.RATE: pa.decimal128(18, 10),
}
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
        if arrow_type is not None:
            return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, type=arrow_type)))
        return pd.Series(pd.array(values, dtype=column.kind.dtype))
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise MartError(
            f"table {table}, column {column.name} ({column.kind.value}): {error}"
        ) from error


def _cast(table: str, column: Column, series: pd.Series) -> pd.Series:
    try:
        return series.astype(column.kind.dtype).reset_index(drop=True)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise MartError(
            f"table {table}, column {column.name} ({column.kind.value}): {error}"
        ) from error
