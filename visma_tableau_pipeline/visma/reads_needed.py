"""What a change in Visma needs read again: the sensors' decisions, without Dagster.

A change seen by the probe (`change_probe.py`) or a deletion announced by a webhook becomes the
reads that cover it: the company's master data, the months of the periods that changed, or every
month the company keeps (a truncated probe: the changes past its pages can be in any month). Each
read carries a key naming the change, from which the Dagster sensors build their run keys: one
piece of work is launched once, however many ticks (or duplicate webhooks) report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from visma_tableau_pipeline.visma.catalogue import Entity
from visma_tableau_pipeline.visma.change_probe import EntityChanges
from visma_tableau_pipeline.visma.periods import FinancialPeriod, covered_months
from visma_tableau_pipeline.visma.plan import periods_in_window


@dataclass(frozen=True)
class ReadNeeded:
    """One read of one entity of one company that a change needs."""

    company_id: str
    entity: Entity
    key: str  # unique per piece of work: company, entity, window and the change
    month: str | None = None  # YYYY-MM-01 of one period entity month
    months: tuple[date, date] | None = None  # first and last month of a range (every month kept)
    full: bool = False  # a reconciling read (finds deleted records)


def months_of(periods: list[FinancialPeriod], period_ids: set[str], first_month: date, today: date) -> list[str]:
    """Month starts (YYYY-MM-01) of the given financial periods, in the window the nightly run
    reads: periods before VTP_FIRST_MONTH are never kept, and a period that has not begun has no
    month yet (the nightly run reads it in full once it begins)."""
    wanted = period_ids & set(periods_in_window(periods, first_month, today))
    return sorted(f"{max(p.start, first_month):%Y-%m-01}" for p in periods if p.period_id in wanted)


def reads_for_changes(
    company_id: str,
    entity: Entity,
    changes: EntityChanges,
    periods: list[FinancialPeriod],
    first_month: date,
    today: date,
) -> list[ReadNeeded]:
    """The reads that cover every change `changes` stands for, so a cursor may move to its newest.

    A truncated probe saw only its first pages. The changes past them can be in any month:
    Visma's list order is not documented, and records sharing one lastModifiedDateTime are cut
    apart, the rest never "later" than the cursor again. So a truncated period entity is read
    again over every month the company's periods cover, in one read (like the nightly run).
    """
    if not changes.records and not changes.truncated:
        return []
    version = changes.newest or "unknown"
    if not entity.by_period:
        return [ReadNeeded(company_id, entity, f"{company_id}:{entity.name}:{version}")]
    if changes.truncated:
        covered = covered_months(periods, first_month, today)
        return [ReadNeeded(company_id, entity, f"{company_id}:{entity.name}:every-month:{version}",
                           months=covered)] if covered else []
    return [
        ReadNeeded(company_id, entity, f"{company_id}:{entity.name}:{month}:{version}", month=month)
        for month in months_of(periods, changes.periods, first_month, today)
    ]


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
        return [ReadNeeded(company_id, entity, f"{company_id}:{entity.name}:deleted:{notification_id}", full=True)]
    return [
        ReadNeeded(company_id, entity, f"{company_id}:{entity.name}:{month}:deleted:{notification_id}",
                   month=month, full=True)
        for month in months_of(periods, {p for p in stored.values() if p}, first_month, today)
    ]
