"""One asset per Tableau data source: the dashboard table's extract, delivered and on the ledger.

All Tableau work runs in one concurrency pool per PAT, `tableau-<pat name>` (limit 1: the
instance's default): a second sign-in with the same PAT would end the first session.
"""

import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.defs.resources import StateResource, TableauResource
from visma_tableau_pipeline.delivery.extracts import publish_target
from visma_tableau_pipeline.delivery.publish import PublishTarget, publish_extract
from visma_tableau_pipeline.marts.hyper import hyper_path
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable
from visma_tableau_pipeline.settings import TableauSettings
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.tableau.datasources import ensure_project
from visma_tableau_pipeline.tableau.pat import pat_status
from visma_tableau_pipeline.tableau.session import TableauSession

GROUP = "tableau_data_sources"
PAT_WARN_DAYS = 5
# A failed blocking check stops the publish in its own run; this keeps a later automation tick
# from publishing the same extract anyway. Unlike the tables (`FOLLOW_ENTITIES`), a data source
# keeps eager()'s wait while its dependency is in progress: that is only its own table, built one
# run at a time, so the wait is one build (never a stream of entity reads) and publishes the newer
# extract once its checks have passed.
PUBLISH_CONDITION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


def tableau_pool(tableau: TableauSettings | None) -> str:
    """One concurrency pool per PAT (limit 1): a second sign-in with it ends the first session."""
    credential = (tableau.pat_name or tableau.connected_app_client_id) if tableau else None
    return f"tableau-{re.sub(r'[^A-Za-z0-9_-]', '_', credential)}" if credential else "tableau"


class PublishConfig(dg.Config):
    """Run configuration of a data source."""

    full: bool = False  # Overwrite the whole data source instead of sending the changes


def tableau_asset_key(table: MartTable | str) -> dg.AssetKey:
    return dg.AssetKey(["tableau", table if isinstance(table, str) else table.name])


def build_tableau_asset(
    name: str, description: str, upstream: dg.AssetKey,
    target: Callable[[StateDB], PublishTarget], pool: str,
) -> dg.AssetsDefinition:
    """The asset delivering data source `name` in `pool`; `target` says how, given the state database."""

    @dg.asset(
        key=tableau_asset_key(name),
        group_name=GROUP,
        kinds={"tableau", "hyper"},
        description=f"Tableau data source '{name}': {description} Published from "
        f"$VTP_HOME/extracts/{name}.hyper; later runs send only changed rows "
        "(upsert and delete by key; for tables built record by record, only the rows of "
        "records written since the last delivery are rebuilt and compared) and every delivered "
        "row version goes on the audit ledger.",
        deps=[upstream],
        pool=pool,
        automation_condition=PUBLISH_CONDITION,
        output_required=False,  # nothing is materialized when no Tableau is configured
    )
    def _tableau_asset(
        context: dg.AssetExecutionContext, config: PublishConfig, state: StateResource, tableau: TableauResource,
    ) -> Iterator[dg.MaterializeResult]:
        """Without Tableau settings the data source is skipped, not materialized: a green
        materialization would say the data source is current in Tableau when nothing was sent."""
        if not tableau.configured:
            context.log.info(
                f"{name}: skipped, no Tableau is configured (TABLEAU_SERVER_URL, or tableau: in "
                f"VTP_CONFIG); the extract {hyper_path(state.extracts_dir, name)} is written, "
                "nothing is published."
            )
            return
        with TableauSession(tableau.settings(), pat_usage=tableau.pat_usage()) as session, \
                tempfile.TemporaryDirectory() as workdir:
            project_id = ensure_project(session, tableau.project)
            outcome = publish_extract(
                session, state.db(), project_id, target(state.db()),
                hyper_path(state.extracts_dir, name), Path(workdir),
                run_id=context.run.run_id, full=config.full, store=state.extract_store(),
            )
        yield dg.MaterializeResult(
            metadata={
                "mode": outcome.mode,
                "reason": outcome.reason,
                "datasource_id": outcome.datasource_id,
                "bytes_sent": outcome.bytes_sent,
                "rows_upserted": outcome.rows_upserted,
                "rows_deleted": outcome.rows_deleted,
                "request_ids": ", ".join(outcome.request_ids),
                # only when the run put rows on the ledger: `vtp audit run` finds nothing else
                **({"ledger": dg.MetadataValue.md(f"`vtp audit run {context.run.run_id}`")} if outcome.rows else {}),
            }
        )

    return _tableau_asset


def _mart_target(table: MartTable, company_ids: Sequence[str]) -> Callable[[StateDB], PublishTarget]:
    def target(db: StateDB) -> PublishTarget:
        return publish_target(db, list(company_ids), table, date.today())

    return target


def tableau_assets(company_ids: Sequence[str], pool: str) -> list[dg.AssetsDefinition]:
    """One data source per dashboard table, holding these companies, published in `pool`."""
    return [
        build_tableau_asset(table.name, table.description, mart_asset_key(table), _mart_target(table, company_ids),
                            pool)
        for table in MART_TABLES
    ]


def _pat_result(tableau: TableauResource) -> dg.AssetCheckResult:
    if not tableau.configured or not tableau.pat_name:
        return dg.AssetCheckResult(passed=True, description="no Tableau PAT is configured")
    status = pat_status(
        tableau.pat_name, tableau.deployment, now=datetime.now(UTC),
        last_used=tableau.pat_usage().last_used(tableau.pat_name),
        created_on=tableau.pat_created, lifetime_days=tableau.pat_lifetime_days, warn_days=PAT_WARN_DAYS,
    )
    return dg.AssetCheckResult(
        passed=status.state in ("ok", "unknown"),
        severity=dg.AssetCheckSeverity.ERROR if status.state == "expired" else dg.AssetCheckSeverity.WARN,
        description=status.message,
        metadata={"status": status.state, "days_left": status.days_left if status.days_left is not None else -1},
    )


def _pat_expiry_check(table: MartTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=tableau_asset_key(table), name="pat_expiry",
        description=f"Warns {PAT_WARN_DAYS} days before the Tableau PAT expires (15 days unused on "
        "Cloud, its configured lifetime on Server).",
    )
    def _check(tableau: TableauResource) -> dg.AssetCheckResult:
        """Not blocking: an expiring PAT is a warning about the next publish, not about the
        numbers of this one (and nothing is downstream of a data source)."""
        return _pat_result(tableau)

    return _check


pat_expiry_checks = [_pat_expiry_check(table) for table in MART_TABLES]
