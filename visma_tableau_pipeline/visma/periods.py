"""Financial periods: the company's own calendar, which need not start in January.

Dagster partitions are calendar months; Visma filters by financial period (`YYYYPP`). The map
between them comes from `/v1/financialPeriod` (start and end dates of every period).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

_YYYYPP = re.compile(r"^\d{6}$")
_YYYYPP_FIELD = "financialPeriod"
_MMYYYY_FIELDS = ("postPeriod", "applicationPeriod")
PERIOD_FIELDS = (_YYYYPP_FIELD, *_MMYYYY_FIELDS)  # what `period_of_record` reads

# The close flags of FinancialPeriodDto, by the code Visma gives each module (the `module` of a
# journal batch), in the DTO's order: a period closes module by module, subledgers before the GL.
CLOSE_FLAGS: dict[str, str] = {
    "AP": "closedInSupplierLedger",
    "AR": "closedInCustomerLedger",
    "IN": "closedInInventoryManagement",
    "GL": "closedInGeneralLedger",
    "CA": "closedInCashManagement",
    "FA": "closedInFixedAssets",
}


class PeriodError(ValueError):
    """A month has no financial period, or a period string is malformed."""


@dataclass(frozen=True)
class FinancialPeriod:
    period_id: str  # YYYYPP
    start: date
    end: date


def _as_date(value: str) -> date:
    return datetime.fromisoformat(value[:19]).date()


def parse_periods(records: Iterable[dict]) -> list[FinancialPeriod]:
    """FinancialPeriodDto items → periods sorted by start date."""
    periods = [
        FinancialPeriod(period_id_of(record), _as_date(record["startDate"]), _as_date(record["endDate"]))
        for record in records
    ]
    return sorted(periods, key=lambda p: p.start)


def closed_modules(record: dict) -> frozenset[str]:
    """The modules (CLOSE_FLAGS codes) a FinancialPeriodDto says the period is closed in.

    A flag that is missing or not `true` counts as open: Visma marks each field optional.
    """
    return frozenset(module for module, flag in CLOSE_FLAGS.items() if record.get(flag) is True)


def period_id_of(record: dict) -> str:
    """The YYYYPP id of a FinancialPeriodDto (`period` is YYYYPP; older answers gave the number)."""
    year, period = str(record["year"]), str(record["period"])
    return period if _YYYYPP.match(period) else f"{year}{int(period):02d}"


def period_for_month(periods: list[FinancialPeriod], month_start: date) -> str:
    """The financial period that holds the first day of a calendar month."""
    for period in periods:
        if period.start <= month_start <= period.end:
            return period.period_id
    raise PeriodError(
        f"no financial period covers {month_start:%Y-%m}; the company's periods span {periods_span(periods)}. "
        "Create the financial year in Visma (or pick a month inside it)."
    )


def covered_months(periods: list[FinancialPeriod], first_month: date, last_month: date) -> tuple[date, date] | None:
    """The first and last month of `first_month..last_month` whose first day the sorted periods
    cover (None when none does): a range of months to read need not ask for months before the
    company's first fiscal year or after its last. Without periods (not read yet) the range as given.
    """
    if not periods:
        return first_month, last_month
    start = periods[0].start
    first_covered = start if start.day == 1 else date(start.year + start.month // 12, start.month % 12 + 1, 1)
    first = max(first_month.replace(day=1), first_covered)
    last = min(last_month.replace(day=1), periods[-1].end.replace(day=1))
    return (first, last) if first <= last else None


def periods_span(periods: list[FinancialPeriod]) -> str:
    """The first and last day sorted periods cover, for a message ("none" without periods)."""
    return f"{periods[0].start}..{periods[-1].end}" if periods else "none"


def period_of_record(record: dict, requested_period: str | None = None) -> str | None:
    """The YYYYPP period a record belongs to.

    When the read was filtered by period, that filter is the truth (Visma put the record there).
    Otherwise `financialPeriod` (YYYYPP) wins; `postPeriod` / `applicationPeriod` are MMYYYY.
    """
    if requested_period:
        return requested_period
    value = record.get(_YYYYPP_FIELD)
    if isinstance(value, str) and _YYYYPP.match(value):
        return value
    for field in _MMYYYY_FIELDS:
        value = record.get(field)
        if isinstance(value, str) and _YYYYPP.match(value):
            return value[2:] + value[:2]
    return None


# The modules whose records this project reads: supplier ledger (AP documents and payments),
# customer ledger (AR) and general ledger (journal transactions, balances). Inventory, cash
# management and fixed assets are left out: a company that does not use them may never close
# them, which would keep every period "open" for ever.
LEDGER_CLOSED_FLAGS = ("closedInSupplierLedger", "closedInCustomerLedger", "closedInGeneralLedger")


def open_period_ids(records: Iterable[dict]) -> set[str]:
    """The periods (YYYYPP) of FinancialPeriodDto items that some ledger has not closed.

    Records can still be deleted in such a period, so it is reconciled every night; a period
    closed in every ledger changes only if it is reopened (and so becomes open again). A flag that
    is missing counts as open: reading too much is safe, reading too little is not.
    """
    return {
        period_id_of(record) for record in records
        if not all(record.get(flag) is True for flag in LEDGER_CLOSED_FLAGS)
    }
