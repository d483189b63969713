"""The one place that knows how each backend spells INSERT ... ON CONFLICT."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from visma_tableau_pipeline.state.errors import StateConfigError


def insert_on_conflict(
    conn: Connection, table: Table, key: Sequence[str], update: Sequence[str] = ()
) -> Insert:
    """An INSERT for `conn`'s backend that, on a `key` conflict, updates `update` columns.

    With no `update` columns a conflicting row is skipped, which makes the insert idempotent.
    """
    backend = conn.dialect.name
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
