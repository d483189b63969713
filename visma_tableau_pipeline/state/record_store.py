"""The raw record store: the project's own copy of every Visma record it has read.

One row per (company, entity, record key) holding the latest version: its JSON text, the hash of
that text, and the run that first saw and last changed it. The text is Visma's own text of the
item without its volatile fields (`metadata`, `timeStamp`) when the read kept it, else the
record's canonical JSON (state/payloads.py): journal batches merged from pieces, items whose
volatile fields could not be cut safely, callers that hold only the decoded record. Visma's text is
stable as long as Visma writes the same record the same way, so storing the same content again
changes nothing and re-reads (overlapping deltas, retried runs, full syncs) cause no version
churn. Should Visma change how it writes a record (another key order, say), that record shows
once as updated with equal content; the marts' own row hashes then find nothing to deliver.
Records Visma no longer lists are marked deleted by reconciliation, never removed, so the
publisher can tell Tableau and the ledger can record it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, LargeBinary, and_, bindparam, cast, func, literal, select, update

from visma_tableau_pipeline.state.batches import BATCH_SIZE, batched
from visma_tableau_pipeline.state.errors import PayloadError
from visma_tableau_pipeline.state.payloads import canonical_json, content_hash, load_payload
from visma_tableau_pipeline.state.quarantine import not_held
from visma_tableau_pipeline.state.schema import records, utc_now
from visma_tableau_pipeline.state.upsert import upsert_many

_KEY = ("company_id", "entity", "record_key")
_UPDATED_ON_CHANGE = (
    "content_hash", "payload", "last_modified", "period", "deleted_at", "last_changed_run", "updated_at",
)
_PERIOD = re.compile(r"\d{6}")

RecordRow = (
    tuple[str, str | None, str | None, dict[str, Any]]
    | tuple[str, str | None, str | None, dict[str, Any], str | None]
)
"""(record_key, period YYYYPP or None, last_modified as Visma sent it, payload[, text]).

`text`, when given and not None, is the JSON text to store for `payload`: it must decode to
exactly `payload` without its volatile fields (the client's `texts` of a read). Without it the
payload's canonical JSON is stored.
"""


@dataclass(frozen=True)
class UpsertResult:
    """How many of the rows given were new, changed, or the same as stored."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def changed(self) -> int:
        return self.inserted + self.updated


def upsert_records(
    conn: Connection, company_id: str, entity: str, rows: Iterable[RecordRow], run_id: str
) -> UpsertResult:
    """Store the latest version of each record; only new or changed content is written.

    A record that was marked deleted and is seen again counts as updated (it is back). When one
    key appears twice in `rows`, the later copy is compared with the earlier one, as if they came
    in two calls.
    """
    result = UpsertResult()
    batch: dict[str, tuple[str | None, str | None, str, str]] = {}
    for row in rows:
        record_key, period, last_modified, payload = row[:4]
        text = row[4] if len(row) > 4 else None
        if record_key in batch or len(batch) >= BATCH_SIZE:
            result += _write_batch(conn, company_id, entity, batch, run_id)
            batch = {}
        if period is not None and not _PERIOD.fullmatch(period):
            raise PayloadError(
                f"period {period!r} is not YYYYPP", company_id=company_id, entity=entity,
                record_key=record_key,
            )
        if text is None:
            try:
                text = canonical_json(payload)
            except PayloadError as exc:
                exc.context.update(company_id=company_id, entity=entity, record_key=record_key)
                raise
        batch[record_key] = (period, last_modified, text, content_hash(text))
    if batch:
        result += _write_batch(conn, company_id, entity, batch, run_id)
    return result


# Built once: a new IN (...) of a thousand literal keys per batch cost more than running it.
_STORED_VERSIONS = select(records.c.record_key, records.c.content_hash, records.c.deleted_at).where(
    records.c.company_id == bindparam("company_id"),
    records.c.entity == bindparam("entity"),
    records.c.record_key.in_(bindparam("keys", expanding=True)),
)


def _write_batch(
    conn: Connection,
    company_id: str,
    entity: str,
    batch: dict[str, tuple[str | None, str | None, str, str]],
    run_id: str,
) -> UpsertResult:
    stored = {
        key: (stored_hash, deleted_at)
        for key, stored_hash, deleted_at in conn.execute(
            _STORED_VERSIONS, {"company_id": company_id, "entity": entity, "keys": list(batch)}
        )
    }
    now = utc_now()
    writes = []
    inserted = updated = 0
    for key, (period, last_modified, text, digest) in batch.items():
        previous = stored.get(key)
        if previous is None:
            inserted += 1
        elif previous[0] != digest or previous[1] is not None:
            updated += 1
        else:
            continue
        writes.append(
            {
                "company_id": company_id, "entity": entity, "record_key": key,
                "content_hash": digest, "payload": text, "last_modified": last_modified,
                "period": period, "deleted_at": None, "first_seen_run": run_id,
                "last_changed_run": run_id, "updated_at": now,
            }
        )
    upsert_many(conn, records, _KEY, _UPDATED_ON_CHANGE, writes)
    return UpsertResult(inserted, updated, len(batch) - len(writes))


def _where(company_id: str, entity: str, period: str | None, include_deleted: bool) -> Any:
    conditions = [records.c.company_id == company_id, records.c.entity == entity]
    if period is not None:
        conditions.append(records.c.period == period)
    if not include_deleted:
        conditions.append(records.c.deleted_at.is_(None))
    return and_(*conditions)


def iter_records(
    conn: Connection,
    company_id: str,
    entity: str,
    period: str | None = None,
    include_deleted: bool = False,
    skip_held: bool = False,
) -> Iterator[dict[str, Any]]:
    """The stored payloads in record-key order, decimals as Decimal, streamed in pages.

    `skip_held` leaves out records held back from the tables (`state/quarantine.py`).
    """
    for text in iter_json(conn, company_id, entity, period, include_deleted, skip_held):
        yield load_payload(text)


def iter_json(
    conn: Connection,
    company_id: str,
    entity: str,
    period: str | None = None,
    include_deleted: bool = False,
    skip_held: bool = False,
) -> Iterator[bytes]:
    """The stored JSON texts of `iter_records` as UTF-8 bytes, undecoded: a table built
    column-wise reads the fields it needs straight from them (`marts/columnar.py`), at a fraction
    of the cost of decoding every record into Python objects. The database hands over the bytes
    it keeps, so they are not decoded into text and encoded again either."""
    condition = _where(company_id, entity, period, include_deleted)
    if skip_held:
        condition = and_(condition, not_held())
    stmt = (
        select(_utf8(conn, records.c.payload))
        .where(condition)
        .order_by(records.c.record_key)
        .execution_options(yield_per=BATCH_SIZE)
    )
    for (text,) in conn.execute(stmt):
        yield bytes(text)  # psycopg2 hands a bytea over as a memoryview


def _utf8(conn: Connection, column: Any) -> Any:
    """`column`'s text as its UTF-8 bytes. PostgreSQL's CAST to bytea would read backslashes
    (every JSON escape) as bytea escapes, so it converts; SQLite's CAST to BLOB keeps the bytes."""
    if conn.dialect.name == "postgresql":
        return func.convert_to(column, literal("UTF8"))
    return cast(column, LargeBinary)


def content_hashes(
    conn: Connection, company_id: str, entity: str, period: str | None = None
) -> dict[str, str]:
    """record_key -> content_hash of the live records: what a delivery would carry now."""
    stmt = select(records.c.record_key, records.c.content_hash).where(
        _where(company_id, entity, period, include_deleted=False)
    )
    return {key: digest for key, digest in conn.execute(stmt)}


def keys_for(
    conn: Connection,
    company_id: str,
    entity: str,
    period: str | None = None,
    include_deleted: bool = False,
) -> set[str]:
    """The stored record keys; reconciliation compares them with what Visma lists now."""
    stmt = select(records.c.record_key).where(_where(company_id, entity, period, include_deleted))
    return set(conn.execute(stmt).scalars())


def periods_of(conn: Connection, company_id: str, entity: str, keys: Iterable[str]) -> dict[str, str | None]:
    """record_key -> period (YYYYPP, None for master data) of those of `keys` stored and live."""
    found: dict[str, str | None] = {}
    for chunk in batched(keys):
        stmt = select(records.c.record_key, records.c.period).where(
            and_(_where(company_id, entity, None, include_deleted=False), records.c.record_key.in_(chunk))
        )
        found.update({key: period for key, period in conn.execute(stmt)})
    return found


def count(
    conn: Connection,
    company_id: str,
    entity: str,
    period: str | None = None,
    include_deleted: bool = False,
) -> int:
    """How many records are stored."""
    stmt = select(func.count()).select_from(records).where(
        _where(company_id, entity, period, include_deleted)
    )
    return int(conn.execute(stmt).scalar_one())


def mark_deleted(
    conn: Connection,
    company_id: str,
    entity: str,
    keys: Iterable[str],
    run_id: str,
    at: datetime | None = None,
) -> int:
    """Mark records Visma no longer lists as deleted; returns how many were live before.

    The row stays (with its last content) so the deletion can be published and audited.
    """
    now = utc_now()
    values = {"deleted_at": at or now, "last_changed_run": run_id, "updated_at": now}
    marked = 0
    for chunk in batched(keys):
        stmt = (
            update(records)
            .where(
                records.c.company_id == company_id,
                records.c.entity == entity,
                records.c.record_key.in_(chunk),
                records.c.deleted_at.is_(None),
            )
            .values(**values)
        )
        marked += conn.execute(stmt).rowcount
    return marked
