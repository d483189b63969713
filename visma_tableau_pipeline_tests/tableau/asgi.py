"""ASGI wrappers that make the sandbox misbehave at a chosen request, for fault tests."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Matcher = Callable[[str, str], bool]  # (method, path) → does this request trigger the fault?


class BeforeRequest:
    """Runs `action` (blocking, in a worker thread) before the first matching request is served.

    The action may itself call the sandbox over HTTP: the server's event loop stays free.
    """

    def __init__(self, app: ASGIApp, matches: Matcher, action: Callable[[], None]) -> None:
        self.app, self.matches, self.action = app, matches, action
        self.fired = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.fired and self.matches(scope["method"], scope["path"]):
            self.fired = True
            await run_in_threadpool(self.action)
        await self.app(scope, receive, send)


class FailFirst:
    """Answers the first `count` matching requests with HTTP `status` (a 503 from a proxy, say)."""

    def __init__(self, app: ASGIApp, matches: Matcher, status: int, count: int = 1) -> None:
        self.app, self.matches, self.status, self.left = app, matches, status, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.left and self.matches(scope["method"], scope["path"]):
            self.left -= 1
            await Response("Service Unavailable", status_code=self.status)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LoseFirstResponse:
    """Serves the first matching request, then drops its answer and sends a 502 instead: the
    server did the work, the client never heard (a proxy timeout, a cut connection)."""

    def __init__(self, app: ASGIApp, matches: Matcher) -> None:
        self.app, self.matches, self.armed = app, matches, True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and self.armed and self.matches(scope["method"], scope["path"])):
            await self.app(scope, receive, send)
            return
        self.armed = False

        async def swallow(message: dict) -> None:
            return None

        await self.app(scope, receive, swallow)
        await Response("Bad Gateway", status_code=502)(scope, receive, send)


class DropFirst:
    """Starts the answer of the first `count` matching requests, sends a part of it, and drops
    the connection (a proxy or the network cutting it half way)."""

    def __init__(self, app: ASGIApp, matches: Matcher, count: int = 1) -> None:
        self.app, self.matches, self.left = app, matches, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and self.left and self.matches(scope["method"], scope["path"])):
            await self.app(scope, receive, send)
            return
        self.left -= 1
        body = b'<?xml version="1.0" encoding="UTF-8"?><tsResponse xmlns="http://tableau.com/api">'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/xml"),
                                (b"content-length", str(len(body) * 4).encode())]})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        raise ConnectionResetError("the sandbox dropped the connection half way through its answer")
