"""Sensors that launch runs for what changed in Visma: polling (the truth) and webhooks (hints).

Both ask the same question through `probe_changes` and request runs only for the partitions that
changed. Run keys carry the newest `lastModifiedDateTime` seen, so a change launches one run
however many ticks (or duplicate webhooks) report it.
"""

import json
from collections.abc import Iterator
from datetime import date

import dagster as dg

from visma_tableau_pipeline.defs.resources import StateResource, VismaResource
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.defs.visma.jobs import master_data_job, period_entities_job
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.state import mark_processed, newest_watermark, pending
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Delta, Entity, entity as catalogue_entity
from visma_tableau_pipeline.visma.changes import probe_changes
from visma_tableau_pipeline.visma.periods import FinancialPeriod
from visma_tableau_pipeline.visma.plan import stored_periods

POLL_SECONDS = 300


def _months_of(periods: list[FinancialPeriod], period_ids: set[str]) -> list[str]:
    """Month partition keys (first days) of the given financial periods."""
    first = get_settings().first_month
    return sorted(
        f"{max(p.start, first):%Y-%m-01}" for p in periods if p.period_id in period_ids and p.end >= first
    )


def change_requests(
    visma: VismaResource,
    state: StateResource,
    cursor: dict[str, dict[str, str]],
    wanted: dict[str, list[Entity]],
    log: dg.DagsterLogManager,
) -> Iterator[dg.RunRequest]:
    """Run requests for what changed since the cursor; updates `cursor` in place."""
    for company_id, entities in wanted.items():
        seen = cursor.setdefault(company_id, {})
        periods = stored_periods(state.db(), company_id)
        with visma.client(company_id) as client:
            for entity in entities:
                since = seen.get(entity.name)
                if since is None:
                    with state.db().connect() as conn:
                        since = newest_watermark(conn, company_id, entity.name)
                if since is None:
                    continue  # never synced: the nightly run or a backfill reads it first
                changes = probe_changes(client, entity, since)
                if changes.newest:
                    seen[entity.name] = changes.newest
                if not changes.records and not changes.truncated:
                    continue
                log.info(f"{company_id} {entity.name}: {changes.records} changed records "
                         f"in periods {sorted(changes.periods) or '-'}")
                key = entity_asset_key(entity)
                version = changes.newest or "unknown"
                if not entity.by_period:
                    yield dg.RunRequest(
                        run_key=f"{company_id}:{entity.name}:{version}", job_name=master_data_job.name,
                        partition_key=company_id, asset_selection=[key],
                    )
                    continue
                for month in _months_of(periods, changes.periods):
                    yield dg.RunRequest(
                        run_key=f"{company_id}:{entity.name}:{month}:{version}",
                        job_name=period_entities_job.name,
                        partition_key=dg.MultiPartitionKey({"company": company_id, "month": month}),
                        asset_selection=[key],
                    )


@dg.sensor(
    jobs=[master_data_job, period_entities_job],
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls Visma's lastModifiedDateTime every 5 minutes and runs what changed.",
)
def visma_polling_sensor(
    context: dg.SensorEvaluationContext, visma: VismaResource, state: StateResource
) -> dg.SensorResult:
    cursor = json.loads(context.cursor or "{}")
    entities = [e for e in ENTITIES if e.delta is not Delta.NONE]
    wanted = {c.company_id: entities for c in get_settings().companies}
    requests = list(change_requests(visma, state, cursor, wanted, context.log))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


@dg.sensor(
    jobs=[master_data_job, period_entities_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Turns Visma webhook notifications from the inbox into targeted change checks.",
)
def visma_webhook_sensor(
    context: dg.SensorEvaluationContext, visma: VismaResource, state: StateResource
) -> dg.SensorResult:
    with state.db().connect() as conn:
        notifications = pending(conn, limit=500, source="visma")
    if not notifications:
        return dg.SensorResult(skip_reason="no webhook notifications waiting")
    by_webhook_name = {e.webhook_resource: e for e in ENTITIES if e.webhook_resource}
    wanted: dict[str, list[Entity]] = {}
    for note in notifications:
        entity = by_webhook_name.get(note.entity or "") or _entity_named(note.entity)
        if note.company_id and entity and entity not in wanted.setdefault(note.company_id, []):
            wanted[note.company_id].append(entity)
    cursor = json.loads(context.cursor or "{}")
    requests = list(change_requests(visma, state, cursor, wanted, context.log))
    with state.db().transaction() as conn:
        mark_processed(conn, [n.id for n in notifications], run_key=f"tick-{date.today():%Y%m%d}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


def _entity_named(name: str | None) -> Entity | None:
    try:
        return catalogue_entity(name or "")
    except KeyError:
        return None
