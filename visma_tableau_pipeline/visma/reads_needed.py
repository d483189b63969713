"""What a change in Visma needs read again: the sensors' decisions, without Dagster.

A change seen by the probe (`change_probe.py`) or a deletion announced by a webhook becomes the
reads that cover it: the company's master data, the months of the periods that changed, or every
month the company keeps (a truncated probe: the changes past its pages can be in any month). Each
read carries a key naming the change, from which the Dagster sensors build their run keys: one
piece of work is launched once, however many ticks (or duplicate webhooks) report it.

A run costs 10-15 s to launch for well under a second of reading, and the `visma` pool lets one
run read at a time, so a tick's changes of one company are merged (`merge_reads`) into one read of
master data and one of the period entities over the range of changed months: a month in that
range without changes costs one delta request, far less than a run of its own.

Each change read names the newest change version it covers per entity (`versions`). Both sensors
start their probe after the newest version any read already requested (`probe_from`), so what the
webhook sensor has requested the polling sensor does not request again, and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from visma_tableau_pipeline.state.watermarks import timestamp_order
from visma_tableau_pipeline.visma.catalogue import Entity
from visma_tableau_pipeline.visma.change_probe import EntityChanges
from visma_tableau_pipeline.visma.periods import FinancialPeriod, covered_months
from visma_tableau_pipeline.visma.plan import periods_in_window


@dataclass(frozen=True)
class ReadNeeded:
    """One run's read of one company: master data entities, or period entities over a range of
    months."""

    company_id: str
    entities: tuple[Entity, ...]
    key: str  # unique per piece of work: company, entities, window and the change
    months: tuple[date, date] | None = None  # first and last month (equal for one); None: master data
    full: bool = False  # a reconciling read (finds deleted records)
    versions: tuple[tuple[str, str], ...] = ()  # (entity name, newest change version it covers)


def months_of(periods: list[FinancialPeriod], period_ids: set[str], first_month: date, today: date) -> list[date]:
    """First days of the months of the given financial periods, in the window the nightly run
    reads: periods before VTP_FIRST_MONTH are never kept, and a period that has not begun has no
    month yet (the nightly run reads it in full once it begins)."""
    wanted = period_ids & set(periods_in_window(periods, first_month, today))
    return sorted(max(p.start, first_month).replace(day=1) for p in periods if p.period_id in wanted)


def reads_for_changes(
    company_id: str,
    entity: Entity,
    changes: EntityChanges,
    periods: list[FinancialPeriod],
    first_month: date,
    today: date,
) -> list[ReadNeeded]:
    """The read that covers every change `changes` stands for, so a cursor may move to its newest:
    master data, or the range from the first to the last changed month.

    A truncated probe saw only its first pages. The changes past them can be in any month:
    Visma's list order is not documented, and records sharing one lastModifiedDateTime are cut
    apart, the rest never "later" than the cursor again. So a truncated period entity is read
    again over every month the company's periods cover, in one read (like the nightly run).
    """
    if not changes.records and not changes.truncated:
        return []
    version = changes.newest or "unknown"
    versions = ((entity.name, version),) if changes.newest else ()
    if not entity.by_period:
        return [ReadNeeded(company_id, (entity,), f"{company_id}:{entity.name}:{version}", versions=versions)]
    if changes.truncated:
        covered = covered_months(periods, first_month, today)
        return [ReadNeeded(company_id, (entity,), f"{company_id}:{entity.name}:every-month:{version}",
                           months=covered, versions=versions)] if covered else []
    months = months_of(periods, changes.periods, first_month, today)
    if not months:
        return []
    return [ReadNeeded(company_id, (entity,), f"{company_id}:{entity.name}:{_span(months[0], months[-1])}:{version}",
                       months=(months[0], months[-1]), versions=versions)]


def merge_reads(reads: Iterable[ReadNeeded]) -> list[ReadNeeded]:
    """The change reads of one tick as one read per company and kind (master data, period
    entities): every entity, the range over every month, each entity's newest version.

    The key names every entity with its newest change and the months, so a retried tick asks for
    the same run and a later change for a new one. Reconciling (full) reads are left alone: a
    full read of the range between two deletions' months would read every month between them in
    full, and each deletion is acted on once, under its notification's key.
    """
    groups: dict[tuple[str, bool], list[ReadNeeded]] = {}
    merged: list[ReadNeeded] = []
    for read in reads:
        if read.full:
            merged.append(read)
        else:
            groups.setdefault((read.company_id, read.months is not None), []).append(read)
    for (company_id, by_period), group in groups.items():
        entities = tuple(dict.fromkeys(e for read in group for e in read.entities))
        versions = tuple(sorted(newest_versions(v for read in group for v in read.versions).items()))
        named = "+".join(f"{name}@{version}" for name, version in versions) or "unknown"
        if not by_period:
            merged.append(ReadNeeded(company_id, entities, f"{company_id}:{named}", versions=versions))
            continue
        first = min(read.months[0] for read in group if read.months)
        last = max(read.months[1] for read in group if read.months)
        merged.append(ReadNeeded(company_id, entities, f"{company_id}:{named}:{_span(first, last)}",
                                 months=(first, last), versions=versions))
    return merged


def newest_versions(versions: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The newest change version per entity name, of (entity name, version) pairs."""
    newest: dict[str, str] = {}
    for name, version in versions:
        if name not in newest or timestamp_order(version) > timestamp_order(newest[name]):
            newest[name] = version
    return newest


def probe_from(cursor: str | None, requested: str | None) -> str | None:
    """Where a sensor's probe of an entity starts: after the newer of its own cursor and the newest
    change version a read was already requested for (by either sensor). Everything up to that
    version is stored or in a requested read, so probing from it finds only what nobody asked
    for yet."""
    known = [v for v in (cursor, requested) if v is not None]
    return max(known, key=timestamp_order) if known else None


def reads_for_deletion(
    company_id: str,
    entity: Entity,
    stored: dict[str, str | None],
    notification_id: str,
    periods: list[FinancialPeriod],
    first_month: date,
    today: date,
) -> list[ReadNeeded]:
    """Reconciling reads of the windows that hold a record Visma says it deleted.

    `stored` maps the record's stored keys to their periods: empty when the store never held it
    (nothing of it reached Tableau, so nothing to read). A full read marks the record deleted only
    when Visma confirms it is gone. Keyed by the notification: each one is acted on once.
    """
    if not stored:
        return []
    if not entity.by_period:
        return [ReadNeeded(company_id, (entity,), f"{company_id}:{entity.name}:deleted:{notification_id}", full=True)]
    return [
        ReadNeeded(company_id, (entity,), f"{company_id}:{entity.name}:{month:%Y-%m-01}:deleted:{notification_id}",
                   months=(month, month), full=True)
        for month in months_of(periods, {p for p in stored.values() if p}, first_month, today)
    ]


def _span(first: date, last: date) -> str:
    """A range of months as a key part: one month alone as YYYY-MM-01."""
    return f"{first:%Y-%m-01}" if first == last else f"{first:%Y-%m-01}..{last:%Y-%m-01}"
