"""Sensors that launch runs for what changed in Visma: polling (the truth) and webhooks (hints).

What each change needs read is decided in `visma/reads_needed.py`; this module turns those reads
into Dagster runs and keeps the sensors' cursors.

Both ask the same question through `probe_changes` and request, per tick, at most one run per
company and job: master data, and the period entities over the range of months that changed
(every month of an entity when more changed than a probe reads). Run keys carry the newest
`lastModifiedDateTime` seen of each entity, so a change launches one run however many ticks (or
duplicate webhooks) report it.

No double work between the two sensors: each run of a change read carries tags naming its
company and, per entity, the newest change version it covers (`read_tags`). Before probing, a
sensor reads those tags from the instance's recent runs of the company (`requested_versions`) and
probes only after the newest version requested by either sensor. The instance, not the state
database, holds this shared cursor because a run exists there only once the daemon has created
it: a tick that fails after deciding leaves nothing behind that would hide a change from the
other sensor. A run that later fails does not make the other sensor read again (as a sensor's
own cursor never did); the nightly run reads everything. Two ticks evaluated at the same moment
can still both ask for a read; reads are idempotent (promise 2), so that costs time, not data.

A deletion changes no lastModifiedDateTime, so a probe never sees it. A webhook that announces one
launches a reconciling (full) read of the window the state store holds the record in, which marks
it deleted once Visma confirms it is gone (`visma/sync.py`): the record leaves Tableau within
minutes instead of at the nightly reconciliation.
"""

import json
import logging
from collections.abc import Callable, Iterator, Sequence
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
from visma_tableau_pipeline.state import Notification, key_string, mark_processed, newest_watermark, pending
from visma_tableau_pipeline.state.record_store import periods_of
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Delta, Entity
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.change_probe import probe_changes
from visma_tableau_pipeline.visma.periods import FinancialPeriod
from visma_tableau_pipeline.visma.plan import stored_periods
from visma_tableau_pipeline.visma.reads_needed import (
    ReadNeeded,
    merge_reads,
    newest_versions,
    probe_from,
    reads_for_changes,
    reads_for_deletion,
)
from visma_tableau_pipeline.visma.webhooks import announces_deletion, notified_keys

TAG_READ_COMPANY = "vtp/read_company"
TAG_READ_VERSION = "vtp/read_version."  # + entity name: the newest change version the run covers
# Runs of one company looked at for versions already requested: far more than two sensors make
# while a run waits in the queue, and versions only grow, so the newest runs are enough.
RECENT_RUNS = 100


def read_tags(read: ReadNeeded) -> dict[str, str]:
    """The tags that tell the other sensor what this read covers."""
    return {TAG_READ_COMPANY: read.company_id,
            **{f"{TAG_READ_VERSION}{name}": version for name, version in read.versions}}


def run_request(read: ReadNeeded) -> dg.RunRequest:
    """The run that does a read: a company's master data, one month, or a range of months."""
    keys = [entity_asset_key(e) for e in read.entities]
    config = entity_run_config(keys, full=True) if read.full else None
    tags = read_tags(read)
    if read.months is None:
        return dg.RunRequest(run_key=read.key, job_name=master_data_job.name, partition_key=read.company_id,
                             asset_selection=keys, run_config=config, tags=tags)
    first, last = read.months
    if first != last:
        return dg.RunRequest(run_key=read.key, job_name=period_entities_job.name, asset_selection=keys,
                             tags={**tags, **month_range_tags(read.company_id, read.months)}, run_config=config)
    return dg.RunRequest(
        run_key=read.key, job_name=period_entities_job.name, asset_selection=keys, run_config=config, tags=tags,
        partition_key=dg.MultiPartitionKey({"company": read.company_id, "month": f"{first:%Y-%m-01}"}),
    )


def requested_versions(instance: dg.DagsterInstance, company_id: str) -> dict[str, str]:
    """The newest change version per entity that a run of the company already covers, from the
    tags of its recent runs (either sensor's, queued, running or ended)."""
    runs = instance.get_runs(dg.RunsFilter(tags={TAG_READ_COMPANY: company_id}), limit=RECENT_RUNS)
    return newest_versions(
        (name.removeprefix(TAG_READ_VERSION), version)
        for run in runs for name, version in run.tags.items() if name.startswith(TAG_READ_VERSION)
    )


def deletion_requests(
    state: StateResource, notes: list[Notification], first_month: date, log: logging.Logger
) -> Iterator[dg.RunRequest]:
    """Runs for the notifications that announce a deletion of a record the store holds."""
    today = date.today()
    periods: dict[str, list[FinancialPeriod]] = {}  # by company: read once per tick, not per note
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
        if note.company_id not in periods:
            periods[note.company_id] = stored_periods(state.db(), note.company_id)
        reads = reads_for_deletion(note.company_id, entity, stored, note.notification_id,
                                   periods[note.company_id], first_month, today)
        yield from (run_request(read) for read in reads)


def change_requests(
    visma: VismaResource,
    state: StateResource,
    cursor: dict[str, dict[str, str]],
    wanted: dict[str, list[Entity]],
    requested: Callable[[str], dict[str, str]],
    first_month: date,
    log: logging.Logger,
) -> Iterator[dg.RunRequest]:
    """One run per company and job for what changed since the cursor or since what was already
    requested (`requested(company_id)`); updates `cursor` in place.

    The cursor of an entity moves to the newest change only together with the run that covers
    every change up to it (`reads_for_changes`), so nothing it passes is left unrun.
    """
    today = date.today()
    for company_id, entities in wanted.items():
        seen = cursor.setdefault(company_id, {})
        periods = stored_periods(state.db(), company_id)
        already = requested(company_id)
        reads: list[ReadNeeded] = []
        with visma.client(company_id) as client:
            for entity in entities:
                since = probe_from(seen.get(entity.name), already.get(entity.name))
                if since is None:
                    with state.db().connect() as conn:
                        since = newest_watermark(conn, company_id, entity.name)
                if since is None:
                    continue  # never synced: the nightly run or a backfill reads it first
                changes = probe_changes(client, entity, since)
                found = reads_for_changes(company_id, entity, changes, periods, first_month, today)
                if found:
                    log.info(
                        f"{company_id} {entity.name}: {changes.records} changed records in periods "
                        f"{sorted(changes.periods) or '-'}"
                        + (" and more past the probe's page limit: every month" if changes.truncated else "")
                    )
                reads += found
                if changes.newest:
                    seen[entity.name] = changes.newest
        yield from (run_request(read) for read in merge_reads(reads))


def visma_sensors(company_ids: Sequence[str], first_month: date, polling_seconds: int,
                  webhook_seconds: int) -> list[dg.SensorDefinition]:
    """The polling sensor over these companies, and the webhook sensor; both ask for months since
    `first_month`, every `polling_seconds` and `webhook_seconds`."""

    @dg.sensor(
        jobs=[master_data_job, period_entities_job],
        minimum_interval_seconds=polling_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Polls Visma's lastModifiedDateTime every VTP_POLLING_SENSOR_SECONDS (5 minutes by "
        "default) and runs what changed and no run covers yet.",
    )
    def visma_polling_sensor(
        context: dg.SensorEvaluationContext, visma: VismaResource, state: StateResource
    ) -> dg.SensorResult:
        cursor = json.loads(context.cursor or "{}")
        entities = [e for e in ENTITIES if e.delta is not Delta.NONE]
        wanted = {company_id: entities for company_id in company_ids}
        requests = list(change_requests(visma, state, cursor, wanted, _requested_in(context), first_month,
                                        context.log))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    @dg.sensor(
        jobs=[master_data_job, period_entities_job],
        minimum_interval_seconds=webhook_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every VTP_WEBHOOK_SENSOR_SECONDS (15 by default), turns Visma webhook notifications "
        "from the inbox into targeted change checks, and a deletion into a reconciling read of the "
        "record's window.",
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
        requests = list(change_requests(visma, state, cursor, wanted, _requested_in(context), first_month,
                                        context.log))
        requests += deletion_requests(state, notifications, first_month, context.log)
        with state.db().transaction() as conn:
            mark_processed(conn, [n.id for n in notifications], run_key=f"tick-{date.today():%Y%m%d}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return [visma_polling_sensor, visma_webhook_sensor]


def _requested_in(context: dg.SensorEvaluationContext) -> Callable[[str], dict[str, str]]:
    """`requested_versions` of the sensor's instance, asked per company."""
    return lambda company_id: requested_versions(context.instance, company_id)


_BY_WEBHOOK_RESOURCE = {e.webhook_resource: e for e in ENTITIES if e.webhook_resource}


def _entity_of(note: Notification) -> Entity | None:
    """The catalogue entity a notification concerns, by Visma's resource name or ours."""
    try:
        return _BY_WEBHOOK_RESOURCE.get(note.entity or "") or catalogue_entity(note.entity or "")
    except KeyError:
        return None
