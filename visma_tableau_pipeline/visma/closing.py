"""Month-end close, as Visma shows it: which periods closed or reopened in which module.

`/v1/financialPeriod` carries a flag per module (`closedInGeneralLedger`, ...) and no
lastModifiedDateTime, so the only way to see a close is to compare the flags with what was seen
before. `close_changes` does that for one company, given what was seen (a JSON-able dict the
month-end close sensor keeps in its cursor) and returns the changes with what to remember next.

Each change of a period's flags gets the next number of that period's change counter, so a close,
a reopening and a second close are three changes with three different numbers: the sensor's
run keys are built from them, and the same change is never launched twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from visma_tableau_pipeline.visma.periods import closed_modules, period_id_of


class PeriodSeen(TypedDict):
    """What the cursor keeps of a period: the modules it is closed in, and how many changes."""

    closed: list[str]
    changes: int


PeriodsSeen = dict[str, PeriodSeen]  # by YYYYPP period id


@dataclass(frozen=True)
class CloseChange:
    """One change of a period's close flags in one company."""

    company_id: str
    period_id: str  # YYYYPP
    change: int  # this period's change counter: 1 for the first change seen, 2 for the next, ...
    closed: frozenset[str]  # modules (CLOSE_FLAGS codes) that closed
    reopened: frozenset[str]  # modules that reopened
    closed_now: frozenset[str]  # every module the period is closed in after the change

    def describe(self) -> str:
        """E.g. "nordic-no 202610: closed in GL (now closed in AP, AR, GL)"."""
        parts = [f"{what} in {', '.join(sorted(modules))}"
                 for what, modules in (("closed", self.closed), ("reopened", self.reopened)) if modules]
        now = ", ".join(sorted(self.closed_now)) or "no module"
        return f"{self.company_id} {self.period_id}: {'; '.join(parts)} (now closed in {now})"


def close_changes(
    company_id: str, periods: Iterable[dict], seen: PeriodsSeen | None
) -> tuple[list[CloseChange], PeriodsSeen]:
    """The changes of close flags since `seen`, and what to remember now.

    `periods` are FinancialPeriodDto records as Visma answers them. With `seen` None (the company
    was never looked at) every flag is the baseline and nothing is a change: the periods closed
    before the sensor started were closed by months of work that their own runs already covered.
    A period seen for the first time later (a new financial year) counts as open before.
    """
    changes: list[CloseChange] = []
    remembered: PeriodsSeen = {}
    for record in periods:
        period_id = period_id_of(record)
        now = closed_modules(record)
        before = (seen or {}).get(period_id, PeriodSeen(closed=[], changes=0))
        was, count = frozenset(before["closed"]), before["changes"]
        if seen is not None and now != was:
            count += 1
            changes.append(CloseChange(company_id, period_id, count, now - was, was - now, now))
        remembered[period_id] = PeriodSeen(closed=sorted(now), changes=count)
    return changes, remembered
