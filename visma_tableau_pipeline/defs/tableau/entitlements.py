"""Master data both ways: Tableau's users and groups read back, and the entitlements table
(row-level security) built from the YAML mapping, checked against Visma and Tableau, published.
"""

from pathlib import Path

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.marts.checks import read_extract
from visma_tableau_pipeline.defs.resources import StateResource, TableauResource
from visma_tableau_pipeline.defs.tableau.assets import build_tableau_asset
from visma_tableau_pipeline.delivery.extracts import ENTITLEMENTS, write_entitlements
from visma_tableau_pipeline.delivery.publish import PublishTarget
from visma_tableau_pipeline.marts.entitlements import (
    ENTITLEMENTS_KEY,
    entitlement_problems,
    known_visma_values,
    load_entitlements,
    tableau_principals,
)
from visma_tableau_pipeline.marts.hyper import write_hyper
from visma_tableau_pipeline.marts.registry import mart_table
from visma_tableau_pipeline.tableau.directory import read_directory
from visma_tableau_pipeline.tableau.session import TableauSession

USERS, MEMBERSHIPS = "tableau_users", "tableau_group_memberships"
DIRECTORY_KEY = dg.AssetKey(["tableau", "directory"])
ENTITLEMENTS_ASSET = dg.AssetKey(["marts", ENTITLEMENTS])
VISMA_MASTER_TABLES = ("customers", "suppliers", "dimensions")


def tableau_directory(pool: str) -> dg.AssetsDefinition:
    """The asset reading Tableau's users and groups, in the Tableau `pool`."""

    @dg.asset(
        key=DIRECTORY_KEY,
        group_name="tableau_data_sources",
        kinds={"tableau", "hyper"},
        pool=pool,
        description="Tableau's users and group memberships, read back from the site into "
        f"$VTP_HOME/extracts/{USERS}.hyper and {MEMBERSHIPS}.hyper; entitlements are checked "
        "against them.",
    )
    def _directory(context: dg.AssetExecutionContext, tableau: TableauResource,
                   state: StateResource) -> dg.MaterializeResult:
        if not tableau.configured:
            context.log.info("No Tableau settings: there is no Tableau directory to read.")
            return dg.MaterializeResult(metadata={"read": False})
        with TableauSession(tableau.settings()) as session:
            users, memberships = read_directory(session)
        for name, frame in ((USERS, users), (MEMBERSHIPS, memberships)):
            state.share(name, write_hyper(frame, state.extracts_dir, name), context.run.run_id)
        return dg.MaterializeResult(metadata={
            "users": len(users),
            "groups": memberships["group_name"].nunique(),
            "preview": dg.MetadataValue.md(users.head(10).to_markdown(index=False)),
        })

    return _directory


def entitlements(entitlements_path: Path | None) -> dg.AssetsDefinition:
    """The entitlements table, from the YAML file `entitlements_path` (VTP_ENTITLEMENTS)."""

    @dg.asset(
        key=ENTITLEMENTS_ASSET,
        group_name="dashboard_tables",
        kinds={"pandas", "hyper"},
        deps=[DIRECTORY_KEY],
        description="Row-level security: which Tableau user or group may see which company, "
        "customer, supplier or department, from the YAML file VTP_ENTITLEMENTS ('*' means all). "
        f"Written to $VTP_HOME/extracts/{ENTITLEMENTS}.hyper.",
        automation_condition=dg.AutomationCondition.eager(),
    )
    def _entitlements(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
        if entitlements_path is None:
            context.log.info("VTP_ENTITLEMENTS is not set: the entitlements table is empty.")
        frame, path = write_entitlements(entitlements_path, read_extract(state, USERS),
                                         state.extracts_dir)
        state.share(ENTITLEMENTS, path, context.run.run_id)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(frame),
            "source": str(entitlements_path or "none"),
            "path": dg.MetadataValue.path(str(path)),
            "preview": dg.MetadataValue.md(frame.head(10).to_markdown(index=False)),
        })

    return _entitlements


def entitlements_resolve(entitlements_path: Path | None) -> dg.AssetChecksDefinition:
    """The check that every entitlement in `entitlements_path` names what exists."""

    @dg.asset_check(
        asset=ENTITLEMENTS_ASSET,
        name="entitlements_resolve",
        additional_deps=[mart_asset_key(mart_table(name)) for name in VISMA_MASTER_TABLES],
        blocking=True,
        description="Every entitlement names a company, customer, supplier and department that exist "
        "in Visma, and a Tableau user or group that exists on the site.",
    )
    def _check(state: StateResource) -> dg.AssetCheckResult:
        """Blocking: an entitlement naming what does not exist hides rows from the people meant to
        see them (or, with a misspelt principal, shows nobody), so Tableau keeps the last good one."""
        rules = load_entitlements(entitlements_path) if entitlements_path else []
        frames = {name: read_extract(state, name) for name in VISMA_MASTER_TABLES}
        missing = [name for name, frame in frames.items() if frame is None]
        if missing:
            return dg.AssetCheckResult(passed=False, description=f"not built yet: {', '.join(missing)}")
        users, memberships = read_extract(state, USERS), read_extract(state, MEMBERSHIPS)
        checks_tableau = users is not None and memberships is not None
        known_users, known_groups = tableau_principals(users, memberships) if checks_tableau else (None, None)
        problems = entitlement_problems(
            rules, **vars(known_visma_values(frames["customers"], frames["suppliers"], frames["dimensions"])),
            users=known_users, groups=known_groups,
        )
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems[:20]) or "every entitlement resolves",
            metadata={
                "problems": len(problems),
                "tableau_principals_checked": checks_tableau,
            },
        )

    return _check


def tableau_entitlements(pool: str) -> dg.AssetsDefinition:
    """The entitlements data source, published in the Tableau `pool`."""
    return build_tableau_asset(
        ENTITLEMENTS,
        "Row-level security entitlements; join on USERNAME() or ISMEMBEROF() in a data source filter.",
        ENTITLEMENTS_ASSET, lambda db: PublishTarget(ENTITLEMENTS, ENTITLEMENTS_KEY), pool,
    )
