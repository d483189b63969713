"""Employee tables: employees and their time cards."""

from __future__ import annotations

import pandas as pd

from visma_tableau_pipeline.marts.flat import FlatTable, Lines
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.schema import BOOL, INT, TEXT, TIMESTAMP

EMPLOYEES = FlatTable("employees", "employees", (
    ("employee_number", TEXT, "employeeNumber"),
    ("employee_id", INT, "employeeId"),
    ("employee_name", TEXT, "employeeName"),
    ("status", TEXT, "status"),
    ("department", TEXT, "department"),
    ("employee_class", TEXT, "employeeClass.id"),
    ("branch_number", TEXT, "branch.number"),
    ("calendar_id", TEXT, "calendarID"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))


TIMECARDS = FlatTable("timecards", "time_cards", (
    ("reference_number", TEXT, "card.refNbr"),
    ("line_number", INT, "line.lineNumber"),
    ("employee_number", TEXT, "card.employee.number"),
    ("employee_name", TEXT, "card.employee.name"),
    ("week", TEXT, "card.week.number"),
    ("week_description", TEXT, "card.week.description"),
    ("status", TEXT, "card.status"),
    ("approval_status", TEXT, "card.approvalStatus"),
    ("card_type", TEXT, "card.type"),
    ("earning_type", TEXT, "line.earningType.code"),
    ("overtime", BOOL, "line.earningType.isOvertime"),
    ("project_id", TEXT, "line.project.id"),
    ("project_task_id", TEXT, "line.projectTask.id"),
    ("invoiceable", BOOL, "line.invoiceable"),
    ("time_spent_minutes", INT, "line.timeSpent"),
    ("description", TEXT, "line.description"),
    ("last_modified_at", TIMESTAMP, "card.lastModifiedDateTime"),
), lines=Lines("summary", record="card"))  # each summary line with its card, as {company_id, card, line}


def build_timecards(inputs: MartInputs) -> pd.DataFrame:
    """Time card summary lines (one per earning type and project task per week), in minutes."""
    return TIMECARDS.build(inputs)
