"""The rows of a dashboard table whose source records changed, rebuilt without the rest.

A table with `rows_from` entities builds every row from one record of them, and its key starts
with that record's company and catalogue key: the row's group. The records written since a
moment (new, changed, or found deleted) name the groups to rebuild; every stored record of those
groups is read back and built with the table's own builder, together with the lookups. So an
incremental delivery costs what changed, not the size of the table, and its rows are the same
as a full build's (`visma_tableau_pipeline_tests/delivery/test_changed_groups.py` checks this for every such table).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from sqlalchemy import Connection

from visma_tableau_pipeline.delivery.publish import ChangedRows
from visma_tableau_pipeline.marts.holdback import build_holding_back
from visma_tableau_pipeline.marts.inputs import MartInputs, Record, StoredRecord
from visma_tableau_pipeline.marts.registry import MartTable
from visma_tableau_pipeline.state.changed_records import (
    any_changed_since,
    changed_since,
    live_records,
    settled_moment,
)
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.state.quarantine import HeldRecord, hold_back
from visma_tableau_pipeline.state.record_store import iter_json
from visma_tableau_pipeline.visma.catalogue import entity


def group_size(table: MartTable) -> int | None:
    """How many leading key columns name a row's source record (None: the table has no groups)."""
    if not table.rows_from:
        return None
    sizes = {1 + len(entity(name).key) for name in table.rows_from}
    if len(sizes) != 1:
        raise ValueError(f"{table.name}: rows_from entities {table.rows_from} have keys of different lengths")
    return sizes.pop()


def group_key(company_id: str, record_key: str) -> str:
    """A row group as the delivered row keys spell its columns: company|record key (escaped)."""
    return key_string([company_id]) + "|" + record_key


def tagged(company_id: str, records: Iterable[Record]) -> Iterator[Record]:
    """Stored records with the `company_id` every table builder reads."""
    return ({**record, "company_id": company_id} for record in records)


def stored_records(conn: Connection, company_ids: list[str], name: str) -> Iterator[StoredRecord]:
    """Every live stored record of one entity not held back, with its `company_id`, undecoded
    (`MartInputs` decodes them for the builders that need dicts)."""
    for company_id in company_ids:
        for text in iter_json(conn, company_id, name, skip_held=True):
            yield StoredRecord(company_id, text)


def note_held(db: StateDB, held: list[HeldRecord], run_id: str) -> None:
    """Note records a build held back, so that later builds leave them out too."""
    if held:
        with db.transaction() as conn:
            hold_back(conn, held, run_id)


def changed_rows(
    db: StateDB, company_ids: list[str], table: MartTable, since: datetime, as_of: date,
    run_id: str = "",
) -> ChangedRows | None:
    """The current rows of every group with a record written at or after `since`.

    A changed record the build cannot convert is held back (noted under `run_id`): its group is
    rebuilt without it, so its rows leave the table until Visma sends a version that converts.

    None when the table cannot be updated group by group: it has no groups, or one of its
    lookups changed (a renamed account changes rows of records that did not change).
    """
    if not table.rows_from:
        return None
    cursor = settled_moment(db.dialect)  # taken before the reads: may repeat, never skip
    with db.connect() as conn:
        if any_changed_since(conn, company_ids, table.lookups, since):
            return None
        keys: dict[str, set[str]] = defaultdict(set)
        for change in changed_since(conn, company_ids, table.rows_from, since):
            keys[change.company_id].add(change.record_key)
        records: dict[str, list[Record | StoredRecord]] = {name: [] for name in table.rows_from}
        for company_id, record_keys in keys.items():
            for name in table.rows_from:  # a group's records in every source (AR: both lists)
                records[name].extend(tagged(company_id, live_records(conn, company_id, name, record_keys)))
        for name in table.lookups:
            records[name] = list(stored_records(conn, company_ids, name))
    groups = frozenset(group_key(company_id, key) for company_id, ks in keys.items() for key in ks)
    frame, held = build_holding_back(table, MartInputs(records, as_of))
    note_held(db, held, run_id)
    return ChangedRows(frame, groups, cursor)
