"""Reading one entity window from Visma into the state store, exactly once.

A window is (company, entity, period or the whole entity). A delta read starts at the stored
watermark (the client subtracts an overlap); a full read also reconciles: records the store holds
for the window that Visma no longer returns are marked deleted, which neither webhooks nor
`lastModifiedDateTime` reveal. Each page's records are stored in their own transaction. The
watermark advances in a final transaction, only after every batch it covers is committed, so a
crash leaves the previous watermark.

A record missing from a paged read is not yet gone: offset paging while Visma changes shifts rows
between pages, and a delete on a page already read plus an insert leaves `totalCount` as it was
and repeats no key, so the client sees nothing amiss while one existing record slid onto a page
already read. A missed record is marked deleted only when Visma confirms it (`_confirmed_gone`):
- read by its key where the OpenAPI document offers that (`Entity.by_key_path`): a 404 confirms,
  a 200 is stored; at most `max_key_reads` such reads per window;
- otherwise (no such path, more missed records than that, an unclear answer) a second read of the
  window: what it lists is stored, what it misses again is gone;
- an unpaged list comes whole in one answer, which nothing can shift: its misses are gone.

(Storing on a background thread while the next page is decoded was tried: the two threads
contending for the GIL cost more CPU time than the overlap saved, benchmarks/visma_sync.py.)
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.keys import key_parts
from visma_tableau_pipeline.state.payloads import load_payload
from visma_tableau_pipeline.state.record_store import RecordRow, keys_for, mark_deleted, upsert_records
from visma_tableau_pipeline.state.watermarks import advance_watermark, get_watermark, record_full_sync
from visma_tableau_pipeline.visma.catalogue import Delta, Entity, Paging
from visma_tableau_pipeline.visma.client import PageProgress, Presence, VismaClient
from visma_tableau_pipeline.visma.paging import RecordBatch
from visma_tableau_pipeline.visma.periods import period_of_record
from visma_tableau_pipeline.visma.timestamps import max_modified

log = logging.getLogger(__name__)

PREVIEW_RECORDS = 5
MODIFIED_TEXT_LENGTH = 40  # the store's last_modified column
FUTURE_SLACK = timedelta(days=1)  # a modification time later than now + this is no watermark
# Above this many records missed by one reconciling read, a second read of the window confirms
# them instead of one GET each: a re-keyed period can make thousands vanish at once, and a second
# read costs the window's pages, not a call per record.
MAX_KEY_READS = 25


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
    missed: int = 0  # stored records the reconciling read did not list; `deleted` of them are gone
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
    listed_in_period: bool = True,
) -> None:
    """Upsert each batch in its own transaction; note keys seen and the newest timestamp.

    The batches are read `as_stored`: a record with a text holds only what the store indexes
    it by, and the text is stored as it is; a record without one is whole, and the store writes
    its canonical JSON. A record listed by a read filtered by `period` belongs to it; one read
    by its key (`listed_in_period=False`) belongs to the period it names, if it names one.
    """
    modified_field = entity.modified_field
    # Visma's time zone is not documented: a day of slack before a time counts as in the future
    latest_allowed = datetime.now() + FUTURE_SLACK
    for batch in batches:
        rows: list[RecordRow] = [
            (key, period_of_record(record, period) if listed_in_period else period_of_record(record) or period,
             _modified_text(record.get(modified_field)), record, text)
            for record, text, key in zip(batch, batch.texts, batch.keys)
        ]
        seen.update(dict.fromkeys(batch.keys))
        result.watermark = max_modified(batch, modified_field, result.watermark, latest_allowed)
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


def _confirmed_gone(
    client: VismaClient, db: StateDB, entity: Entity, company_id: str, period: str | None,
    run_id: str, result: WindowResult, seen: dict[str, None],
    on_page: Callable[[PageProgress], None] | None, max_key_reads: int,
) -> list[str]:
    """The stored keys of the window that the reconciling read missed and Visma confirms are gone.

    What Visma shows still exists on the way is stored (see the module docstring for how each
    entity is confirmed).
    """
    with db.transaction() as conn:
        missed = [key for key in keys_for(conn, company_id, entity.name, period=period) if key not in seen]
    result.missed = len(missed)
    if not missed:
        return []
    where = f"{entity.name} for {company_id} ({period or 'all periods'})"
    if entity.paging is Paging.NONE:
        log.info("%s: %d stored records are not in the list, which came whole in one answer: gone",
                 where, len(missed))
        return missed
    gone: list[str] = []
    unconfirmed = missed
    if entity.by_key_path is not None and len(missed) <= max_key_reads:
        gone, unconfirmed = _confirm_by_key(client, db, entity, company_id, period, run_id, result, missed, where)
    elif entity.by_key_path is not None:
        log.info("%s: %d stored records not listed, more than %d reads by key: reading the window again",
                 where, len(missed), max_key_reads)
    if unconfirmed:
        listed: dict[str, None] = {}
        batches = client.read_entity(entity, period=period, on_page=on_page, as_stored=True)
        _store_batches(db, entity, company_id, period, run_id, batches, result, listed)
        again = [key for key in unconfirmed if key not in listed]
        log.info("%s: a second read listed %d of %d records the first missed (stored); %d confirmed gone",
                 where, len(unconfirmed) - len(again), len(unconfirmed), len(again))
        gone += again
    return gone


def _confirm_by_key(
    client: VismaClient, db: StateDB, entity: Entity, company_id: str, period: str | None,
    run_id: str, result: WindowResult, missed: list[str], where: str,
) -> tuple[list[str], list[str]]:
    """Read each missed record by its key: (gone, unclear). Those that exist are stored.

    They are stored with the period they name now: a record that moved to another period is
    missing from this window because it lives in that one.
    """
    gone: list[str] = []
    unclear: list[str] = []
    found: list[RecordBatch] = []
    for key in missed:
        answer = client.read_by_key(entity, key_parts(key))
        log.debug("%s: %s read by key: %s", where, key, answer.detail)
        if answer.presence is Presence.GONE:
            gone.append(key)
        elif answer.presence is Presence.EXISTS and answer.records is not None:
            found.append(answer.records)
        else:
            unclear.append(key)
    existing = RecordBatch(
        (record for batch in found for record in batch),
        (text for batch in found for text in batch.texts),
        (key for batch in found for key in batch.keys),
    )
    if existing:
        _store_batches(db, entity, company_id, period, run_id, [existing], result, {}, listed_in_period=False)
    log.info(
        "%s: %d stored records not listed, read by key: %d gone (404), %d still exist (stored)%s",
        where, len(missed), len(gone), len(existing),
        f", {len(unclear)} unclear ({', '.join(unclear[:5])}): confirming by a second read" if unclear else "",
    )
    return gone, unclear


def _modified_text(value: object) -> str | None:
    """The record's modification time for the store's index, or None when it is no short text
    (a value outside the contract is kept in the record itself and held back by the tables)."""
    return value if isinstance(value, str) and len(value) <= MODIFIED_TEXT_LENGTH else None


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
    max_key_reads: int = MAX_KEY_READS,
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
        if result.full:
            gone = _confirmed_gone(client, db, entity, company_id, period, run_id, result, seen,
                                   on_page, max_key_reads)
    newest = result.watermark
    with db.transaction() as conn:
        if result.full:
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
