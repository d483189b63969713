"""Financial periods and the sandbox clock.

A fiscal year need not start in January: company 2 of the demo starts its year in July, so its
period 202501 is July 2025. Periods are `YYYYPP` where YYYY names the fiscal year by the calendar
year it starts in; the DTO field `postPeriod` is the same period written `PPYYYY`.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from visma_tableau_pipeline.sandbox.visma.wire import day_text, ms_of
from visma_tableau_pipeline.visma.periods import CLOSE_FLAGS

# Generated data ends before this moment; the sandbox clock (mutations) starts after it.
DATA_END = datetime(2026, 10, 31, 18, 0, 0)
CLOCK_START = datetime(2026, 11, 1, 8, 0, 0)


@dataclass(frozen=True)
class Period:
    period_id: str  # YYYYPP
    year: int
    number: int
    start: date
    end: date  # last day, included

    @property
    def post_period(self) -> str:
        """The same period as the DTO field `postPeriod` writes it: PPYYYY."""
        return f"{self.number:02d}{self.year}"


class FiscalCalendar:
    """Twelve monthly periods per fiscal year, for the given years."""

    def __init__(self, first_year: int, years: int, start_month: int) -> None:
        self.start_month = start_month
        self.periods: list[Period] = []
        for year in range(first_year, first_year + years):
            for number in range(1, 13):
                month0 = start_month - 1 + number - 1
                start = date(year + month0 // 12, month0 % 12 + 1, 1)
                nxt0 = month0 + 1
                following = date(year + nxt0 // 12, nxt0 % 12 + 1, 1)
                end = date.fromordinal(following.toordinal() - 1)
                self.periods.append(Period(f"{year}{number:02d}", year, number, start, end))
        self._starts = [p.start.toordinal() for p in self.periods]
        self.by_id = {p.period_id: p for p in self.periods}

    @property
    def first_day(self) -> date:
        return self.periods[0].start

    def period_of_day(self, ordinal: int) -> Period:
        """The period containing a date ordinal (clamped to the calendar's ends)."""
        index = max(0, bisect_right(self._starts, ordinal) - 1)
        return self.periods[index]

    def fiscal_year_start(self, period: Period) -> Period:
        return self.by_id[f"{period.year}01"]

    def financial_period_dto(self, period: Period, closings: PeriodClosings) -> dict:
        """FinancialPeriodDto of one period, closed in the modules `closings` says."""
        return {
            "year": period.year,
            "period": period.period_id,
            "startDate": day_text(period.start.toordinal()),
            "endDate": day_text(period.end.toordinal()),
            "description": f"{period.start:%B %Y}",
            "active": True,
            **{flag: closings.closed(period, module) for module, flag in CLOSE_FLAGS.items()},
        }


class PeriodClosings:
    """Which periods are closed in which module (CLOSE_FLAGS codes).

    A period that ended before `closed_before` starts closed in every module, a later one open:
    the demo's history. `set` closes or reopens a period in some modules, as a controller does
    in Visma, so that tests and the demo can show what the month-end close sensor does.
    FinancialPeriodDto has no lastModifiedDateTime, so a change shows only in the flags.
    """

    def __init__(self, closed_before: date) -> None:
        self.closed_before = closed_before
        self._changed: dict[tuple[str, str], bool] = {}  # (period id, module) -> closed
        self._lock = threading.Lock()

    def closed(self, period: Period, module: str) -> bool:
        with self._lock:
            return self._changed.get((period.period_id, module), period.end < self.closed_before)

    def set(self, period: Period, modules: Iterable[str], closed: bool) -> None:
        """Close (or with `closed=False` reopen) `period` in `modules`."""
        unknown = sorted(set(modules) - set(CLOSE_FLAGS))
        if unknown:
            raise ValueError(f"no module {', '.join(unknown)}; known: {', '.join(CLOSE_FLAGS)}")
        with self._lock:
            for module in modules:
                self._changed[(period.period_id, module)] = closed


class SandboxClock:
    """The time of mutations: monotonic, later than every generated record, deterministic.

    Every `tick()` moves 1.013 s forward (so milliseconds vary), `advance()` jumps; the wall
    clock plays no part, so tests see the same timestamps on every run.
    """

    STEP_MS = 1013

    def __init__(self, start: datetime = CLOCK_START) -> None:
        self._now_ms = ms_of(start)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now_ms

    def tick(self) -> int:
        with self._lock:
            self._now_ms += self.STEP_MS
            return self._now_ms

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._now_ms += int(seconds * 1000)
            return self._now_ms
