"""The code location: the one Definitions, built from the settings when Dagster loads it.

Importing this module (or any under `defs/`) reads no setting; Dagster calls `defs` when it
loads the code location (`dagster dev`, the daemon, each run's process), and a settings change
takes effect at the next load. Without a configured company it stops there with a message that
names the settings to set.
"""

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import mart_assets
from visma_tableau_pipeline.defs.marts.checks import mart_checks
from visma_tableau_pipeline.defs.partitions import partitions_for
from visma_tableau_pipeline.defs.resources import resources_for
from visma_tableau_pipeline.defs.tableau.assets import pat_expiry_checks, tableau_assets, tableau_pool
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
from visma_tableau_pipeline.defs.visma.sensors import visma_sensors
from visma_tableau_pipeline.settings import NOTHING_TO_READ, ConfigError, EnvSettings, Settings, get_settings


def build_definitions(settings: Settings, env: EnvSettings) -> dg.Definitions:
    """Everything Dagster shows, for these settings; `env` tells which secrets environment
    variables hold (the resources name them instead of holding them)."""
    if not settings.companies:  # nothing to partition by: the message names the settings
        raise ConfigError(NOTHING_TO_READ)
    company_ids = [company.company_id for company in settings.companies]
    partitions = partitions_for(company_ids, settings.first_month)
    pool = tableau_pool(settings.tableau)
    assets = [*entity_assets(partitions), *mart_assets(company_ids), *tableau_assets(company_ids, pool),
              tableau_directory(pool), entitlements(settings.entitlements_path), tableau_entitlements(pool)]

    # Declared (not left to Dagster's default one, which starts stopped) so that dashboard tables and
    # Tableau data sources follow the entities with nothing switched on by hand; every
    # VTP_AUTOMATION_SENSOR_SECONDS (Dagster's default, 30 s, is half of a change's way to Tableau's
    # target of a minute).
    automation_condition_sensor = dg.AutomationConditionSensorDefinition(
        "automation_condition_sensor",
        target=[key for asset in assets for key, condition in asset.automation_conditions_by_key.items() if condition],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.automation_sensor_seconds,
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[*mart_checks(company_ids), *held_back_checks, *pat_expiry_checks,
                      entitlements_resolve(settings.entitlements_path), *refresh_checks],
        jobs=[master_data_job, period_entities_job, month_end_close_job],
        schedules=schedules(company_ids, settings.first_month),
        sensors=[*visma_sensors(company_ids, settings.first_month, settings.polling_sensor_seconds,
                                settings.webhook_sensor_seconds),
                 tableau_webhook_sensor,
                 month_end_close_sensor(company_ids, partitions.month, settings.close_sensor_seconds),
                 automation_condition_sensor],
        resources=resources_for(settings, env),
        # Every step in the run's own process. Dagster's default starts a Python process per step,
        # each importing the whole code location (5-10 s on a busy 2-CPU machine) for steps whose
        # work takes about a second: most of a change's way to Tableau (BENCHMARKS.md, "Freshness").
        # Pools (visma, tableau-<PAT>) still bound what runs at once.
        executor=dg.in_process_executor,
    )


# The definitions of the settings read last, with those settings: Dagster loads the code location
# more than once in a process (its code server twice), and building it again each time would
# make every load slower than the import-time object it replaces.
_built: list[tuple[Settings, dg.Definitions]] = []


@dg.definitions
def defs() -> dg.Definitions:
    """The code location as the settings describe it (built again once they are read again)."""
    settings = get_settings()
    if not _built or _built[0][0] is not settings:
        _built[:] = [(settings, build_definitions(settings, EnvSettings.read()))]
    return _built[0][1]
