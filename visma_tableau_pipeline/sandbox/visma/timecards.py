"""Weekly time cards: one per employee and ISO week, submitted on Friday afternoon."""

from __future__ import annotations

from datetime import date

from visma_tableau_pipeline.sandbox.visma.determinism import Draw
from visma_tableau_pipeline.sandbox.visma.masters import Masters
from visma_tableau_pipeline.sandbox.visma.sources import DAY_MS, HOUR_MS, CompanyContext, SeriesSource, parse_number
from visma_tableau_pipeline.sandbox.visma.wire import day_of_ms, timestamp

WEEK_MS = 7 * DAY_MS


class TimeCardSource(SeriesSource):
    """Card i belongs to employee i % E in week i // E, so both grow in step with i."""

    entity_name = "time_cards"

    def __init__(self, ctx: CompanyContext, masters: Masters) -> None:
        self.masters = masters
        self.employees = len(masters.employees)
        first = date.fromordinal(day_of_ms(ctx.data_start_ms))
        monday = first.toordinal() - first.weekday()
        self.first_monday_ms = ctx.data_start_ms + (monday - first.toordinal()) * DAY_MS
        weeks = (ctx.data_end_ms - self.first_monday_ms) // WEEK_MS
        super().__init__(ctx, self.employees * weeks, ctx.data_start_ms, ctx.data_end_ms)

    def created_ms(self, index: int) -> int:
        week, employee = divmod(index, self.employees)
        return self.first_monday_ms + week * WEEK_MS + 4 * DAY_MS + 15 * HOUR_MS + employee * 60_000

    def index_of(self, key: tuple[str, ...]) -> int | None:
        value = parse_number(key[0], "TC")
        return None if value is None else value - 1

    def build(self, index: int, when_ms: int | None = None) -> dict:
        created, modified = self.times(index, when_ms)
        employee = self.masters.employees[index % self.employees]
        draw = Draw(self.stream, index)
        monday = date.fromordinal(day_of_ms(created) - date.fromordinal(day_of_ms(created)).weekday())
        year, week, _ = monday.isocalendar()
        profile = self.ctx.profile
        subs = self.masters.subaccounts
        summary, total, invoiceable = [], 0, 0
        for line_number in (1, 2):
            sub = draw.pick(subs)
            billable = sub.project[0] != "0000"
            days = [draw.pick((180, 240, 270)) if line_number == 1 else draw.pick((120, 180, 210)) for _ in range(5)]
            spent = sum(days)
            total += spent
            invoiceable += spent if billable else 0
            summary.append({
                "lineNumber": line_number,
                "earningType": {"code": "RG", "description": "Regular hours", "isOvertime": False,
                                "isBillable": billable, "isActive": True},
                "project": {"id": sub.project[0], "description": sub.project[1]},
                "mon": days[0], "tue": days[1], "wed": days[2], "thu": days[3], "fri": days[4],
                "sat": 0, "sun": 0,
                "invoiceable": billable,
                "timeSpent": spent,
                "description": sub.project[1],
                "approvalStatus": "ApprovedInApproval",
                "lastModifiedDateTime": timestamp(modified),
            })
        recent = when_ms is not None or index >= len(self) - 2 * self.employees
        return {
            "refNbr": f"TC{index + 1:06d}",
            "status": "Open" if recent else "Released",
            "approvalStatus": "SentToApproval" if recent else "ApprovedInApproval",
            "week": {"number": f"{year}{week:02d}",
                     "description": f"{profile.words['week']} {week} {year} ({monday:%d.%m})"},
            "employee": employee.ref,
            "type": "Normal",
            "timeSpent": total,
            "invoiceable": invoiceable,
            "overtimeSpent": 0,
            "invoiceableOvertime": 0,
            "totalTimeSpent": total,
            "invoiceableTotalTime": invoiceable,
            "lastModifiedDateTime": timestamp(modified),
            "summary": summary,
        }
