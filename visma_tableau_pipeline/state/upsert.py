"""The one place that knows how each backend spells INSERT ... ON CONFLICT."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

from visma_tableau_pipeline.state.errors import StateConfigError

_NOTHING = object()


def insert_on_conflict(
    conn: Connection, table: Table, key: Sequence[str], update: Sequence[str] = ()
) -> Insert:
    """An INSERT for `conn`'s backend that, on a `key` conflict, updates `update` columns.

    With no `update` columns a conflicting row is skipped, which makes the insert idempotent.
    """
    return _insert_on_conflict(conn.dialect.name, table, key, update)


def _insert_on_conflict(
    backend: str, table: Table, key: Sequence[str], update: Sequence[str]
) -> Insert:
    stmt: sqlite.Insert | postgresql.Insert
    if backend == "sqlite":
        stmt = sqlite.insert(table)
    elif backend == "postgresql":
        stmt = postgresql.insert(table)
    else:
        raise StateConfigError(f"no upsert for backend {backend!r}", backend=backend)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(key))
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: stmt.excluded[name] for name in update}
    )


def upsert_many(
    conn: Connection,
    table: Table,
    key: tuple[str, ...],
    update: tuple[str, ...],
    rows: list[dict[str, Any]],
) -> None:
    """`insert_on_conflict` for many rows at once, each a dict of every column of the insert.

    On SQLite the statement is compiled once and handed to the driver's executemany with the
    column types' conversions applied here: SQLAlchemy's per-row parameter handling cost about
    as much as SQLite's own work for a page of records (benchmarks/visma_sync.py). PostgreSQL
    keeps SQLAlchemy's batched executemany, which its driver needs to avoid a round trip a row.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert_on_conflict(conn, table, key, update), rows)
        return
    sql, columns, conversions = _sqlite_upsert(conn.dialect, table, key, update, tuple(rows[0]))
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    if not conversions:
        parameters = [values(row) for row in rows]
    else:
        # A converted column often holds one object for the whole batch (updated_at = now,
        # deleted_at None): each position remembers its last value, so it is converted once.
        last: list[tuple[Any, Any]] = [(_NOTHING, None)] * len(conversions)
        parameters = []
        for row in rows:
            row_values = list(values(row))
            for index, (position, convert) in enumerate(conversions):
                value = row_values[position]
                if value is not last[index][0]:
                    last[index] = (value, convert(value))
                row_values[position] = last[index][1]
            parameters.append(tuple(row_values))
    conn.exec_driver_sql(sql, parameters)


@lru_cache(maxsize=32)
def _sqlite_upsert(
    dialect: Dialect, table: Table, key: tuple[str, ...], update: tuple[str, ...],
    columns: tuple[str, ...],
) -> tuple[str, tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The SQL text, its parameters' column order, and the conversions of those columns."""
    compiled = _insert_on_conflict("sqlite", table, key, update).compile(
        dialect=dialect, column_keys=list(columns)
    )
    order = tuple(compiled.positiontup or ())
    conversions = []
    for position, name in enumerate(order):
        column_type = table.c[name].type
        convert = column_type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            conversions.append((position, convert))
    return compiled.string, order, tuple(conversions)
