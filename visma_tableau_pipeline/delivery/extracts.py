"""Dashboard tables from the state store to Hyper extracts, one file per table.

Every company is in one file (a `company_id` column). Snapshot tables (aging) keep the other
snapshots of the previous extract and replace only the one being built (its day and kind, for
the companies built).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from itertools import islice
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa

from visma_tableau_pipeline.delivery.changed_groups import (
    changed_rows,
    group_key,
    group_size,
    note_held,
    stored_records,
)
from visma_tableau_pipeline.delivery.extract_store import ExtractStore
from visma_tableau_pipeline.delivery.publish import PublishTarget
from visma_tableau_pipeline.delivery.row_changes import keys_frame
from visma_tableau_pipeline.marts.aging import DAILY
from visma_tableau_pipeline.marts.entitlements import entitlements_table, load_entitlements
from visma_tableau_pipeline.marts.holdback import build_holding_back
from visma_tableau_pipeline.marts.hyper import (
    ExtractSchemaChanged,
    extract_rows,
    frame_from_hyper,
    hyper_path,
    not_of_groups,
    query_extract,
    replace_groups,
    write_hyper,
)
from visma_tableau_pipeline.marts.inputs import MartInputs, StoredRecord
from visma_tableau_pipeline.marts.registry import ExtractRead, MartTable, build_with, mart_table, with_keys_filled
from visma_tableau_pipeline.marts.schema import RejectedValue
from visma_tableau_pipeline.state.changed_records import any_changed_since, settled_moment
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.delivered import get_cursor, set_cursor
from visma_tableau_pipeline.state.keys import key_parts
from visma_tableau_pipeline.state.quarantine import HeldRecord, held_records, release_stale

log = logging.getLogger(__name__)

SNAPSHOT_COLUMN = "snapshot_date"
SNAPSHOT_KIND = "snapshot_kind"  # `aging.DAILY` or `aging.CLOSE`


BUILD_CHUNK = 50_000  # records of a `rows_from` entity decoded and built at a time


def build_table(db: StateDB, company_ids: list[str], table: MartTable, as_of: date,
                run_id: str = "", snapshot_kind: str = DAILY) -> pd.DataFrame:
    """One dashboard table, all companies, from the state store, without held-back records.

    Records the build cannot convert are held back (`marts/holdback.py`) and noted in the store
    under `run_id`, so that later builds leave them out too.

    A table built record by record (`chunked_sources`) is built a chunk of its records at a
    time, each chunk with the other sources whole, and the chunks' rows put together (merged by
    `table.combine` where they add up, a row two sources make kept once, as the builder keeps
    it): the same rows as one build, without every record
    decoded at once, which is most of the memory a build of a large table takes (15.5 GB for
    1,000,000 AP invoices, measured with `ru_maxrss`; 2.0 GB in chunks).
    """
    chunked = table.chunked_sources
    held: list[HeldRecord] = []

    def build(inputs: MartInputs) -> pd.DataFrame:
        frame, held_now = build_holding_back(table, inputs)
        held.extend(held_now)
        return frame

    with db.connect() as conn:
        whole = {name: list(stored_records(conn, company_ids, name))
                 for name in table.sources if name not in chunked}
        frames = [
            build(MartInputs({**whole, name: chunk}, as_of, snapshot_kind))
            for name in chunked
            for chunk in _chunks(stored_records(conn, company_ids, name), BUILD_CHUNK)
        ]
    if not frames:  # built whole, or no records to chunk (the table's empty frame, its columns)
        frame = build(MartInputs(whole, as_of, snapshot_kind))
    else:
        frame = pd.concat(frames, ignore_index=True)
        if table.combine:
            frame = table.combine(frame)
        elif len(chunked) > 1:  # a document two sources list (AR: both lists) once, the later source's
            frame = frame.drop_duplicates(list(table.key), keep="last", ignore_index=True)
    note_held(db, held, run_id)
    return frame


def _chunks(records: Iterator[StoredRecord], size: int) -> Iterator[list[StoredRecord]]:
    while chunk := list(islice(records, size)):
        yield chunk


@dataclass(frozen=True)
class ExtractResult:
    """What writing a table's extract did."""

    path: Path
    rows: int  # rows the extract holds
    frame: pd.DataFrame  # the rows built this time: the whole table, or the changed groups' rows
    mode: Literal["built", "updated", "unchanged"]
    reason: str
    held: tuple[HeldRecord, ...] = ()  # records of its sources held back now (this run or before)


def build_extract(
    db: StateDB, company_ids: list[str], table: MartTable, as_of: date, extracts_dir: Path,
    run_id: str, *, full: bool = False, snapshot_kind: str = DAILY, store: ExtractStore | None = None,
) -> ExtractResult:
    """Bring the table's extract up to the store, and note up to which moment it is.

    A table built record by record (`rows_from`) whose extract is known is updated in place:
    the rows of records written since it was built are replaced, which costs what changed.
    Otherwise (and with `full`) the whole table is built and written. The moment is what the
    next update and a full publish of the extract start from. A snapshot table builds the
    snapshot of `as_of` and `snapshot_kind` for `company_ids` and keeps every other one.

    With a `store` (VTP_EXTRACTS_URL) the shared copy is the one updated, from the moment it
    covers, and what was written is shared before the moment is noted (`delivery/extract_store.py`).
    """
    path = hyper_path(extracts_dir, table.name)
    cursor = settled_moment(db.dialect)  # taken before the reads: may repeat, never skip
    with db.transaction() as conn:
        release_stale(conn)  # records Visma sent again are tried again
        built_up_to = get_cursor(conn, table.name, "extract")
        built_as_of = get_cursor(conn, table.name, "as_of")
    if store is not None and (snapshot_column_of(table) or not full):  # the shared copy is the base
        shared = store.pull(table.name, path)
        built_up_to = shared.built_up_to if shared else None
    result, why = None, "a full build was asked for"
    if not full:
        result = _unchanged(db, company_ids, table, path, built_up_to, built_as_of, as_of, snapshot_kind)
        if result is None:
            result, why = _update_by_groups(db, company_ids, table, as_of, path, built_up_to, run_id)
    if result is None:
        frame = _from_extracts(db, company_ids, table, as_of, snapshot_kind, extracts_dir, run_id, store)
        if frame is None:
            frame = build_table(db, company_ids, table, as_of, run_id, snapshot_kind)
        path = write_extract(frame, extracts_dir, table, as_of, snapshot_kind, company_ids)
        result = ExtractResult(path, len(frame), frame, "built", why)
    if store is not None and result.mode != "unchanged":
        store.push(table.name, result.path, cursor, run_id)
    with db.transaction() as conn:
        if result.mode != "unchanged":  # the cursor still says what the extract holds
            set_cursor(conn, table.name, "extract", cursor, run_id)
            if table.reads_as_of:  # a close snapshot leaves the day's daily one to be built again
                day = datetime.combine(as_of, time(), UTC) if snapshot_kind == DAILY else None
                set_cursor(conn, table.name, "as_of", day, run_id)
        held = held_records(conn, company_ids, table.sources)
    return replace(result, held=tuple(held))


def _unchanged(
    db: StateDB, company_ids: list[str], table: MartTable, path: Path, built_up_to: datetime | None,
    built_as_of: datetime | None, as_of: date, snapshot_kind: str,
) -> ExtractResult | None:
    """The extract as it is, when nothing it is built from changed since it was built.

    What makes a run with nothing changed in Visma cost the same for small and large books: a
    table that aggregates (aging, spend, the close, the statements) is not rebuilt, and its
    data source is not compared again (`delivery/publish.py`). A table that reads the as-of
    day (aging, expected cash) is rebuilt on a new day.
    """
    if built_up_to is None or not path.exists():
        return None
    if table.reads_as_of and (snapshot_kind != DAILY or built_as_of is None or built_as_of.date() != as_of):
        return None
    with db.connect() as conn:
        if any_changed_since(conn, company_ids, table.sources, built_up_to):
            return None
    reason = "no record it reads was written since it was built" + (f" for {as_of}" if table.reads_as_of else "")
    empty = build_with(table, MartInputs({}, as_of, snapshot_kind))
    return ExtractResult(path, extract_rows(path), empty, "unchanged", reason)


MAX_LEFT_OUT = 5_000  # changed records beyond which a derived table is built from the records


def _from_extracts(
    db: StateDB, company_ids: list[str], table: MartTable, as_of: date, snapshot_kind: str, extracts_dir: Path,
    run_id: str, store: ExtractStore | None = None,
) -> pd.DataFrame | None:
    """The table derived from the extracts it reads (`table.from_extracts`), or None when it is
    better built from the records: an extract missing, a lookup of one changed, or most of it,
    or a value the derivation refuses (the build from the records holds its record back).

    The extracts are read, never written, so a run building this table and one building those
    extracts never race; the rows of records written since an extract was built come from the
    records, and records held back (by any table) are left out, as a build from the records
    leaves them out.
    """
    derivation = table.from_extracts
    if derivation is None:
        return None
    tables = {}
    for read in derivation.reads:
        rows = _rows_of(db, company_ids, read, as_of, extracts_dir, run_id, store)
        if rows is None:
            log.info("%s: building from the records (the %s extract is missing, or many of its records "
                     "changed)", table.name, read.table)
            return None
        tables[read.table] = rows
    with db.connect() as conn:
        lookups = {name: list(stored_records(conn, company_ids, name)) for name in derivation.lookups}
    try:
        return with_keys_filled(table, derivation.build(tables, MartInputs(lookups, as_of, snapshot_kind)))
    except RejectedValue as refused:
        log.info("%s: building from the records (a record it reads is refused: %s)", table.name, refused)
        return None


def _rows_of(db: StateDB, company_ids: list[str], read: ExtractRead, as_of: date, extracts_dir: Path,
             run_id: str, store: ExtractStore | None) -> pd.DataFrame | None:
    """What `read` asks of its extract (the shared copy, with a `store`), the changed records'
    rows built from the records."""
    source, path = mart_table(read.table), hyper_path(extracts_dir, read.table)
    with db.connect() as conn:
        built_up_to = get_cursor(conn, source.name, "extract")
        held = {group_key(item.company_id, item.key) for item in held_records(conn, company_ids, source.rows_from)}
    if store is not None:
        shared = store.pull(source.name, path)
        built_up_to = shared.built_up_to if shared else None
    if built_up_to is None or not path.exists():
        return None
    changed = changed_rows(db, company_ids, source, built_up_to, as_of, run_id)
    if changed is None or len(changed.groups | held) > MAX_LEFT_OUT:
        return None
    left_out = not_of_groups([key_parts(group) for group in sorted(changed.groups | held)],
                             source.key[: group_size(source)])
    stored = query_extract(path, read.query(as_of, left_out))
    fresh = read.changed(changed.frame) if read.changed else changed.frame
    return pd.concat([stored[stored["company_id"].isin(company_ids)].astype(fresh.dtypes.to_dict()), fresh],
                     ignore_index=True)


def _update_by_groups(
    db: StateDB, company_ids: list[str], table: MartTable, as_of: date, path: Path,
    built_up_to: datetime | None, run_id: str,
) -> tuple[ExtractResult | None, str]:
    """The extract with the changed records' rows replaced, or None and why it must be built."""
    if not table.rows_from:
        return None, "it aggregates many records per row"
    if built_up_to is None or not path.exists():
        return None, "there is no extract to update yet"
    changed = changed_rows(db, company_ids, table, built_up_to, as_of, run_id)
    if changed is None:
        return None, "a lookup it reads whole changed"
    groups = keys_frame(sorted(changed.groups), changed.frame, table.key[: group_size(table)])
    try:
        rows = replace_groups(path, changed.frame, groups)
    except ExtractSchemaChanged as error:
        return None, str(error)
    reason = f"{len(changed.groups)} source records written since it was built"
    return ExtractResult(path, rows, changed.frame, "updated", reason), reason


def write_extract(frame: pd.DataFrame, extracts_dir: Path, table: MartTable, as_of: date,
                  snapshot_kind: str = DAILY, company_ids: list[str] | None = None) -> Path:
    """Write the table's extract; snapshot tables keep the other snapshots.

    A snapshot is replaced in the extract in place (its day and kind, for `company_ids`), so a
    new day costs that day's rows, not the history's; an extract of other columns is rewritten
    whole with its other snapshots (`keep_other_snapshots`).
    """
    if table.partition_column == SNAPSHOT_COLUMN:
        previous = hyper_path(extracts_dir, table.name)
        if previous.exists():
            try:
                replace_groups(previous, frame, _snapshot_groups(frame, as_of, snapshot_kind, company_ids))
                return previous
            except ExtractSchemaChanged:
                frame = keep_other_snapshots(frame_from_hyper(previous), frame, as_of, snapshot_kind, company_ids)
    return write_hyper(frame, extracts_dir, table.name)


def _snapshot_groups(frame: pd.DataFrame, as_of: date, snapshot_kind: str,
                     company_ids: list[str] | None) -> pd.DataFrame:
    """The rows a snapshot replaces: its day and kind, of `company_ids` (None: every company)."""
    columns = ["company_id", SNAPSHOT_COLUMN, SNAPSHOT_KIND] if company_ids is not None else [
        SNAPSHOT_COLUMN, SNAPSHOT_KIND]
    count = len(company_ids) if company_ids is not None else 1
    values = {"company_id": company_ids, SNAPSHOT_COLUMN: [as_of] * count, SNAPSHOT_KIND: [snapshot_kind] * count}
    return pd.DataFrame({column: pd.array(values[column], dtype=frame[column].dtype) for column in columns})


def snapshot_column_of(table: MartTable) -> str | None:
    """The snapshot-day column of a daily snapshot table (aging), else None."""
    return SNAPSHOT_COLUMN if table.partition_column == SNAPSHOT_COLUMN else None


def keep_other_snapshots(previous: pd.DataFrame, today: pd.DataFrame, as_of: date,
                         snapshot_kind: str = DAILY, company_ids: list[str] | None = None) -> pd.DataFrame:
    """The previous extract's other snapshots plus the one just built (rebuilt, not doubled).

    The snapshot built is its day and kind for `company_ids` (default: every company): a close
    snapshot of one company leaves the daily snapshot of the same day, and the other companies'
    close snapshots, as they were. Rows of an extract written before `snapshot_kind` existed
    are daily snapshots.
    """
    schema = pa.Table.from_pandas(today, preserve_index=False).schema
    if SNAPSHOT_KIND not in previous.columns:
        previous = previous.assign(**{SNAPSHOT_KIND: DAILY})
    rebuilt = ((pd.to_datetime(previous[SNAPSHOT_COLUMN]).dt.date == as_of)
               & (previous[SNAPSHOT_KIND] == snapshot_kind))
    if company_ids is not None:
        rebuilt &= previous["company_id"].isin(company_ids)
    earlier = previous[~rebuilt.fillna(False).astype(bool)]
    earlier_table = pa.Table.from_pandas(earlier[list(today.columns)], preserve_index=False)
    combined = pa.concat_tables([earlier_table.cast(schema), pa.Table.from_pandas(today, preserve_index=False)])
    return combined.to_pandas(types_mapper=pd.ArrowDtype)


ENTITLEMENTS = "entitlements"


def write_entitlements(
    rules_file: Path | None, users: pd.DataFrame | None, extracts_dir: Path
) -> tuple[pd.DataFrame, Path]:
    """The row-level security table from the YAML mapping (empty without one), written out.

    `users` (Tableau's users) lets an entitlement name a user by email.
    """
    rules = load_entitlements(rules_file) if rules_file else []
    frame = entitlements_table(rules, users)
    return frame, write_hyper(frame, extracts_dir, ENTITLEMENTS)


def publish_target(db: StateDB, company_ids: list[str], table: MartTable, as_of: date) -> PublishTarget:
    """How to deliver `table`: its key, its snapshot day or its groups and their changes."""
    return PublishTarget(
        table.name, table.key, snapshot_column=snapshot_column_of(table), group_size=group_size(table),
        changes_since=(lambda since: changed_rows(db, company_ids, table, since, as_of))
        if table.rows_from else None,
    )
