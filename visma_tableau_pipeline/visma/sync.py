"""Reading one entity window from Visma into the state store, exactly once.

A window is (company, entity, period or the whole entity). A delta read starts at the stored
watermark (the client subtracts an overlap); a full read also reconciles: records the store holds
for the window that Visma no longer returns are marked deleted, which neither webhooks nor
`lastModifiedDateTime` reveal. Each page's records are stored in their own transaction. The
watermark advances in a final transaction, only after every batch it covers is committed, so a
crash leaves the previous watermark.

(Storing on a background thread while the next page is decoded was tried: the two threads
contending for the GIL cost more CPU time than the overlap saved, benchmarks/visma_sync.py.)
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.payloads import load_payload
from visma_tableau_pipeline.state.records import RecordRow, keys_for, mark_deleted, upsert_records
from visma_tableau_pipeline.state.watermarks import advance_watermark, get_watermark, record_full_sync
from visma_tableau_pipeline.visma.catalogue import Delta, Entity
from visma_tableau_pipeline.visma.client import PageProgress, VismaClient
from visma_tableau_pipeline.visma.paging import RecordBatch
from visma_tableau_pipeline.visma.periods import period_of_record
from visma_tableau_pipeline.visma.timestamps import max_modified

log = logging.getLogger(__name__)

PREVIEW_RECORDS = 5


@dataclass
class WindowResult:
    """What one window read did; becomes materialization metadata."""

    company_id: str
    entity: str
    period: str | None
    full: bool
    records_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    watermark: str | None = None  # the newest lastModifiedDateTime stored (advances as pages come)
    preview: list[dict] = field(default_factory=list)  # the first records read, as stored


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect garbage less often during a long read.

    A read allocates millions of short-lived dicts, and the default collection thresholds make
    Python's cyclic collector take about a third of the CPU (benchmarks/visma_sync.py).
    """
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _store_batches(
    db: StateDB, entity: Entity, company_id: str, period: str | None, run_id: str,
    batches: Iterable[RecordBatch], result: WindowResult, seen: dict[str, None],
) -> None:
    """Upsert each batch in its own transaction; note keys seen and the newest timestamp.

    The batches are read `as_stored`: a record with a text holds only what the store indexes
    it by, and the text is stored as it is; a record without one is whole, and the store writes
    its canonical JSON.
    """
    modified_field = entity.modified_field
    for batch in batches:
        rows: list[RecordRow] = [
            (key, period_of_record(record, period), record.get(modified_field), record, text)
            for record, text, key in zip(batch, batch.texts, batch.keys)
        ]
        seen.update(dict.fromkeys(batch.keys))
        result.watermark = max_modified(batch, modified_field, result.watermark)
        with db.transaction() as conn:
            outcome = upsert_records(conn, company_id, entity.name, rows, run_id)
        result.records_read += len(batch)
        result.inserted += outcome.inserted
        result.updated += outcome.updated
        result.unchanged += outcome.unchanged
        if len(result.preview) < PREVIEW_RECORDS:
            wanted = PREVIEW_RECORDS - len(result.preview)
            result.preview.extend(
                record if text is None else load_payload(text)
                for record, text in zip(batch[:wanted], batch.texts[:wanted])
            )


def sync_window(
    client: VismaClient,
    db: StateDB,
    entity: Entity,
    *,
    company_id: str,
    run_id: str,
    period: str | None = None,
    full: bool = False,
    on_page: Callable[[PageProgress], None] | None = None,
) -> WindowResult:
    """Read one window of `entity` and store it; see the module docstring for the guarantees."""
    scope = period or ""
    with db.transaction() as conn:
        watermark = get_watermark(conn, company_id, entity.name, scope)
    delta = not full and entity.delta is not Delta.NONE and watermark is not None
    result = WindowResult(company_id, entity.name, period, full=not delta)
    result.watermark = watermark
    # A dict of strings, not a set: Python's cyclic collector stops walking such a dict, and a
    # million keys walked on every full collection cost more than storing them.
    seen: dict[str, None] = {}
    batches = client.read_entity(
        entity, modified_since=watermark if delta else None, period=period, on_page=on_page,
        as_stored=True,
    )
    with fewer_collections():
        _store_batches(db, entity, company_id, period, run_id, batches, result, seen)
    newest = result.watermark
    with db.transaction() as conn:
        if result.full:
            gone = [key for key in keys_for(conn, company_id, entity.name, period=period) if key not in seen]
            if gone:
                mark_deleted(conn, company_id, entity.name, gone, run_id)
                result.deleted = len(gone)
            record_full_sync(conn, company_id, entity.name, run_id, scope=scope)
        if newest is not None:
            advance_watermark(conn, company_id, entity.name, newest, run_id, scope=scope)
    log.info(
        "synced %s for %s (%s, %s): %d read, %d new, %d changed, %d deleted, watermark %s",
        entity.name, company_id, scope or "all periods", "full" if result.full else "delta",
        result.records_read, result.inserted, result.updated, result.deleted, newest,
    )
    return result
