"""The one Definitions object of the code location: it builds, and does nothing else."""

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import mart_assets
from visma_tableau_pipeline.defs.marts.checks import mart_checks
from visma_tableau_pipeline.defs.resources import StateResource, VismaResource
from visma_tableau_pipeline.defs.tableau.assets import pat_expiry_checks, tableau_assets
from visma_tableau_pipeline.defs.tableau.entitlements import (
    entitlements,
    entitlements_resolve,
    tableau_directory,
    tableau_entitlements,
)
from visma_tableau_pipeline.defs.tableau.webhooks import refresh_checks, tableau_webhook_sensor
from visma_tableau_pipeline.defs.visma.assets import entity_assets
from visma_tableau_pipeline.defs.visma.checks import held_back_checks
from visma_tableau_pipeline.defs.visma.close import month_end_close_job, month_end_close_sensor
from visma_tableau_pipeline.defs.visma.jobs import master_data_job, period_entities_job, schedules
from visma_tableau_pipeline.defs.visma.sensors import visma_polling_sensor, visma_webhook_sensor
from visma_tableau_pipeline.settings import get_settings

assets = [*entity_assets, *mart_assets, *tableau_assets, tableau_directory, entitlements, tableau_entitlements]

# Declared (not left to Dagster's default one, which starts stopped) so that dashboard tables and
# Tableau data sources follow the entities with nothing switched on by hand; every
# VTP_AUTOMATION_SENSOR_SECONDS (Dagster's default, 30 s, is half of a change's way to Tableau's
# target of a minute).
automation_condition_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=[key for asset in assets for key, condition in asset.automation_conditions_by_key.items() if condition],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=get_settings().automation_sensor_seconds,
)

defs = dg.Definitions(
    assets=assets,
    asset_checks=[*mart_checks, *held_back_checks, *pat_expiry_checks, entitlements_resolve, *refresh_checks],
    jobs=[master_data_job, period_entities_job, month_end_close_job],
    schedules=schedules,
    sensors=[visma_polling_sensor, visma_webhook_sensor, tableau_webhook_sensor, month_end_close_sensor,
             automation_condition_sensor],
    resources={"visma": VismaResource(), "state": StateResource()},
    # Every step in the run's own process. Dagster's default starts a Python process per step,
    # each importing the whole code location (5-10 s on a busy 2-CPU machine) for steps whose
    # work takes about a second: most of a change's way to Tableau (BENCHMARKS.md, "Freshness").
    # Pools (visma, tableau-<PAT>) still bound what runs at once.
    executor=dg.in_process_executor,
)
