"""Tableau webhooks: the registry behind the REST endpoints, and delivery to destination URLs.

Deliveries happen on one background thread, in event order, with the payload Tableau sends:
`{resource, event_type, resource_name, site_luid, resource_luid, created_at}`. A delivery that
fails (no answer or a non-2xx status) is retried three times, as Tableau does. Tableau signs
nothing; receivers authenticate by a secret in the URL.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from visma_tableau_pipeline.sandbox.tableau import errors
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock, format_time, new_luid

log = logging.getLogger(__name__)

EVENTS = (
    "DatasourceRefreshStarted",
    "DatasourceRefreshSucceeded",
    "DatasourceRefreshFailed",
    "DatasourceCreated",
    "DatasourceUpdated",
    "DatasourceDeleted",
    "WorkbookRefreshStarted",
    "WorkbookRefreshSucceeded",
    "WorkbookRefreshFailed",
    "WorkbookCreated",
    "WorkbookUpdated",
    "WorkbookDeleted",
    "ViewDeleted",
    "FlowCompleted",
)
_SOURCE_PREFIX = "webhook-source-event-"
RETRIES = 3


def event_name(raw: str) -> str:
    """`webhook-source-event-datasource-created`, `datasource-created` or `DatasourceCreated` →
    `DatasourceCreated`; 400 for an event Tableau does not have."""
    text = raw.removeprefix(_SOURCE_PREFIX).removeprefix("webhook-event-")
    pascal = "".join(part[:1].upper() + part[1:] for part in text.split("-")) if "-" in text else text
    if pascal not in EVENTS:
        raise errors.bad_request(f"'{raw}' is not a webhook event; known: {', '.join(EVENTS)}.", "400080")
    return pascal


def source_tag(event: str) -> str:
    """`DatasourceCreated` → `webhook-source-event-datasource-created`, the XML element name."""
    return _SOURCE_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", event).lower()


@dataclass
class Webhook:
    name: str
    event: str
    url: str
    owner_id: str
    created_at: float
    id: str = field(default_factory=new_luid)


@dataclass(frozen=True)
class Delivery:
    """One finished delivery: the payload sent and the last status (None: never answered)."""

    webhook_id: str
    url: str
    payload: dict[str, str]
    status_code: int | None
    attempts: int


class WebhookRegistry:
    """Webhooks of the site, and their firing. `fire` returns at once; delivery is background."""

    def __init__(self, site_luid: str, clock: Clock, retry_delay_s: float = 1.0) -> None:
        self._site_luid = site_luid
        self._clock = clock
        self._retry_delay_s = retry_delay_s
        self.webhooks: dict[str, Webhook] = {}
        self._deliveries: list[Delivery] = []
        self._deliveries_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tableau-sandbox-webhooks")
        self._client = httpx.Client(timeout=5.0)

    def create(self, name: str, event: str, url: str, owner_id: str) -> Webhook:
        if any(w.name == name for w in self.webhooks.values()):
            raise errors.conflict(errors.WEBHOOK_EXISTS, f"A webhook named '{name}' already exists.")
        if not url.startswith(("http://", "https://")):
            raise errors.bad_request(f"The webhook destination '{url}' is not an http(s) URL.", "400080")
        webhook = Webhook(name, event_name(event), url, owner_id, self._clock())
        self.webhooks[webhook.id] = webhook
        return webhook

    def get(self, webhook_id: str) -> Webhook:
        try:
            return self.webhooks[webhook_id]
        except KeyError:
            raise errors.not_found(
                errors.WEBHOOK_NOT_FOUND, f"Webhook '{webhook_id}' could not be found."
            ) from None

    def delete(self, webhook_id: str) -> None:
        del self.webhooks[self.get(webhook_id).id]

    def fire(self, event: str, resource_name: str, resource_luid: str) -> None:
        payload = {
            "resource": "DATASOURCE" if event.startswith("Datasource") else "WORKBOOK",
            "event_type": event,
            "resource_name": resource_name,
            "site_luid": self._site_luid,
            "resource_luid": resource_luid,
            "created_at": format_time(self._clock()),
        }
        for webhook in self.webhooks.values():
            if webhook.event == event:
                self._executor.submit(self._deliver, webhook.id, webhook.url, payload)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._deliveries_lock:
            return list(self._deliveries)

    def wait_for_deliveries(self) -> None:
        """Block until every delivery fired so far has finished (tests, orderly shutdown)."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()

    def _deliver(self, webhook_id: str, url: str, payload: dict[str, str]) -> None:
        status: int | None = None
        attempt = 0
        for attempt in range(1, RETRIES + 2):
            try:
                status = self._client.post(url, json=payload).status_code
            except httpx.HTTPError as exc:
                status = None
                log.warning(
                    "webhook %s delivery attempt %d failed: %s", webhook_id, attempt, type(exc).__name__
                )
            if status is not None and 200 <= status < 300:
                break
            if attempt <= RETRIES:
                time.sleep(self._retry_delay_s)
        with self._deliveries_lock:
            self._deliveries.append(Delivery(webhook_id, url, payload, status, attempt))
