"""Run an ASGI app on uvicorn in a background thread, for tests, benchmarks and `vtp sandbox`.

The sandboxes are real HTTP servers so that the project's clients talk to them over sockets,
exactly as they talk to Visma and Tableau. Tests bind port 0 and read the port uvicorn chose.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class ServerStartError(RuntimeError):
    """uvicorn did not start listening within the allowed time (port taken, app broken, ...)."""


class ServerThread:
    """One uvicorn server running `app` in a daemon thread.

    `start()` returns the base URL once the socket listens; `stop()` asks uvicorn to finish and
    joins the thread. Usable as a context manager, which yields the base URL.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        start_timeout: float = 15.0,
    ) -> None:
        self._config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None
        self._start_timeout = start_timeout
        self.base_url: str | None = None

    def start(self) -> str:
        """Start serving and return the base URL, e.g. `http://127.0.0.1:54321`."""
        if self._thread is not None:
            raise RuntimeError("this ServerThread is already started")
        self._thread = threading.Thread(
            target=self._server.run, name=f"uvicorn-{self._config.host}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServerStartError(
                    f"uvicorn exited before listening on {self._config.host}:{self._config.port}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(
                    f"uvicorn did not listen on {self._config.host}:{self._config.port} "
                    f"within {self._start_timeout} s"
                )
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        log.debug("serving %s on %s", type(self._config.app).__name__, self.base_url)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread; harmless when not started."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
