"""Writing dashboard tables to Hyper files, exactly and atomically.

Each table becomes `<directory>/<name>.hyper` holding one table `"Extract"."Extract"` (the schema
Tableau publishing expects; pantab's default `public` breaks it). Decimal columns become Hyper
`NUMERIC(p,s)` with every digit kept.

pantab 5.3.0 cannot write a negative decimal whose unscaled value has fewer digits than its scale
(-0.05 or -0.01 at scale 2; -0.10 and -0.5 are fine): Hyper rejects the text pantab produces with
"invalid number format". Accounting data is full of such amounts (rounding differences, small
credit lines). So decimal columns travel as their unscaled integers (BIGINT, -0.05 → -5) into a
staging file, and Hyper itself turns them back into NUMERIC with
`CAST(CAST(x AS NUMERIC(18,0)) * 0.01 AS NUMERIC(18,2))`, an exact operation, while copying the
staging table into the target file. The copy runs inside Hyper, so it costs little next to the
write itself.

pantab 5.3.0 also writes a character outside the BMP whose low 16 bits fall in D800-DFFF
(U+1D800-1DFFF, U+2D800-2DFFF, ...; CJK Extension F among them) as U+FFFD, although Hyper stores
it well. Rows holding such a character are left out of pantab's write and added to the staging
table through the Hyper API's own `Inserter`, which writes them exactly (Hyper's REPLACE cannot
put them back: it refuses texts that hold a NUL). Finding them costs one regular-expression scan
of the text columns; the rows themselves are nearly always none.

Hyper copies in parallel, so the row order of the file is not the frame's (Tableau does not care;
compare sorted frames). The file is written under a temporary name in the same directory and renamed into place, so a
reader (or a publish) never sees a half-written extract.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pantab
import pyarrow as pa
import pyarrow.compute as pc
from tableauhyperapi import (
    Connection,
    HyperException,
    HyperProcess,
    Inserter,
    Name,
    SchemaName,
    TableName,
    Telemetry,
    escape_string_literal,
)

log = logging.getLogger(__name__)

EXTRACT_SCHEMA, EXTRACT_NAME = "Extract", "Extract"
EXTRACT_TABLE = TableName(EXTRACT_SCHEMA, EXTRACT_NAME)
MAX_PRECISION = 18  # NUMERIC up to 18 digits is 64-bit in Hyper and needs no newer file format
_MANGLED = re.compile("[" + "".join(f"\\U{plane:04X}D800-\\U{plane:04X}DFFF" for plane in range(1, 17)) + "]")
_MANGLED_RE2 = "[" + "".join(f"\\x{{{plane:X}D800}}-\\x{{{plane:X}DFFF}}" for plane in range(1, 17)) + "]"
_STAGING_ALIAS, _TARGET_ALIAS = "staging", "target"


class HyperWriteError(RuntimeError):
    """A frame could not be written to its Hyper file; the message names the file and column."""


class ExtractSchemaChanged(HyperWriteError):
    """Rows cannot go into an extract whose columns differ: the extract must be written whole."""


def _columns(connection: Connection, table: TableName) -> list[tuple[str, str]]:
    definition = connection.catalog.get_table_definition(table)
    return [(str(column.name), str(column.type)) for column in definition.columns]


def hyper_path(directory: Path, name: str) -> Path:
    """Where the extract of table `name` lives."""
    return Path(directory) / f"{name}.hyper"


def write_hyper(frame: pd.DataFrame, directory: Path, name: str) -> Path:
    """Write `frame` to `<directory>/<name>.hyper` as `"Extract"."Extract"`, replacing it atomically.

    Returns the path written. Decimal columns keep every digit (see the module docstring).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = hyper_path(directory, name)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=directory, prefix=f".{name}.") as scratch:
        written = Path(scratch) / f"{name}.hyper"
        try:
            staged = _staged(table, target)
            if staged.needed:
                staging = Path(scratch) / "staging.hyper"
                pantab.frame_to_hyper(staged.table, staging, table=EXTRACT_TABLE)
                _rescale(staging, written, staged)
            else:
                pantab.frame_to_hyper(table, written, table=EXTRACT_TABLE)
        except (HyperException, RuntimeError, ValueError) as error:
            raise HyperWriteError(f"writing {target}: {error}") from error
        os.replace(written, target)
    log.info("wrote %s rows to %s in %.2f s", len(frame), target, time.perf_counter() - started)
    return target


def frame_from_hyper(path: Path) -> pd.DataFrame:
    """The `"Extract"."Extract"` table of a Hyper file as a frame (arrow-backed dtypes)."""
    return pantab.frame_from_hyper(Path(path), table=EXTRACT_TABLE)


def query_extract(path: Path, sql: str) -> pd.DataFrame:
    """The result of a SQL query over an extract, in which `{extract}` names its table (alias `t`).

    Hyper filters and aggregates, so a few rows (or a few sums) of a large extract cost what they
    are, not what the extract is.
    """
    return pantab.frame_from_hyper_query(Path(path), sql.replace("{extract}", f"{EXTRACT_TABLE} AS t"))


def not_of_groups(groups: Sequence[Sequence[str]], columns: Sequence[str]) -> str:
    """A condition for `query_extract`: the row's `columns` are none of `groups` (text values)."""
    if not groups:
        return "TRUE"
    values = ", ".join("(" + ", ".join(escape_string_literal(part) for part in group) + ")" for group in groups)
    names = ", ".join(f"c{index}" for index in range(len(columns)))
    matches = " AND ".join(f"g.c{index} IS NOT DISTINCT FROM t.{Name(column)}" for index, column in enumerate(columns))
    return f"NOT EXISTS (SELECT 1 FROM (VALUES {values}) AS g({names}) WHERE {matches})"


def extract_rows(path: Path) -> int:
    """How many rows an extract holds, counted by Hyper (without reading them)."""
    counted = pantab.frame_from_hyper_query(Path(path), f"SELECT COUNT(*) AS n FROM {EXTRACT_TABLE}")
    return int(counted["n"].iloc[0])


@dataclass(frozen=True)
class _Staged:
    """A table as it travels through pantab, and what Hyper must add and undo in the copy."""

    table: pa.Table  # the rows pantab writes, decimals unscaled
    exact: pa.Table  # the rows the Inserter writes (characters pantab would change), likewise
    decimals: dict[str, pa.Decimal128Type]  # columns sent as unscaled integers

    @property
    def needed(self) -> bool:
        return bool(self.decimals or self.exact.num_rows)


def _staged(table: pa.Table, target: Path) -> _Staged:
    """`table` ready for pantab: decimals unscaled, rows it would change set apart."""
    decimals = {field.name: field.type for field in table.schema if pa.types.is_decimal(field.type)}
    texts = [table.column(index) for index, field in enumerate(table.schema)
             if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
    mangled = pa.scalar(False)
    for column in texts:
        mangled = pc.or_(mangled, pc.fill_null(pc.match_substring_regex(column, _MANGLED_RE2), False))
    if not texts or not pc.any(mangled).as_py():  # nearly always: every row goes through pantab
        return _Staged(_unscaled(table, decimals, target), table.slice(0, 0), decimals)
    return _Staged(_unscaled(table.filter(pc.invert(mangled)), decimals, target),
                   _unscaled(table.filter(mangled), decimals, target), decimals)


def _insert_exact(connection: Connection, table: TableName, rows: pa.Table) -> None:
    """Append `rows` to a staging table through the Hyper API, which keeps every character."""
    if not rows.num_rows:
        return
    definition = connection.catalog.get_table_definition(table)
    names = [str(column.name.unescaped) for column in definition.columns]
    with Inserter(connection, definition) as inserter:
        inserter.add_rows([[row[name] for name in names] for row in rows.to_pylist()])
        inserter.execute()


def _unscaled(table: pa.Table, decimals: dict[str, pa.Decimal128Type], target: Path) -> pa.Table:
    """`table` with each decimal column replaced by its unscaled int64 values (-0.05 → -5)."""
    for column, decimal in decimals.items():
        if decimal.precision > MAX_PRECISION:
            raise HyperWriteError(
                f"writing {target}: column {column} is {decimal}; at most "
                f"{MAX_PRECISION} digits fit a Hyper NUMERIC in this file format"
            )
        integers = pc.cast(pc.cast(pc.multiply(table[column], 10**decimal.scale),
                                   pa.decimal128(38, 0)), pa.int64())
        table = table.set_column(table.schema.get_field_index(column), column, integers)
    return table


def _rescaled_columns(staged: _Staged) -> list[str]:
    """The select list that turns unscaled integers back into NUMERIC, other columns as they are."""
    selected = []
    for field in staged.table.schema:
        column = Name(field.name)
        decimal = staged.decimals.get(field.name)
        if decimal is None:
            selected.append(str(column))
            continue
        numeric = f"NUMERIC({decimal.precision},{decimal.scale})"
        if decimal.scale:
            step = "0." + "0" * (decimal.scale - 1) + "1"  # 10^-scale, an exact literal
            selected.append(
                f"CAST(CAST({column} AS NUMERIC({MAX_PRECISION},0)) * {step} AS {numeric}) AS {column}"
            )
        else:
            selected.append(f"CAST({column} AS {numeric}) AS {column}")
    return selected


@contextmanager
def _hyper(log_dir: Path) -> Iterator[Connection]:
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                      parameters={"log_dir": str(log_dir)}) as hyper, Connection(hyper.endpoint) as connection:
        yield connection


def _rescale(staging: Path, written: Path, staged: _Staged) -> None:
    """Copy the staging table into `written`, turning unscaled integers back into NUMERIC."""
    source = TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, EXTRACT_NAME)
    target = TableName(_TARGET_ALIAS, EXTRACT_SCHEMA, EXTRACT_NAME)
    with _hyper(staging.parent) as connection:
        connection.catalog.create_database(written)
        connection.catalog.attach_database(written, alias=_TARGET_ALIAS)
        connection.catalog.attach_database(staging, alias=_STAGING_ALIAS)
        connection.catalog.create_schema(SchemaName(_TARGET_ALIAS, EXTRACT_SCHEMA))
        _insert_exact(connection, source, staged.exact)
        connection.execute_command(
            f"CREATE TABLE {target} AS SELECT {', '.join(_rescaled_columns(staged))} FROM {source}"
        )


def replace_groups(path: Path, rows: pd.DataFrame, groups: pd.DataFrame) -> int:
    """Replace, in an extract, every row matching a row of `groups` (on its columns) by `rows`.

    `rows` are the new rows of those groups (none for a group whose records are gone). The file
    is changed in a copy that is renamed into place, as `write_hyper` does. Returns the number of
    rows the extract holds afterwards. Raises `ExtractSchemaChanged`, leaving the file as it
    was, when `rows` do not have the extract's columns and types.
    """
    path = Path(path)
    staged = _staged(pa.Table.from_pandas(rows, preserve_index=False), path)
    staged_keys = _staged(pa.Table.from_pandas(groups, preserve_index=False), path)
    staged_rows, staged_groups = TableName(EXTRACT_SCHEMA, "rows"), TableName(EXTRACT_SCHEMA, "groups")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as scratch:
        staging, written = Path(scratch) / "staging.hyper", Path(scratch) / path.name
        shutil.copyfile(path, written)
        try:
            pantab.frames_to_hyper({staged_rows: staged.table, staged_groups: staged_keys.table},
                                   staging)
            with _hyper(Path(scratch)) as connection:
                connection.catalog.attach_database(written, alias=_TARGET_ALIAS)
                connection.catalog.attach_database(staging, alias=_STAGING_ALIAS)
                _insert_exact(connection, TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, "rows"), staged.exact)
                _insert_exact(connection, TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, "groups"),
                              staged_keys.exact)
                target = TableName(_TARGET_ALIAS, EXTRACT_SCHEMA, EXTRACT_NAME)
                typed = TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, "typed")
                connection.execute_command(
                    f"CREATE TABLE {typed} AS SELECT {', '.join(_rescaled_columns(staged))} "
                    f"FROM {TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, 'rows')}"
                )
                keys = TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, "keys")
                connection.execute_command(
                    f"CREATE TABLE {keys} AS SELECT {', '.join(_rescaled_columns(staged_keys))} "
                    f"FROM {TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, 'groups')}"
                )
                if _columns(connection, typed) != _columns(connection, target):
                    raise ExtractSchemaChanged(f"{path}: the table's columns or types changed")
                matches = " AND ".join(f"g.{Name(c)} IS NOT DISTINCT FROM t.{Name(c)}" for c in groups.columns)
                connection.execute_command(
                    f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM {keys} g WHERE {matches})"
                )
                connection.execute_command(f"INSERT INTO {target} SELECT * FROM {typed}")
                total = connection.execute_scalar_query(f"SELECT COUNT(*) FROM {target}")
        except ExtractSchemaChanged:
            raise
        except (HyperException, RuntimeError, ValueError) as error:
            raise HyperWriteError(f"updating {path}: {error}") from error
        os.replace(written, path)
    log.info("replaced %s groups of %s with %s rows in %.2f s", len(groups), path, len(rows),
             time.perf_counter() - started)
    return int(total)
