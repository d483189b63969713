"""Tableau's webhooks on the data source assets: the sensor, and the refresh check it reports.

`vtp webhooks serve` stores what Tableau sends in the inbox. Every few seconds the sensor turns
each event about a data source this project published into an observation on its asset; a
refresh outcome also into an evaluation of the `tableau_refresh` check (a failed refresh shows as
a failed check, with Tableau's message); a deleted data source into a run of its asset, which
publishes it again in full. Events about anything else (other data sources, workbooks) are marked
handled and left alone.
"""

from __future__ import annotations

import dagster as dg

from visma_tableau_pipeline.defs.resources import StateResource
from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
from visma_tableau_pipeline.delivery.extracts import ENTITLEMENTS
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.state import mark_processed, pending
from visma_tableau_pipeline.state.inbox import latest
from visma_tableau_pipeline.state.publications import data_source_named_by_id, get_publication
from visma_tableau_pipeline.tableau.webhooks import REFRESH_EVENTS, TableauEvent, parse_event, response_to

DATA_SOURCES = [*(table.name for table in MART_TABLES), ENTITLEMENTS]
REFRESH_CHECK = "tableau_refresh"
POLL_SECONDS = 30
SENSOR_NAME = "tableau_webhook_sensor"

AssetEvent = dg.AssetObservation | dg.AssetCheckEvaluation


def _refresh_verdict(event: TableauEvent | None) -> tuple[bool, str, dict[str, str]]:
    """(passed, description, metadata) of the latest refresh Tableau reported."""
    if event is None:
        return True, "Tableau has reported no extract refresh of this data source", {}
    return response_to(event).refresh_passed is True, event.message, event.as_metadata()


def asset_events_and_runs(
    key: dg.AssetKey, event: TableauEvent, notification_id: str
) -> tuple[list[AssetEvent], list[dg.RunRequest]]:
    """What one Tableau event about the data source of asset `key` becomes.

    The republish run is keyed by the notification (the inbox's id of the delivery): Tableau's
    retries of one delivery are one notification, so a deletion launches one run.
    """
    response = response_to(event)
    events: list[AssetEvent] = [dg.AssetObservation(key, description=event.message, metadata=event.as_metadata())]
    if response.refresh_passed is not None:
        passed, description, metadata = _refresh_verdict(event)
        events.append(dg.AssetCheckEvaluation(
            asset_key=key, check_name=REFRESH_CHECK, passed=passed, description=description,
            metadata=metadata, severity=dg.AssetCheckSeverity.ERROR,
        ))
    runs = [dg.RunRequest(run_key=f"republish:{key.to_user_string()}:{notification_id}", asset_selection=[key])
            ] if response.republish else []
    return events, runs


@dg.sensor(
    name=SENSOR_NAME,
    target=dg.AssetSelection.assets(*(tableau_asset_key(name) for name in DATA_SOURCES)),
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns Tableau webhook notifications from the inbox into observations of the data "
    "source assets, a failed tableau_refresh check for a failed refresh, and a run that publishes "
    "a data source deleted in Tableau again.",
)
def tableau_webhook_sensor(context: dg.SensorEvaluationContext, state: StateResource) -> dg.SensorResult:
    with state.db().connect() as conn:
        notifications = pending(conn, limit=500, source="tableau")
        if not notifications:
            return dg.SensorResult(skip_reason="no Tableau webhook notifications waiting")
        asset_events: list[AssetEvent] = []
        runs: list[dg.RunRequest] = []
        for note in notifications:
            event = parse_event(note.raw_body)
            name = data_source_named_by_id(conn, event.resource_luid) if event else None
            if event is None or name not in DATA_SOURCES:
                continue  # not a data source this project publishes
            context.log.info(event.message)
            events, requests = asset_events_and_runs(tableau_asset_key(name), event, note.notification_id)
            asset_events += events
            runs += requests
    with state.db().transaction() as conn:
        mark_processed(conn, [n.id for n in notifications], run_key=SENSOR_NAME)
    return dg.SensorResult(run_requests=runs, asset_events=asset_events)


def _refresh_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=tableau_asset_key(name), name=REFRESH_CHECK,
        description="Fails when the latest extract refresh Tableau reported (by webhook) failed; "
        "the tableau_webhook_sensor reports each refresh as it arrives.",
    )
    def _check(state: StateResource) -> dg.AssetCheckResult:
        """The same verdict the sensor reported last, read again from the inbox on demand."""
        with state.db().connect() as conn:
            publication = get_publication(conn, name)
            note = (latest(conn, "tableau", publication.datasource_id, REFRESH_EVENTS)
                    if publication and publication.datasource_id else None)
        passed, description, metadata = _refresh_verdict(parse_event(note.raw_body) if note else None)
        return dg.AssetCheckResult(passed=passed, description=description, metadata=metadata)

    return _check


refresh_checks = [_refresh_check(name) for name in DATA_SOURCES]
