"""What reaches the sandbox, and the throttling it answers with when told to.

An ASGI middleware counts request body bytes (what a client sent to Tableau), keeps a log of
requests (method, path, query, status; never headers, so never a token), and answers 429 with
`Retry-After` when a fault is armed: the next N requests, or every Nth.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visma_tableau_pipeline.sandbox.tableau.errors import TableauApiError
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock
from visma_tableau_pipeline.sandbox.tableau.xmlio import error_response

THROTTLE_CODE = "429000"


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    bytes_received: int
    at: float
    throttled: bool


class Traffic:
    """Counters, log and fault knobs; safe to read and arm from any thread."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._bytes_received = 0
        self._requests: list[RequestRecord] = []
        self._throttle_next = 0
        self._throttle_every = 0
        self._seen_since_armed = 0
        self.retry_after_s = 0

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return self._bytes_received

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def throttle_next(self, count: int, retry_after_s: int = 0) -> None:
        """Answer the next `count` requests with 429."""
        with self._lock:
            self._throttle_next, self.retry_after_s = count, retry_after_s

    def throttle_every(self, nth: int, retry_after_s: int = 0) -> None:
        """Answer every `nth` request from now on with 429 (0 turns it off)."""
        with self._lock:
            self._throttle_every, self._seen_since_armed, self.retry_after_s = nth, 0, retry_after_s

    def clear_faults(self) -> None:
        with self._lock:
            self._throttle_next = self._throttle_every = self._seen_since_armed = 0

    def _take_throttle(self) -> bool:
        with self._lock:
            self._seen_since_armed += 1
            if self._throttle_next > 0:
                self._throttle_next -= 1
                return True
            return self._throttle_every > 0 and self._seen_since_armed % self._throttle_every == 0

    def _record(self, scope: Scope, status: int, received: int, throttled: bool) -> None:
        record = RequestRecord(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            status,
            received,
            self._clock(),
            throttled,
        )
        with self._lock:
            self._bytes_received += received
            self._requests.append(record)


class TrafficMiddleware:
    def __init__(self, app: ASGIApp, traffic: Traffic) -> None:
        self._app = app
        self._traffic = traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        received = 0
        status = 500

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        throttled = self._traffic._take_throttle()
        try:
            if throttled:
                await _drain(counting_receive)
                response = error_response(
                    TableauApiError(
                        429, THROTTLE_CODE, "Too Many Requests", "The sandbox is throttling this request."
                    )
                )
                response.headers["Retry-After"] = str(self._traffic.retry_after_s)
                await response(scope, counting_receive, status_send)
            else:
                await self._app(scope, counting_receive, status_send)
        finally:
            self._traffic._record(scope, status, received, throttled)


async def _drain(receive: Receive) -> None:
    """Read the whole body, so that a throttled upload still counts the bytes the client sent."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
