"""A TCP proxy in front of a real server (PostgreSQL), that a test takes down and brings back.

It stands for the network and the server's availability, never for the database: every byte the
client sends reaches the real PostgreSQL server. Three states:

- up: connections are forwarded;
- refusing: nothing listens on the port (a server that is down: "Connection refused");
- dropping the next N connections: each is accepted and closed at once (a server restarting, a
  load balancer without a backend), then up again. Counting connections instead of seconds keeps
  the tests free of timing.

`cut()` closes every open connection, as a server restart does to its clients.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_ACCEPT_POLL_S = 0.05


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._drop_next = 0
        self.dropped = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()

    def up(self) -> None:
        """Listen and forward."""
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL_S)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._thread.start()

    def refuse(self) -> None:
        """Stop listening (connections are refused) and cut every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            assert self._thread is not None
            self._thread.join()
        self.cut()

    def drop_next(self, count: int) -> None:
        """Accept and at once close the next `count` connections, then forward again."""
        with self._lock:
            self._drop_next = count
        self.up()

    def cut(self) -> None:
        """Close every open connection, as a server restart does."""
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self.refuse()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by refuse()
            with self._lock:
                drop = self._drop_next > 0
                if drop:
                    self._drop_next -= 1
                    self.dropped += 1
            if drop:
                _close(client)
                continue
            try:
                server = socket.create_connection(self._target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@contextmanager
def proxy_to(host: str, port: int) -> Iterator[TcpProxy]:
    """A proxy to `host:port`, refusing until the test brings it up; closed at the end."""
    proxy = TcpProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
