"""ServerThread runs any ASGI app on a free port and stops cleanly."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from visma_tableau_pipeline.sandbox.server import ServerThread


def _app() -> Starlette:
    return Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])


def test_serves_on_a_free_port_and_stops():
    server = ServerThread(_app())
    url = server.start()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert httpx.get(f"{url}/ping").text == "pong"
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ping", timeout=2)


def test_context_manager_yields_the_base_url_and_two_servers_coexist():
    with ServerThread(_app()) as first, ServerThread(_app()) as second:
        assert first != second
        assert httpx.get(f"{second}/ping").status_code == 200


def test_cannot_start_twice():
    server = ServerThread(_app())
    server.start()
    try:
        with pytest.raises(RuntimeError):
            server.start()
    finally:
        server.stop()
