"""The one definition of "a company" and "a month", imported by assets, schedules and sensors."""

from __future__ import annotations

import dagster as dg

from visma_tableau_pipeline.settings import NOTHING_TO_READ, ConfigError, get_settings

_settings = get_settings()
if not _settings.companies:  # the code location does not load: the message names the settings
    raise ConfigError(NOTHING_TO_READ)

company_partitions = dg.StaticPartitionsDefinition([c.company_id for c in _settings.companies])

month_partitions = dg.MonthlyPartitionsDefinition(
    start_date=_settings.first_month.isoformat(), end_offset=1
)

company_month_partitions = dg.MultiPartitionsDefinition(
    {"company": company_partitions, "month": month_partitions}
)
