"""Master data both ways: Tableau's users and groups read back, and the entitlements table
(row-level security) built from the YAML mapping, checked against Visma and Tableau, published.
"""

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.marts.checks import read_extract
from visma_tableau_pipeline.defs.tableau.assets import build_tableau_asset, tableau_pool
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
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.tableau.directory import read_directory
from visma_tableau_pipeline.tableau.session import TableauSession

USERS, MEMBERSHIPS = "tableau_users", "tableau_group_memberships"
DIRECTORY_KEY = dg.AssetKey(["tableau", "directory"])
ENTITLEMENTS_ASSET = dg.AssetKey(["marts", ENTITLEMENTS])
VISMA_MASTER_TABLES = ("customers", "suppliers", "dimensions")


@dg.asset(
    key=DIRECTORY_KEY,
    group_name="tableau_data_sources",
    kinds={"tableau", "hyper"},
    pool=tableau_pool(),
    description="Tableau's users and group memberships, read back from the site into "
    f"$VTP_HOME/extracts/{USERS}.hyper and {MEMBERSHIPS}.hyper; entitlements are checked "
    "against them.",
)
def tableau_directory(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    settings = get_settings()
    if settings.tableau is None:
        context.log.info("No Tableau settings: there is no Tableau directory to read.")
        return dg.MaterializeResult(metadata={"read": False})
    with TableauSession(settings.tableau) as session:
        users, memberships = read_directory(session)
    write_hyper(users, settings.extracts_dir, USERS)
    write_hyper(memberships, settings.extracts_dir, MEMBERSHIPS)
    return dg.MaterializeResult(metadata={
        "users": len(users),
        "groups": memberships["group_name"].nunique(),
        "preview": dg.MetadataValue.md(users.head(10).to_markdown(index=False)),
    })


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
def entitlements(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    settings = get_settings()
    if settings.entitlements_path is None:
        context.log.info("VTP_ENTITLEMENTS is not set: the entitlements table is empty.")
    frame, path = write_entitlements(settings.entitlements_path, read_extract(USERS), settings.extracts_dir)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "source": str(settings.entitlements_path or "none"),
        "path": dg.MetadataValue.path(str(path)),
        "preview": dg.MetadataValue.md(frame.head(10).to_markdown(index=False)),
    })


@dg.asset_check(
    asset=ENTITLEMENTS_ASSET,
    additional_deps=[mart_asset_key(mart_table(name)) for name in VISMA_MASTER_TABLES],
    blocking=True,
    description="Every entitlement names a company, customer, supplier and department that exist "
    "in Visma, and a Tableau user or group that exists on the site.",
)
def entitlements_resolve() -> dg.AssetCheckResult:
    """Blocking: an entitlement naming what does not exist hides rows from the people meant to
    see them (or, with a misspelt principal, shows nobody), so Tableau keeps the last good one."""
    settings = get_settings()
    rules = load_entitlements(settings.entitlements_path) if settings.entitlements_path else []
    frames = {name: read_extract(name) for name in VISMA_MASTER_TABLES}
    missing = [name for name, frame in frames.items() if frame is None]
    if missing:
        return dg.AssetCheckResult(passed=False, description=f"not built yet: {', '.join(missing)}")
    users, memberships = read_extract(USERS), read_extract(MEMBERSHIPS)
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


tableau_entitlements = build_tableau_asset(
    ENTITLEMENTS,
    "Row-level security entitlements; join on USERNAME() or ISMEMBEROF() in a data source filter.",
    ENTITLEMENTS_ASSET, lambda db: PublishTarget(ENTITLEMENTS, ENTITLEMENTS_KEY),
)
