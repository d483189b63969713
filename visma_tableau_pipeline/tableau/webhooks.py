"""Tableau webhook events about the data sources this project publishes, and what each one means.

`vtp webhooks serve` stores Tableau's deliveries in the inbox as received; the Tableau webhook
sensor reads them back with `parse_event` and acts as `response_to` says. Tableau's payload is
`{resource, event_type, resource_name, site_luid, resource_luid, created_at}`: it names the data
source by its LUID (which the state store remembers for every data source it published) and
carries no error text, so what Tableau said is the event, the data source and the time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

REFRESH_EVENTS = ("DatasourceRefreshSucceeded", "DatasourceRefreshFailed")


@dataclass(frozen=True)
class TableauEvent:
    """One Tableau webhook delivery about a data source."""

    event_type: str
    resource_name: str
    resource_luid: str
    site_luid: str | None
    created_at: str | None

    @property
    def message(self) -> str:
        """Tableau's notification in words, for a check's description or an observation."""
        return (f"Tableau reported {self.event_type} for data source '{self.resource_name}' "
                f"({self.resource_luid}) at {self.created_at or 'an unknown time'}")

    def as_metadata(self) -> dict[str, str]:
        return {"tableau_event": self.event_type, "tableau_message": self.message,
                "datasource_id": self.resource_luid, "site_luid": self.site_luid or "",
                "created_at": self.created_at or ""}


@dataclass(frozen=True)
class Response:
    """What an event asks of the pipeline."""

    refresh_passed: bool | None  # a refresh outcome to report on the data source, if it is one
    republish: bool  # the data source is gone from Tableau: publish it again


def parse_event(raw_body: str) -> TableauEvent | None:
    """The data source event in a stored body; None for a workbook, flow or unreadable body."""
    try:
        payload = json.loads(raw_body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    fields = {name: payload.get(name) for name in
              ("resource", "event_type", "resource_name", "resource_luid", "site_luid", "created_at")}
    if not all(isinstance(value, str) for value in fields.values() if value is not None):
        return None
    event_type, luid = fields["event_type"], fields["resource_luid"]
    if not (event_type and luid and event_type.startswith("Datasource")):
        return None
    return TableauEvent(event_type, fields["resource_name"] or "", luid, fields["site_luid"], fields["created_at"])


def response_to(event: TableauEvent) -> Response:
    """A refresh outcome is reported; a deleted data source is published again (the publish code
    republishes in full when the data source it remembers is gone). Everything else is only noted."""
    return Response(
        refresh_passed={"DatasourceRefreshSucceeded": True, "DatasourceRefreshFailed": False}.get(event.event_type),
        republish=event.event_type == "DatasourceDeleted",
    )
