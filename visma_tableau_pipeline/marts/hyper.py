"""Writing dashboard tables to Hyper files, and reading them, exactly and atomically.

Each table becomes `<directory>/<name>.hyper` holding one table `"Extract"."Extract"`, the schema
Tableau publishing expects (a table in `public` has broken publishing). Decimal columns become Hyper
`NUMERIC(p,s)` with every digit kept.

Rows travel between Arrow and Hyper as Parquet files that this process's one Hyper process
(`marts/hyper_process.py`) reads with `external(...)` and writes with `COPY ... TO`: Hyper's own
Parquet reader and writer keep every decimal, character and null as they are. This replaced
pantab, which starts a Hyper process per call (about a third of a small run), could not write a
negative decimal with fewer digits than its scale (-0.05) and wrote characters U+1D800-1DFFF,
U+2D800-2DFFF, ... as U+FFFD; each needed a workaround of its own (BENCHMARKS.md, "One Hyper
process"). Reads return pandas frames with pyarrow dtypes, text as `large_string`, as pantab did.

Hyper copies in parallel, so the row order of the file is not the frame's (Tableau does not care;
compare sorted frames). The file is written under a temporary name in the same directory and renamed into place, so a
reader (or a publish) never sees a half-written extract.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tableauhyperapi import Connection, HyperException, Name, SchemaName, TableName, escape_string_literal

from visma_tableau_pipeline.marts.hyper_process import hyper_connection

log = logging.getLogger(__name__)

EXTRACT_SCHEMA, EXTRACT_NAME = "Extract", "Extract"
EXTRACT_TABLE = TableName(EXTRACT_SCHEMA, EXTRACT_NAME)
MAX_PRECISION = 18  # NUMERIC up to 18 digits is 64-bit in Hyper and needs no newer file format
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


def _parquet(frame: pd.DataFrame, path: Path, target: Path) -> str:
    """`frame` written to the Parquet file `path`; what Hyper reads it as (an `external` call)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for field in table.schema:
        if pa.types.is_decimal(field.type) and field.type.precision > MAX_PRECISION:
            raise HyperWriteError(f"writing {target}: column {field.name} is {field.type}; at most "
                                  f"{MAX_PRECISION} digits fit a Hyper NUMERIC in this file format")
    pq.write_table(table, path, coerce_timestamps="us", allow_truncated_timestamps=True)
    return f"external({escape_string_literal(str(path))}, FORMAT => 'parquet')"


def write_hyper(frame: pd.DataFrame, directory: Path, name: str) -> Path:
    """Write `frame` to `<directory>/<name>.hyper` as `"Extract"."Extract"`, replacing it atomically.

    Returns the path written. Decimal columns keep every digit (see the module docstring).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = hyper_path(directory, name)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=directory, prefix=f".{name}.") as scratch:
        written = Path(scratch) / f"{name}.hyper"
        rows = _parquet(frame, Path(scratch) / "rows.parquet", target)
        try:
            with hyper_connection() as connection:
                connection.catalog.create_database(written)
                connection.catalog.attach_database(written, alias=_TARGET_ALIAS)
                connection.catalog.create_schema(SchemaName(_TARGET_ALIAS, EXTRACT_SCHEMA))
                connection.execute_command(
                    f"CREATE TABLE {TableName(_TARGET_ALIAS, EXTRACT_SCHEMA, EXTRACT_NAME)} AS SELECT * FROM {rows}")
                connection.catalog.detach_database(_TARGET_ALIAS)
        except HyperException as error:
            raise HyperWriteError(f"writing {target}: {error.main_message}") from error
        os.replace(written, target)
    log.info("wrote %s rows to %s in %.2f s", len(frame), target, time.perf_counter() - started)
    return target


def frame_from_hyper(path: Path) -> pd.DataFrame:
    """The `"Extract"."Extract"` table of a Hyper file as a frame (arrow-backed dtypes)."""
    return query_extract(path, "SELECT * FROM {extract}")


def query_extract(path: Path, sql: str) -> pd.DataFrame:
    """The result of a SQL query over an extract, in which `{extract}` names its table (alias `t`).

    Hyper filters and aggregates, so a few rows (or a few sums) of a large extract cost what they
    are, not what the extract is.
    """
    query = sql.replace("{extract}", f"{EXTRACT_TABLE} AS t")
    with tempfile.TemporaryDirectory(prefix="vtp-read-") as scratch:
        result = Path(scratch) / "rows.parquet"
        with hyper_connection(Path(path)) as connection:
            connection.execute_command(f"COPY ({query}) TO {escape_string_literal(str(result))} WITH (FORMAT PARQUET)")
        table = pq.read_table(result)
    wide_texts = pa.schema([field.with_type(pa.large_string()) if pa.types.is_string(field.type) else field
                            for field in table.schema])
    return table.cast(wide_texts).to_pandas(types_mapper=pd.ArrowDtype)

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
    with hyper_connection(Path(path)) as connection:
        return int(connection.execute_scalar_query(f"SELECT COUNT(*) FROM {EXTRACT_TABLE}"))


def replace_groups(path: Path, rows: pd.DataFrame, groups: pd.DataFrame) -> int:
    """Replace, in an extract, every row matching a row of `groups` (on its columns) by `rows`.

    `rows` are the new rows of those groups (none for a group whose records are gone). The file
    is changed in a copy that is renamed into place, as `write_hyper` does. Returns the number of
    rows the extract holds afterwards. Raises `ExtractSchemaChanged`, leaving the file as it
    was, when `rows` do not have the extract's columns and types.
    """
    path = Path(path)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as scratch:
        staging, written = Path(scratch) / "staging.hyper", Path(scratch) / path.name
        shutil.copyfile(path, written)
        new_rows = _parquet(rows, Path(scratch) / "rows.parquet", path)
        new_keys = _parquet(groups, Path(scratch) / "keys.parquet", path)
        try:
            with hyper_connection() as connection:
                connection.catalog.create_database(staging)
                connection.catalog.attach_database(staging, alias=_STAGING_ALIAS)
                connection.catalog.attach_database(written, alias=_TARGET_ALIAS)
                connection.catalog.create_schema(SchemaName(_STAGING_ALIAS, EXTRACT_SCHEMA))
                target = TableName(_TARGET_ALIAS, EXTRACT_SCHEMA, EXTRACT_NAME)
                typed = TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, "rows")
                keys = TableName(_STAGING_ALIAS, EXTRACT_SCHEMA, "keys")
                connection.execute_command(f"CREATE TABLE {typed} AS SELECT * FROM {new_rows}")
                connection.execute_command(f"CREATE TABLE {keys} AS SELECT * FROM {new_keys}")
                if _columns(connection, typed) != _columns(connection, target):
                    raise ExtractSchemaChanged(f"{path}: the table's columns or types changed")
                matches = " AND ".join(f"g.{Name(c)} IS NOT DISTINCT FROM t.{Name(c)}" for c in groups.columns)
                connection.execute_command(
                    f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM {keys} g WHERE {matches})"
                )
                connection.execute_command(f"INSERT INTO {target} SELECT * FROM {typed}")
                total = connection.execute_scalar_query(f"SELECT COUNT(*) FROM {target}")
                connection.catalog.detach_database(_TARGET_ALIAS)
        except HyperException as error:
            raise HyperWriteError(f"updating {path}: {error.main_message}") from error
        os.replace(written, path)
    log.info("replaced %s groups of %s with %s rows in %.2f s", len(groups), path, len(rows),
             time.perf_counter() - started)
    return int(total)
