"""Webhook notifications for changed records, signed the way Visma's webhook dispatcher signs.

The ERP's notification body is not published; the sandbox sends this JSON (UTF-8):

    {"tenantId": "<company tenant id>", "event": "SupplierInvoice", "action": "Update",
     "id": "Invoice/000123", "key": {"documentType": "Invoice", "referenceNumber": "000123"},
     "timestamp": "2026-11-01T08:00:01.013"}

`action` is Create, Update or Delete; `id` joins the key values with "/"; `timestamp` is the
record's new lastModifiedDateTime (sandbox clock). Headers:
    x-vwd-signature-v1            base64(HMAC-SHA256(raw body, subscription secret))
    x-vwd-notification-id         a UUID per notification (a duplicate repeats it)
    x-vwd-event-id                a UUID per change
    x-vwd-tenant-id               the company tenant id
    x-vwd-notification-timestamp  when the notification was made (sandbox clock)
Only entities for which Visma offers events notify (see the catalogue's webhook_resource).
Delivery is one attempt from a worker thread: a receiver that is down loses the event, as with
the real dispatcher. A seeded fraction can be dropped or sent twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass

import httpx

from visma_tableau_pipeline.sandbox.visma.determinism import Draw, stream_key

log = logging.getLogger(__name__)


def sign(body: bytes, secret: str) -> str:
    """The x-vwd-signature-v1 value of a body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class Notification:
    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookStats:
    made: int = 0
    delivered: int = 0
    dropped: int = 0  # on purpose (FaultPlan.webhook_drop_rate)
    failed: int = 0  # the receiver was down or answered an error


class WebhookNotifier:
    """Queues notifications and posts them from one daemon thread."""

    def __init__(self, url: str | None, secret: str | None, seed: int, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret or ""
        self.stats = WebhookStats()
        self._key = stream_key(seed, "webhooks")
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._timeout = timeout
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sequence = 0

    def configure(self, url: str | None, secret: str | None) -> None:
        self.url, self.secret = url, secret or ""

    def notify(self, tenant_id: str, resource: str, action: str, key: dict[str, str], stamp: str,
               drop_rate: float, duplicate_rate: float) -> None:
        """Make one notification and queue it (or drop or double it, as the plan says)."""
        if not self.url:
            return
        with self._lock:
            self._sequence += 1
            draw = Draw(self._key, self._sequence)
            self.stats.made += 1
            dropped = draw.next() % 1_000_000 < drop_rate * 1_000_000
            doubled = draw.next() % 1_000_000 < duplicate_rate * 1_000_000
            if dropped:
                self.stats.dropped += 1
                return
        body = json.dumps({"tenantId": tenant_id, "event": resource, "action": action,
                           "id": "/".join(key.values()), "key": key, "timestamp": stamp},
                          ensure_ascii=False).encode()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "x-vwd-signature-v1": sign(body, self.secret),
            "x-vwd-notification-id": str(uuid.UUID(int=draw.next() << 64 | draw.next(), version=4)),
            "x-vwd-event-id": str(uuid.UUID(int=draw.next() << 64 | draw.next(), version=4)),
            "x-vwd-tenant-id": tenant_id,
            "x-vwd-notification-timestamp": stamp,
        }
        notification = Notification(body, headers)
        self._ensure_worker()
        self._queue.put(notification)
        if doubled:
            self._queue.put(notification)

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="visma-sandbox-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while True:
                notification = self._queue.get()
                try:
                    if notification is None:
                        return
                    self._post(client, notification)
                finally:
                    self._queue.task_done()

    def _post(self, client: httpx.Client, notification: Notification) -> None:
        url = self.url
        if not url:
            return
        try:
            response = client.post(url, content=notification.body, headers=notification.headers)
            ok = response.status_code < 300
        except httpx.HTTPError as exc:
            log.warning("webhook to %s failed: %s", httpx.URL(url).host, type(exc).__name__)
            ok = False
        with self._lock:
            if ok:
                self.stats.delivered += 1
            else:
                self.stats.failed += 1

    def wait_idle(self) -> None:
        """Block until every queued notification has been attempted."""
        self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(self._timeout + 1)
            self._thread = None
