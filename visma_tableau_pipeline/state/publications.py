"""What was last published to each Tableau data source: its id and the schema it was sent with.

The next delivery sends only changes when the schema is unchanged, and falls back to a full
Overwrite when it is not. The row is written in the same transaction as the ledger rows of the
delivery, after Tableau confirmed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from visma_tableau_pipeline.state.schema import publications, utc_now
from visma_tableau_pipeline.state.upsert import insert_on_conflict


@dataclass(frozen=True)
class Publication:
    data_source: str
    datasource_id: str | None
    schema_fingerprint: str | None
    run_id: str
    mode: str


def get_publication(conn: Connection, data_source: str) -> Publication | None:
    row = conn.execute(
        select(publications).where(publications.c.data_source == data_source)
    ).one_or_none()
    if row is None:
        return None
    return Publication(row.data_source, row.datasource_id, row.schema_fingerprint, row.run_id, row.mode)


def data_source_named_by_id(conn: Connection, datasource_id: str) -> str | None:
    """The data source this project published under a Tableau LUID (what webhooks name)."""
    return conn.execute(
        select(publications.c.data_source).where(publications.c.datasource_id == datasource_id)
    ).scalar_one_or_none()


def save_publication(conn: Connection, publication: Publication) -> None:
    columns = ("datasource_id", "schema_fingerprint", "run_id", "mode", "updated_at")
    conn.execute(
        insert_on_conflict(conn, publications, key=("data_source",), update=columns),
        {**publication.__dict__, "updated_at": utc_now()},
    )
