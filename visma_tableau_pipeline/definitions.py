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
from visma_tableau_pipeline.defs.visma.assets import entity_assets
from visma_tableau_pipeline.defs.visma.checks import held_back_checks
from visma_tableau_pipeline.defs.visma.close import month_end_close_job, month_end_close_sensor
from visma_tableau_pipeline.defs.visma.jobs import master_data_job, period_entities_job, schedules
from visma_tableau_pipeline.defs.visma.sensors import visma_polling_sensor, visma_webhook_sensor

defs = dg.Definitions(
    assets=[*entity_assets, *mart_assets, *tableau_assets, tableau_directory, entitlements,
            tableau_entitlements],
    asset_checks=[*mart_checks, *held_back_checks, *pat_expiry_checks, entitlements_resolve],
    jobs=[master_data_job, period_entities_job, month_end_close_job],
    schedules=schedules,
    sensors=[visma_polling_sensor, visma_webhook_sensor, month_end_close_sensor],
    resources={"visma": VismaResource(), "state": StateResource()},
)
