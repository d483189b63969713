"""The one definition of "a company" and "a month", made when the definitions load and handed to
the assets, schedules and sensors that use them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg


@dataclass(frozen=True)
class Partitions:
    """Companies (master data), calendar months, and both together (period entities)."""

    company: dg.StaticPartitionsDefinition
    month: dg.MonthlyPartitionsDefinition
    company_month: dg.MultiPartitionsDefinition


def partitions_for(company_ids: Sequence[str], first_month: date) -> Partitions:
    """Partitions over these companies and every month from `first_month` to next month."""
    company = dg.StaticPartitionsDefinition(list(company_ids))
    month = dg.MonthlyPartitionsDefinition(start_date=first_month.isoformat(), end_offset=1)
    return Partitions(company, month, dg.MultiPartitionsDefinition({"company": company, "month": month}))
