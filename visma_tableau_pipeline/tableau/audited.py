"""Delivering an extract to Tableau and putting every delivered row version on the audit ledger.

What was delivered before comes from the ledger itself: it is the delivery watermark.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.ledger import Delivery, last_delivered, record_deliveries
from visma_tableau_pipeline.state.publications import Publication, get_publication, save_publication
from visma_tableau_pipeline.tableau.changes import row_keys, schema_fingerprint, split_key
from visma_tableau_pipeline.tableau.delivery import DeliveryOutcome, deliver_table, replace_partition
from visma_tableau_pipeline.tableau.session import TableauSession

log = logging.getLogger(__name__)


def publish_extract(
    session: TableauSession,
    db: StateDB,
    project_id: str,
    name: str,
    key: tuple[str, ...],
    extract: Path,
    workdir: Path,
    *,
    run_id: str,
    full: bool = False,
    snapshot_column: str | None = None,
) -> DeliveryOutcome:
    """Bring a data source to exactly the extract as written, then put it on the audit ledger.

    What was delivered before comes from the ledger itself, so a run that died after Tableau
    confirmed but before this commit sends the same change set again, which keyed upserts and
    deletes apply without doubling. The ledger rows and the publication record commit together.
    A daily snapshot table (`snapshot_column`) has its latest day replaced whole, delete and
    insert in one request; earlier days stay as they are.
    """
    frame = frame_from_hyper(extract)
    with db.connect() as conn:
        previous = {k.record_key: digest for k, digest in last_delivered(conn, name).items()}
        publication = get_publication(conn, name)
    same_schema = publication is not None and publication.schema_fingerprint == schema_fingerprint(frame)
    if snapshot_column and same_schema and publication.datasource_id and not full and len(frame):
        outcome = _replace_latest_snapshot(session, publication.datasource_id, name, frame, key,
                                           snapshot_column, previous, workdir, run_id)
    else:
        outcome = deliver_table(
            session, project_id, name, frame, key, previous, workdir,
            previous_schema=publication.schema_fingerprint if publication else None,
            full=full, scope=run_id,
        )
    delivered_at = datetime.now(UTC)
    contents = _row_contents(frame, key, {row.key for row in outcome.rows if row.action != "delete"})
    with db.transaction() as conn:
        record_deliveries(conn, [
            Delivery(_company_of(row.key, key), name, row.key, row.content_hash, name,
                     row.action, run_id, delivered_at, contents.get(row.key))
            for row in outcome.rows
        ])
        save_publication(conn, Publication(name, outcome.datasource_id,
                                           outcome.schema_fingerprint, run_id, outcome.mode))
    log.info("%s: %s (%s), %d upserted, %d deleted, %d bytes sent", name, outcome.mode,
             outcome.reason, outcome.rows_upserted, outcome.rows_deleted, outcome.bytes_sent)
    return outcome


def _replace_latest_snapshot(
    session: TableauSession, datasource_id: str, name: str, frame: pd.DataFrame,
    key: tuple[str, ...], column: str, previous: dict[str, str], workdir: Path, run_id: str,
) -> DeliveryOutcome:
    """Replace the rows of the newest snapshot day in Tableau with the extract's."""
    latest = frame[column].max()
    part = frame[frame[column] == latest]
    position = key.index(column)
    rendered = split_key(row_keys(part.head(1), key)[0])[position]
    previous_part = {k: h for k, h in previous.items() if split_key(k)[position] == rendered}
    return replace_partition(session, datasource_id, name, part, key, column, latest,
                             previous_part, workdir, scope=run_id)


def _company_of(row_key: str, key: tuple[str, ...]) -> str:
    """The company of a delivered row: the `company_id` part of its key ("" when it has none)."""
    if "company_id" not in key:
        return ""
    return split_key(row_key)[key.index("company_id")]


def _row_contents(frame: pd.DataFrame, key: tuple[str, ...], wanted: set[str]) -> dict[str, str]:
    """The delivered rows of `wanted` keys as JSON text, for the ledger's version history."""
    if not wanted:
        return {}
    keys = row_keys(frame, key)
    positions = [i for i, k in enumerate(keys) if k in wanted]
    rows = frame.iloc[positions].astype(object).where(frame.iloc[positions].notna(), None)
    return {
        keys[i]: json.dumps(record, default=str, ensure_ascii=False, sort_keys=True)
        for i, record in zip(positions, rows.to_dict(orient="records"))
    }
