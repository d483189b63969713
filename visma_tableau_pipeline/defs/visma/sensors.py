"""Sensors that launch runs for what changed in Visma: polling (the truth) and webhooks (hints).

What each change needs read is decided in `visma/reads_needed.py`; this module turns those reads
into Dagster runs and keeps the sensors' cursors.

Both ask the same question through `probe_changes` and request runs only for the partitions that
changed (every month of an entity when more changed than a probe reads). Run keys carry the newest
`lastModifiedDateTime` seen, so a change launches one run however many ticks (or duplicate
webhooks) report it.

A deletion changes no lastModifiedDateTime, so a probe never sees it. A webhook that announces one
launches a reconciling (full) read of the window the state store holds the record in, which marks
it deleted once Visma confirms it is gone (`visma/sync.py`): the record leaves Tableau within
minutes instead of at the nightly reconciliation.
"""

import json
import logging
from collections.abc import Iterator
from datetime import date

import dagster as dg

from visma_tableau_pipeline.defs.resources import StateResource, VismaResource
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.defs.visma.jobs import (
    entity_run_config,
    master_data_job,
    month_range_tags,
    period_entities_job,
)
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.state import Notification, key_string, mark_processed, newest_watermark, pending
from visma_tableau_pipeline.state.record_store import periods_of
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Delta, Entity
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.change_probe import EntityChanges, probe_changes
from visma_tableau_pipeline.visma.periods import FinancialPeriod
from visma_tableau_pipeline.visma.plan import stored_periods
from visma_tableau_pipeline.visma.reads_needed import ReadNeeded, reads_for_changes, reads_for_deletion
from visma_tableau_pipeline.visma.webhooks import announces_deletion, notified_keys

POLL_SECONDS = 300


def run_request(read: ReadNeeded) -> dg.RunRequest:
    """The run that does a read: a company's master data, one month, or a range of months."""
    key = entity_asset_key(read.entity)
    config = entity_run_config([key], full=True) if read.full else None
    if not read.entity.by_period:
        return dg.RunRequest(run_key=read.key, job_name=master_data_job.name, partition_key=read.company_id,
                             asset_selection=[key], run_config=config)
    if read.months is not None:
        return dg.RunRequest(run_key=read.key, job_name=period_entities_job.name, asset_selection=[key],
                             tags=month_range_tags(read.company_id, read.months), run_config=config)
    return dg.RunRequest(
        run_key=read.key, job_name=period_entities_job.name, asset_selection=[key], run_config=config,
        partition_key=dg.MultiPartitionKey({"company": read.company_id, "month": str(read.month)}),
    )


def runs_for_changes(
    company_id: str,
    entity: Entity,
    changes: EntityChanges,
    periods: list[FinancialPeriod],
    first_month: date,
    today: date,
) -> list[dg.RunRequest]:
    """The runs of `reads_for_changes`: every change `changes` stands for, read once."""
    return [run_request(read) for read in reads_for_changes(company_id, entity, changes, periods, first_month, today)]


def runs_for_deletion(
    company_id: str,
    entity: Entity,
    stored: dict[str, str | None],
    notification_id: str,
    periods: list[FinancialPeriod],
    first_month: date,
    today: date,
) -> list[dg.RunRequest]:
    """The runs of `reads_for_deletion`: reconciling reads of the windows that hold the record."""
    return [
        run_request(read)
        for read in reads_for_deletion(company_id, entity, stored, notification_id, periods, first_month, today)
    ]


def deletion_requests(
    state: StateResource, notes: list[Notification], log: logging.Logger
) -> Iterator[dg.RunRequest]:
    """Runs for the notifications that announce a deletion of a record the store holds."""
    first_month, today = get_settings().first_month, date.today()
    for note in notes:
        entity = _entity_of(note)
        if not (note.company_id and entity and note.record_key and announces_deletion(note.raw_body)):
            continue
        keys = [key_string(parts) for parts in notified_keys(note.record_key, len(entity.key))]
        with state.db().connect() as conn:
            stored = periods_of(conn, note.company_id, entity.name, keys)
        log.info(
            f"{note.company_id} {entity.name} {note.record_key}: deleted in Visma; "
            + (f"reconciling periods {sorted(p or 'all' for p in stored.values())}" if stored
               else "not in the store, nothing to reconcile")
        )
        yield from runs_for_deletion(note.company_id, entity, stored, note.notification_id,
                                     stored_periods(state.db(), note.company_id), first_month, today)


def change_requests(
    visma: VismaResource,
    state: StateResource,
    cursor: dict[str, dict[str, str]],
    wanted: dict[str, list[Entity]],
    log: logging.Logger,
) -> Iterator[dg.RunRequest]:
    """Run requests for what changed since the cursor; updates `cursor` in place.

    The cursor of an entity moves to the newest change only together with the runs that cover
    every change up to it (`runs_for_changes`), so nothing it passes is left unrun.
    """
    first_month, today = get_settings().first_month, date.today()
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
                requests = runs_for_changes(company_id, entity, changes, periods, first_month, today)
                if requests:
                    log.info(
                        f"{company_id} {entity.name}: {changes.records} changed records in periods "
                        f"{sorted(changes.periods) or '-'}"
                        + (" and more past the probe's page limit: every month" if changes.truncated else "")
                    )
                yield from requests
                if changes.newest:
                    seen[entity.name] = changes.newest


@dg.sensor(
    jobs=[master_data_job, period_entities_job],
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
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
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns Visma webhook notifications from the inbox into targeted change checks, and "
    "a deletion into a reconciling read of the record's window.",
)
def visma_webhook_sensor(
    context: dg.SensorEvaluationContext, visma: VismaResource, state: StateResource
) -> dg.SensorResult:
    with state.db().connect() as conn:
        notifications = pending(conn, limit=500, source="visma")
    if not notifications:
        return dg.SensorResult(skip_reason="no webhook notifications waiting")
    wanted: dict[str, list[Entity]] = {}
    for note in notifications:
        entity = _entity_of(note)
        if note.company_id and entity and entity not in wanted.setdefault(note.company_id, []):
            wanted[note.company_id].append(entity)
    cursor = json.loads(context.cursor or "{}")
    requests = list(change_requests(visma, state, cursor, wanted, context.log))
    requests += deletion_requests(state, notifications, context.log)
    with state.db().transaction() as conn:
        mark_processed(conn, [n.id for n in notifications], run_key=f"tick-{date.today():%Y%m%d}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


_BY_WEBHOOK_RESOURCE = {e.webhook_resource: e for e in ENTITIES if e.webhook_resource}


def _entity_of(note: Notification) -> Entity | None:
    """The catalogue entity a notification concerns, by Visma's resource name or ours."""
    try:
        return _BY_WEBHOOK_RESOURCE.get(note.entity or "") or catalogue_entity(note.entity or "")
    except KeyError:
        return None
