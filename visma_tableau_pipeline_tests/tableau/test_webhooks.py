"""What a Tableau webhook event means for a data source asset (the real sensor is tested in
defs/test_definitions.py, with the real receiver and the Tableau sandbox)."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from visma_tableau_pipeline.defs.tableau.webhooks import asset_events_and_runs
from visma_tableau_pipeline.tableau.webhooks import parse_event, response_to

KEY = dg.AssetKey(["tableau", "ap_invoices"])


def payload(event_type: str, **overrides: object) -> str:
    return json.dumps({"resource": "DATASOURCE", "event_type": event_type, "resource_name": "ap_invoices",
                       "site_luid": "site-1", "resource_luid": "ds-1", "created_at": "2026-05-01T08:00:00Z",
                       **overrides})


def test_a_failed_refresh_is_a_failed_check_with_tableaus_message_and_runs_nothing():
    events, runs = asset_events_and_runs(KEY, parse_event(payload("DatasourceRefreshFailed")), "n-1")
    [observation, check] = events
    assert isinstance(observation, dg.AssetObservation) and observation.asset_key == KEY
    assert (check.check_name, check.passed) == ("tableau_refresh", False)
    assert check.description == ("Tableau reported DatasourceRefreshFailed for data source 'ap_invoices' (ds-1) "
                                 "at 2026-05-01T08:00:00Z")
    assert runs == []


def test_a_succeeded_refresh_passes_the_check():
    [_, check], _ = asset_events_and_runs(KEY, parse_event(payload("DatasourceRefreshSucceeded")), "n-2")
    assert check.passed


def test_a_deleted_data_source_runs_its_asset_once_per_notification():
    [_observation], [run] = asset_events_and_runs(KEY, parse_event(payload("DatasourceDeleted")), "n-3")
    assert (run.asset_selection, run.run_key) == ([KEY], "republish:tableau/ap_invoices:n-3")


def test_an_update_is_only_observed():
    event = parse_event(payload("DatasourceUpdated"))
    assert response_to(event).refresh_passed is None and not response_to(event).republish
    events, runs = asset_events_and_runs(KEY, event, "n-4")
    assert [type(e) for e in events] == [dg.AssetObservation] and runs == []


@pytest.mark.parametrize("body", [
    payload("WorkbookRefreshFailed", resource="WORKBOOK"),
    payload("DatasourceDeleted", resource_luid=None),
    payload("DatasourceDeleted", resource_luid={"id": 1}),
    "[]", "not json",
])
def test_events_about_no_data_source_are_not_events(body):
    assert parse_event(body) is None
