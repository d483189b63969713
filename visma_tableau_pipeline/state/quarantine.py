"""Records held back: kept in the store, left out of every dashboard table, shown with a reason.

A record that a table cannot convert (a value outside Visma's contract, a wrong type) must not
stop the others of its company. The build that meets it notes it here with the field, value and
reason; every later build reads the store without it. The note is tied to the record's content:
when Visma sends another version, the stored content changes, the note no longer applies, and the
next build tries the record again. So a record leaves the quarantine by itself, and
`held_records` lists only notes that still apply.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Exists, and_, delete, exists, select

from visma_tableau_pipeline.state.schema import quarantine, records, utc_now
from visma_tableau_pipeline.state.upsert import upsert_many

_KEY = ("company_id", "entity", "record_key")
_VALUE_LIMIT = 500  # characters of a held value kept: enough to recognise it, not a whole text


@dataclass(frozen=True)
class HeldRecord:
    """One record held back from the tables, and why."""

    company_id: str
    entity: str
    key: str  # the record's key as the store spells it (`key_string`)
    field: str  # the Visma field (dotted path) or table column that could not be converted
    value: str  # the value as Visma sent it (repr), cut to a readable length
    reason: str
    table: str  # the table whose build met it

    def describe(self) -> str:
        """One line a person reads: where, which record, which field, what and why."""
        return (f"{self.company_id} {self.entity} {self.key}: {self.field} = {self.value}: "
                f"{self.reason} (table {self.table})")


def _applies() -> Exists:
    """The condition under which a note applies: its record is live with the noted content."""
    return exists().where(
        records.c.company_id == quarantine.c.company_id,
        records.c.entity == quarantine.c.entity,
        records.c.record_key == quarantine.c.record_key,
        records.c.content_hash == quarantine.c.content_hash,
        records.c.deleted_at.is_(None),
    )


def hold_back(conn: Connection, held: Iterable[HeldRecord], run_id: str) -> int:
    """Note records as held back, each with the content it has in the store now.

    Returns how many were noted (a record no longer stored live is not noted).
    """
    now = utc_now()
    wanted = {(h.company_id, h.entity, h.key): h for h in held}
    rows = []
    for (company_id, entity, key), item in wanted.items():
        digest = conn.execute(
            select(records.c.content_hash).where(
                records.c.company_id == company_id, records.c.entity == entity,
                records.c.record_key == key, records.c.deleted_at.is_(None),
            )
        ).scalar_one_or_none()
        if digest is None:
            continue
        rows.append({
            "company_id": company_id, "entity": entity, "record_key": key, "content_hash": digest,
            "table_name": item.table, "field": item.field, "value": item.value[:_VALUE_LIMIT],
            "reason": item.reason, "run_id": run_id, "held_at": now,
        })
    upsert_many(conn, quarantine, _KEY, tuple(c.name for c in quarantine.columns if c.name not in _KEY),
                rows)
    return len(rows)


def release_stale(conn: Connection) -> int:
    """Drop notes whose record changed or went: those records are tried again."""
    return conn.execute(delete(quarantine).where(~_applies())).rowcount


def held_records(conn: Connection, company_ids: Collection[str] | None = None,
                 entities: Collection[str] | None = None) -> list[HeldRecord]:
    """Records held back now (notes that still apply), by company, entity and key."""
    conditions: list[ColumnElement[bool]] = [_applies()]
    if company_ids is not None:
        conditions.append(quarantine.c.company_id.in_(list(company_ids)))
    if entities is not None:
        conditions.append(quarantine.c.entity.in_(list(entities)))
    stmt = (
        select(quarantine.c.company_id, quarantine.c.entity, quarantine.c.record_key,
               quarantine.c.field, quarantine.c.value, quarantine.c.reason, quarantine.c.table_name)
        .where(and_(*conditions))
        .order_by(quarantine.c.company_id, quarantine.c.entity, quarantine.c.record_key)
    )
    return [HeldRecord(*row) for row in conn.execute(stmt)]


def not_held() -> ColumnElement[bool]:
    """A condition on `records` rows: the row's current content is not held back."""
    return ~exists().where(
        quarantine.c.company_id == records.c.company_id,
        quarantine.c.entity == records.c.entity,
        quarantine.c.record_key == records.c.record_key,
        quarantine.c.content_hash == records.c.content_hash,
    )
