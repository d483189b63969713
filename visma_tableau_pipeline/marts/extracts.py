"""Dashboard tables from the state store to Hyper extracts, one file per table.

Every company is in one file (a `company_id` column). Daily snapshot tables (aging) keep the
earlier days of the previous extract and replace only the day being built.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection

from visma_tableau_pipeline.marts.entitlements import entitlements_table, load_entitlements
from visma_tableau_pipeline.marts.hyper import frame_from_hyper, hyper_path, write_hyper
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.registry import MartTable, build_with
from visma_tableau_pipeline.state.changes import newest_change
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.delivered import set_cursor
from visma_tableau_pipeline.state.records import iter_records

SNAPSHOT_COLUMN = "snapshot_date"


def tagged_records(conn: Connection, company_ids: list[str], name: str) -> list[dict]:
    """Every live stored record of one entity, each tagged with its `company_id`."""
    return [
        {**record, "company_id": company_id}
        for company_id in company_ids
        for record in iter_records(conn, company_id, name)
    ]


def build_table(db: StateDB, company_ids: list[str], table: MartTable, as_of: date) -> pd.DataFrame:
    """One dashboard table, all companies, from the state store."""
    with db.connect() as conn:
        records = {name: tagged_records(conn, company_ids, name) for name in table.sources}
    return build_with(table, MartInputs(records, as_of))


def build_extract(
    db: StateDB, company_ids: list[str], table: MartTable, as_of: date, extracts_dir: Path,
    run_id: str,
) -> tuple[pd.DataFrame, Path]:
    """Build the table, write its extract, and note up to which record-store moment it is built.

    A full publish of the extract then knows from where the next incremental one must look.
    """
    with db.connect() as conn:
        cursor = newest_change(conn, company_ids, table.sources)  # before the reads: may repeat, never skip
    frame = build_table(db, company_ids, table, as_of)
    path = write_extract(frame, extracts_dir, table, as_of)
    with db.transaction() as conn:
        set_cursor(conn, table.name, "extract", cursor, run_id)
    return frame, path


def write_extract(frame: pd.DataFrame, extracts_dir: Path, table: MartTable, as_of: date) -> Path:
    """Write the table's extract; daily snapshot tables keep earlier days' snapshots."""
    if table.partition_column == SNAPSHOT_COLUMN:
        previous = hyper_path(extracts_dir, table.name)
        if previous.exists():
            frame = keep_other_snapshots(frame_from_hyper(previous), frame, as_of)
    return write_hyper(frame, extracts_dir, table.name)


def snapshot_column_of(table: MartTable) -> str | None:
    """The snapshot-day column of a daily snapshot table (aging), else None."""
    return SNAPSHOT_COLUMN if table.partition_column == SNAPSHOT_COLUMN else None


def keep_other_snapshots(previous: pd.DataFrame, today: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Earlier days' snapshots from the previous extract, plus today's (rebuilt, not doubled)."""
    schema = pa.Table.from_pandas(today, preserve_index=False).schema
    earlier = previous[pd.to_datetime(previous[SNAPSHOT_COLUMN]).dt.date != as_of]
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
