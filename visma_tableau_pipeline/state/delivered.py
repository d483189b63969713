"""What each Tableau data source holds now, row by row, and how far it has caught up.

The ledger keeps every version ever delivered; this is its present tense: one row per live row of
a data source (key, content hash, and the group: the source record the row was built from). It
is written in the same transaction as the ledger rows, after Tableau confirmed the delivery.
An incremental delivery reads only the groups that changed, so its cost follows the change, not
the size of the table.

The cursors say up to which moment of the record store (its `updated_at`) a table's extract was
built ("extract") and its data source delivered ("delivered"); for a table that reads the as-of day,
"as_of" holds the day its daily snapshot was built for.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, select

from visma_tableau_pipeline.state.batches import batched
from visma_tableau_pipeline.state.schema import delivered_rows, table_cursors, utc_now
from visma_tableau_pipeline.state.upsert import insert_on_conflict, upsert_many

CursorKind = Literal["extract", "delivered", "as_of"]  # as_of: the day a daily snapshot was built for


def delivered_hashes(
    conn: Connection, data_source: str, groups: Collection[str] | None = None
) -> dict[str, str]:
    """row key -> content hash of the rows `data_source` holds; only `groups`' rows when given."""
    stmt = select(delivered_rows.c.row_key, delivered_rows.c.content_hash).where(
        delivered_rows.c.data_source == data_source
    )
    if groups is None:
        return {key: digest for key, digest in conn.execute(stmt)}
    found: dict[str, str] = {}
    for chunk in batched(sorted(groups)):
        found.update((key, digest) for key, digest in conn.execute(stmt.where(delivered_rows.c.group_key.in_(chunk))))
    return found


def has_delivered_rows(conn: Connection, data_source: str) -> bool:
    """Whether this table is kept for `data_source` (it is from the first delivery recorded here)."""
    stmt = select(delivered_rows.c.row_key).where(delivered_rows.c.data_source == data_source)
    return conn.execute(stmt.limit(1)).first() is not None


def apply_delivery(
    conn: Connection,
    data_source: str,
    hashes: Mapping[str, str | None],
    group_of: Callable[[str], str],
) -> None:
    """Record rows as delivered (row key -> new hash), or as removed (hash None)."""
    gone = [key for key, digest in hashes.items() if digest is None]
    for chunk in batched(gone):
        conn.execute(delete(delivered_rows).where(
            delivered_rows.c.data_source == data_source, delivered_rows.c.row_key.in_(chunk)
        ))
    present = ((key, digest) for key, digest in hashes.items() if digest is not None)
    for pairs in batched(present, 10_000):
        upsert_many(conn, delivered_rows, ("data_source", "row_key"), ("group_key", "content_hash"), [
            {"data_source": data_source, "row_key": key, "group_key": group_of(key),
             "content_hash": digest}
            for key, digest in pairs
        ])


def replace_delivered(
    conn: Connection, data_source: str, hashes: Mapping[str, str], group_of: Callable[[str], str]
) -> None:
    """Make the recorded rows of `data_source` exactly `hashes` (after a full publish)."""
    conn.execute(delete(delivered_rows).where(delivered_rows.c.data_source == data_source))
    apply_delivery(conn, data_source, hashes, group_of)


def get_cursor(conn: Connection, table_name: str, kind: CursorKind) -> datetime | None:
    """The record-store moment the table's extract or delivery covers (None: not known)."""
    stmt = select(table_cursors.c.value).where(
        table_cursors.c.table_name == table_name, table_cursors.c.kind == kind
    )
    return conn.execute(stmt).scalar_one_or_none()


def set_cursor(
    conn: Connection, table_name: str, kind: CursorKind, value: datetime | None, run_id: str
) -> None:
    """Record the moment (None forgets it: the next delivery compares the whole table)."""
    conn.execute(
        insert_on_conflict(conn, table_cursors, key=("table_name", "kind"),
                           update=("value", "run_id", "updated_at")),
        {"table_name": table_name, "kind": kind, "value": value, "run_id": run_id,
         "updated_at": utc_now()},
    )

