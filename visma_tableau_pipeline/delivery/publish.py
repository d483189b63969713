"""Delivering an extract to Tableau and putting every delivered row version on the audit ledger.

What each data source holds is kept row by row (`state/delivered.py`, written with the ledger):
it is the delivery watermark. Tables whose rows come from single records can then be delivered
by the groups whose records changed since the last delivery, a cost that follows the change.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection

from visma_tableau_pipeline.delivery.deliver import (
    DeliveryOutcome,
    deliver_rows,
    deliver_table,
    replace_partition,
)
from visma_tableau_pipeline.delivery.extract_store import ExtractStore
from visma_tableau_pipeline.delivery.row_changes import row_keys, schema_fingerprint
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.delivered import (
    apply_delivery,
    delivered_hashes,
    get_cursor,
    has_delivered_rows,
    replace_delivered,
    set_cursor,
)
from visma_tableau_pipeline.state.keys import KEY_SEPARATOR, key_parts, key_string
from visma_tableau_pipeline.state.ledger import Delivery, last_delivered, record_deliveries
from visma_tableau_pipeline.state.publications import Publication, get_publication, save_publication
from visma_tableau_pipeline.tableau.datasources import datasource_exists
from visma_tableau_pipeline.tableau.session import TableauSession

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ChangedRows:
    """The current rows of the groups (source records) written since a moment."""

    frame: pd.DataFrame
    groups: frozenset[str]  # group keys: the leading key values of the rows, joined like row keys
    cursor: datetime  # every record written before this moment is covered (`settled_moment`)


@dataclass(frozen=True)
class PublishTarget:
    """A data source to deliver: its name and key, and how its changes can be found."""

    name: str
    key: tuple[str, ...]
    snapshot_column: str | None = None  # a daily snapshot table: its latest day is replaced whole
    group_size: int | None = None  # leading key columns naming a row's source record
    changes_since: Callable[[datetime], ChangedRows | None] | None = field(default=None, compare=False)

    def group_of(self, row_key: str) -> str:
        """The group part of a row key (the whole key for tables without groups)."""
        if self.group_size is None or self.group_size >= len(self.key):
            return row_key
        if "\\" not in row_key:  # the usual case, without unescaping
            return KEY_SEPARATOR.join(row_key.split(KEY_SEPARATOR)[: self.group_size])
        return key_string(key_parts(row_key)[: self.group_size])


def publish_extract(
    session: TableauSession,
    db: StateDB,
    project_id: str,
    target: PublishTarget,
    extract: Path,
    workdir: Path,
    *,
    run_id: str,
    full: bool = False,
    store: ExtractStore | None = None,
) -> DeliveryOutcome:
    """Bring a data source up to date, then put what was delivered on the audit ledger.

    With groups and a known delivery cursor, only the rows of records written since then are
    rebuilt and compared with what the data source holds. Otherwise the extract as written is
    compared whole (and a daily snapshot table has its latest day replaced, delete and insert in
    one request). A run that died after Tableau confirmed but before this commit sends the same
    change set again, which keyed upserts and deletes apply without doubling. The ledger rows,
    the rows held and the publication record commit together.

    A data source the state store remembers but Tableau no longer has (deleted there, or the
    settings now name another site) is published again in full, with a warning, and what the
    store remembered of its rows is replaced by what was sent.

    With a `store` (VTP_EXTRACTS_URL) the extract compared whole is the shared copy, pulled to
    `extract`, and the moment it covers is read with it (not from the state store, which a build
    on another machine may move on meanwhile); an update by groups reads the state store alone.
    """
    name = target.name
    with db.connect() as conn:
        publication = get_publication(conn, name)
        since = get_cursor(conn, name, "delivered")
        extract_cursor = get_cursor(conn, name, "extract")
        kept = has_delivered_rows(conn, name)
    gone = _gone_from_tableau(session, publication)
    if gone:
        publication, since, kept = None, None, False  # Tableau holds none of it now
    changed = _changed_rows(target, publication, since, full)
    if changed is None and not full and publication is not None and publication.datasource_id \
            and publication.schema_fingerprint and since is not None and since == extract_cursor:
        # the extract was not built again since its delivery (`delivery/extracts._unchanged`)
        log.info("%s: the extract is as it was delivered; nothing to compare or send", name)
        return DeliveryOutcome(name, "unchanged", "the extract is as it was delivered", publication.datasource_id,
                               0, 0, 0, (), publication.schema_fingerprint, {}, ())
    cursor: datetime | None
    if changed is not None:
        assert publication is not None and publication.datasource_id and since  # _changed_rows saw them
        with db.connect() as conn:
            previous = delivered_hashes(conn, name, changed.groups)
        frame, cursor = changed.frame, changed.cursor
        outcome = replace(
            deliver_rows(session, publication.datasource_id, name, frame, target.key, previous,
                         workdir, scope=run_id),
            reason=f"rows of {len(changed.groups)} source records written since the last "
            f"delivery ({since:%Y-%m-%d %H:%M:%S} UTC on) compared",
        )
    else:
        if store is not None:
            extract_cursor = store.pull_existing(name, extract).built_up_to
        # a copy: what is sent whole is the very file whose rows go on the ledger, even if a build
        # replaces the extract meanwhile
        sent = Path(shutil.copyfile(extract, workdir / extract.name))
        frame, cursor = frame_from_hyper(sent), extract_cursor
        with db.connect() as conn:
            previous = ({} if gone else delivered_hashes(conn, name) if kept
                        else _from_ledger(conn, name))
        outcome = _deliver_extract(session, project_id, target, frame, publication, previous,
                                   workdir, run_id, full, sent)
        sent.unlink()
    delivered_at = datetime.now(UTC)
    # a resent version's content is on the ledger already, with the delivery that first sent it
    contents = _row_contents(frame, target.key,
                             {row.key for row in outcome.rows if row.action in ("insert", "update")})
    with db.transaction() as conn:
        record_deliveries(conn, [
            Delivery(_company_of(row.key, target.key), name, row.key, row.content_hash, name,
                     row.action, run_id, delivered_at, contents.get(row.key))
            for row in outcome.rows
        ])
        if changed is None and not kept:  # first delivery recorded row by row: start from all
            replace_delivered(conn, name, previous, target.group_of)
        apply_delivery(conn, name, {row.key: None if row.action == "delete" else row.content_hash
                                    for row in outcome.rows}, target.group_of)
        set_cursor(conn, name, "delivered", cursor, run_id)
        save_publication(conn, Publication(name, outcome.datasource_id,
                                           outcome.schema_fingerprint, run_id, outcome.mode))
    log.info("%s: %s (%s), %d upserted, %d deleted, %d bytes sent", name, outcome.mode,
             outcome.reason, outcome.rows_upserted, outcome.rows_deleted, outcome.bytes_sent)
    return outcome


def _gone_from_tableau(session: TableauSession, publication: Publication | None) -> bool:
    """Whether the data source the store remembers is missing from Tableau (warned about)."""
    if publication is None or publication.datasource_id is None:
        return False
    if datasource_exists(session, publication.datasource_id):
        return False
    log.warning(
        "%s: data source %s, which the state store remembers, no longer exists in Tableau "
        "(deleted there, or another site or server is configured): publishing it again in full",
        publication.data_source, publication.datasource_id,
    )
    return True


def _changed_rows(
    target: PublishTarget, publication: Publication | None, since: datetime | None, full: bool
) -> ChangedRows | None:
    """The changed groups' rows, when the data source can be updated group by group."""
    if full or target.changes_since is None or since is None:
        return None
    if publication is None or publication.datasource_id is None:
        return None
    changed = target.changes_since(since)
    if changed is None:
        log.info("%s: a lookup changed since %s: comparing the whole table", target.name, since)
        return None
    if schema_fingerprint(changed.frame) != publication.schema_fingerprint:
        log.info("%s: its columns or types changed: comparing the whole table", target.name)
        return None
    return changed


def _deliver_extract(
    session: TableauSession, project_id: str, target: PublishTarget, frame: pd.DataFrame,
    publication: Publication | None, previous: dict[str, str], workdir: Path, run_id: str,
    full: bool, written: Path,
) -> DeliveryOutcome:
    """The whole extract against everything delivered (or its latest snapshot day)."""
    same_schema = publication is not None and publication.schema_fingerprint == schema_fingerprint(frame)
    if (target.snapshot_column and publication is not None and same_schema and publication.datasource_id
            and not full and len(frame)):
        return _replace_latest_snapshot(session, publication.datasource_id, target.name, frame,
                                        target.key, target.snapshot_column, previous, workdir, run_id)
    return deliver_table(
        session, project_id, target.name, frame, target.key, previous, workdir,
        previous_schema=publication.schema_fingerprint if publication else None,
        full=full, scope=run_id, written=written,
    )


def _from_ledger(conn: Connection, name: str) -> dict[str, str]:
    """What the ledger says a data source holds (before its rows were kept one by one)."""
    return {key.record_key: digest for key, digest in last_delivered(conn, name).items()}


def _replace_latest_snapshot(
    session: TableauSession, datasource_id: str, name: str, frame: pd.DataFrame,
    key: tuple[str, ...], column: str, previous: dict[str, str], workdir: Path, run_id: str,
) -> DeliveryOutcome:
    """Replace the rows of the newest snapshot day in Tableau with the extract's."""
    latest = frame[column].max()
    part = frame[frame[column] == latest]
    position = key.index(column)
    rendered = key_parts(row_keys(part.head(1), key)[0])[position]
    previous_part = {k: h for k, h in previous.items() if key_parts(k)[position] == rendered}
    return replace_partition(session, datasource_id, name, part, key, column, latest,
                             previous_part, workdir, scope=run_id)


def _company_of(row_key: str, key: tuple[str, ...]) -> str:
    """The company of a delivered row: the `company_id` part of its key ("" when it has none)."""
    if "company_id" not in key:
        return ""
    return key_parts(row_key)[key.index("company_id")]


def _row_contents(frame: pd.DataFrame, key: tuple[str, ...], wanted: set[str]) -> dict[str, str]:
    """The delivered rows of `wanted` keys as JSON text, for the ledger's version history."""
    if not wanted:
        return {}
    keys = row_keys(frame, key)
    positions = [i for i, k in enumerate(keys) if k in wanted]
    rows = pa.Table.from_pandas(frame.iloc[positions], preserve_index=False).to_pylist()
    return {
        keys[i]: json.dumps(record, default=str, ensure_ascii=False, sort_keys=True)
        for i, record in zip(positions, rows)
    }
