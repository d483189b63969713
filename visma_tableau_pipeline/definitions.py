"""The one Definitions object of the code location: it builds, and does nothing else."""

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import mart_assets
from visma_tableau_pipeline.defs.resources import StateResource, VismaResource
from visma_tableau_pipeline.defs.visma.assets import entity_assets

defs = dg.Definitions(
    assets=[*entity_assets, *mart_assets],
    resources={"visma": VismaResource(), "state": StateResource()},
)
