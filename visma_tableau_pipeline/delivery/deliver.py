"""Deliver one dashboard table to its Tableau data source: in full when needed, else only changes.

The choice, per run:
- the data source does not exist yet → publish the whole table (CreateNew);
- a full publish is asked for, or the table's columns or types differ from what was published
  last (its schema fingerprint) → publish the whole table (Overwrite): an incremental update
  cannot change a published extract's columns;
- otherwise → send only the rows whose content changed and the keys that disappeared, as
  `update_hyper_data` requests (upsert and delete by key), split under the payload limit;
- nothing changed → send nothing.

The outcome carries what the caller stores for next time (the row hash map and the schema
fingerprint) and one `RowChange` per row version delivered, for the audit ledger. Nothing is
ever written to views or workbooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from visma_tableau_pipeline.delivery.payload import DEFAULT_MAX_PAYLOAD_BYTES, write_payloads
from visma_tableau_pipeline.delivery.row_changes import (
    ChangeSet,
    RowBatch,
    RowChange,
    build_actions,
    compute_changes,
    partition_replace_actions,
    request_id,
    schema_fingerprint,
)
from visma_tableau_pipeline.marts.hyper import write_hyper
from visma_tableau_pipeline.tableau.datasources import find_datasource, publish_changes, publish_full
from visma_tableau_pipeline.tableau.session import TableauSession

log = logging.getLogger(__name__)

DeliveryMode = Literal["create", "overwrite", "incremental", "unchanged", "partition"]
ActionsFor = Callable[[RowBatch, int], list[dict[str, Any]]]  # (payload rows, payload index)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What a delivery did and what to remember for the next one."""

    table_name: str
    mode: DeliveryMode
    reason: str
    datasource_id: str
    bytes_sent: int
    rows_upserted: int
    rows_deleted: int
    request_ids: tuple[str, ...]
    schema_fingerprint: str
    hashes: dict[str, str] = field(repr=False)  # row key → content hash now in Tableau
    rows: tuple[RowChange, ...] = field(repr=False)  # one per row version delivered


def deliver_table(
    session: TableauSession,
    project_id: str,
    table_name: str,
    frame: pd.DataFrame,
    key_columns: Sequence[str],
    previous_hashes: Mapping[str, str],
    workdir: Path,
    *,
    previous_schema: str | None = None,
    full: bool = False,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    scope: str = "",
    written: Path | None = None,
) -> DeliveryOutcome:
    """Bring data source `table_name` in `project_id` to exactly `frame`.

    `previous_hashes` and `previous_schema` are what the last delivery's outcome returned
    (`hashes`, `schema_fingerprint`); pass `{}` and None when it was never delivered. `scope`
    goes into every request id (the run id, say) to keep separate runs' requests apart.
    `written` is `frame` as a Hyper file already (an extract), sent as it is when the data
    source is published whole rather than written again.
    """
    workdir = Path(workdir)
    fingerprint = schema_fingerprint(frame)
    datasource_id = find_datasource(session, project_id, table_name)
    if datasource_id is None:
        return _publish_whole(session, project_id, table_name, frame, key_columns, {}, workdir,
                              fingerprint, "create", "the data source does not exist yet", written)
    if full or previous_schema != fingerprint:
        reason = ("a full publish was asked for" if full else
                  "no schema was recorded for it" if previous_schema is None else
                  "its columns or types changed")
        return _publish_whole(session, project_id, table_name, frame, key_columns,
                              previous_hashes, workdir, fingerprint, "overwrite", reason, written)
    return deliver_rows(session, datasource_id, table_name, frame, key_columns, previous_hashes,
                        workdir, max_payload_bytes=max_payload_bytes, scope=scope)


def deliver_rows(
    session: TableauSession,
    datasource_id: str,
    table_name: str,
    frame: pd.DataFrame,
    key_columns: Sequence[str],
    previous_hashes: Mapping[str, str],
    workdir: Path,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    scope: str = "",
) -> DeliveryOutcome:
    """Bring the rows of `previous_hashes` and `frame` in a published data source to `frame`.

    Rows whose content differs are upserted, rows of `previous_hashes` missing from `frame` are
    deleted, by key. With the whole table and everything delivered, that is the whole change;
    with only some groups' rows and those groups' delivered rows, it is theirs (the rest of the
    data source is left alone). `hashes` of the outcome covers the rows given.
    """
    fingerprint = schema_fingerprint(frame)
    changes = compute_changes(frame, key_columns, previous_hashes)
    if changes.is_empty:
        log.info("%s: no row changed since the last delivery; nothing sent", table_name)
        return DeliveryOutcome(table_name, "unchanged", "no row changed", datasource_id, 0, 0, 0,
                               (), fingerprint, changes.hashes, ())
    sent, ids = _send_batches(
        session, datasource_id, table_name, changes.batch, Path(workdir), max_payload_bytes,
        lambda part, index: build_actions(key_columns, has_upserts=bool(part.upsert_rows),
                                          has_deletes=bool(part.delete_rows)),
        scope,
    )
    batch = changes.batch
    log.info("%s: %s rows upserted, %s deleted in %s requests (%s bytes)", table_name,
             len(batch.upsert_rows), len(batch.delete_rows), len(ids), sent)
    return DeliveryOutcome(table_name, "incremental", "rows changed", datasource_id, sent,
                           len(batch.upsert_rows), len(batch.delete_rows), ids, fingerprint,
                           changes.hashes, changes.rows)


def replace_partition(
    session: TableauSession,
    datasource_id: str,
    table_name: str,
    partition_frame: pd.DataFrame,
    key_columns: Sequence[str],
    partition_column: str,
    partition_value: Any,
    previous_hashes: Mapping[str, str],
    workdir: Path,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    scope: str = "",
) -> DeliveryOutcome:
    """Replace every row of one partition (a period, a snapshot day) of a published extract.

    The first request deletes the partition's rows (a constant condition) and inserts the first
    part of the new rows; any further parts insert the rest. `previous_hashes` are the
    partition's rows as last delivered (for the ledger's insert / update / delete).
    """
    changes = compute_changes(partition_frame, key_columns, previous_hashes)
    every_row = compute_changes(partition_frame, key_columns, {}).batch
    batch = RowBatch(every_row.upserts, every_row.upsert_rows, every_row.deleted_keys, ())
    sent, ids = _send_batches(
        session, datasource_id, table_name, batch, Path(workdir), max_payload_bytes,
        lambda part, index: partition_replace_actions(partition_column, partition_value,
                                                      with_delete=index == 0),
        scope,
    )
    deleted = sum(1 for row in changes.rows if row.action == "delete")
    return DeliveryOutcome(
        table_name, "partition", f"{partition_column} = {partition_value} replaced",
        datasource_id, sent, len(batch), deleted, ids, schema_fingerprint(partition_frame),
        changes.hashes, changes.rows + _resent(changes, previous_hashes),
    )


def _publish_whole(
    session: TableauSession, project_id: str, table_name: str, frame: pd.DataFrame,
    key_columns: Sequence[str], previous_hashes: Mapping[str, str], workdir: Path,
    fingerprint: str, mode: Literal["create", "overwrite"], reason: str, written: Path | None,
) -> DeliveryOutcome:
    changes = compute_changes(frame, key_columns, previous_hashes)
    path = written or write_hyper(frame, workdir, table_name)
    outcome = publish_full(session, project_id, table_name, path,
                           "CreateNew" if mode == "create" else "Overwrite")
    log.info("%s: published in full (%s): %s", table_name, mode, reason)
    return DeliveryOutcome(
        table_name, mode, reason, outcome.datasource_id, outcome.bytes_sent, len(frame),
        len(changes.batch.delete_rows), (), fingerprint, changes.hashes,
        changes.rows + _resent(changes, previous_hashes),
    )


def _resent(changes: ChangeSet, previous_hashes: Mapping[str, str]) -> tuple[RowChange, ...]:
    """The rows a whole send delivered again as Tableau already held them.

    An overwrite or a replaced snapshot day sends every row, changed or not; the ledger records
    each (action "resend"), so that `vtp audit run` shows everything the run delivered.
    """
    return tuple(RowChange(key, digest, "resend", digest)
                 for key, digest in changes.hashes.items() if previous_hashes.get(key) == digest)


def _send_batches(
    session: TableauSession, datasource_id: str, table_name: str, batch: RowBatch,
    workdir: Path, max_payload_bytes: int, actions_for: ActionsFor, scope: str,
) -> tuple[int, tuple[str, ...]]:
    """Write `batch` as payloads under the limit and send each as one request, in order."""
    payloads = write_payloads(batch, workdir, f"{table_name}-changes", max_payload_bytes)
    sent, ids = 0, []
    try:
        for index, payload in enumerate(payloads):
            actions = actions_for(payload.batch, index)
            rid = request_id(table_name, payload.batch.rows, actions, scope)
            outcome = publish_changes(session, datasource_id, payload.path, actions, rid)
            sent += outcome.bytes_sent
            ids.append(rid)
    finally:
        for payload in payloads:
            payload.path.unlink(missing_ok=True)
    return sent, tuple(ids)
