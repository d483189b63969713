"""One Hyper process for this OS process, started on first use and stopped at exit.

Starting hyperd costs 0.1-0.25 s on this machine; a run reads and writes about a hundred Hyper
files (each table's extract, its publish, payloads), and when each started its own process
(pantab does, per call) that was a third of a small run (BENCHMARKS.md, "One Hyper process").
A connection to a running process costs milliseconds. Each use opens its own connection, so
threads may share the process; a forked child starts its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tableauhyperapi import Connection, HyperProcess, Telemetry

log = logging.getLogger(__name__)

_lock = threading.Lock()
_running: tuple[int, HyperProcess, Path] | None = None  # (pid that started it, the process, its log folder)


def _process() -> HyperProcess:
    global _running
    with _lock:
        if _running is None or _running[0] != os.getpid() or not _running[1].is_open:
            _stop()  # a hyperd of this process that ended: its log folder goes too
            log_dir = Path(tempfile.mkdtemp(prefix="vtp-hyper-"))  # hyperd's log, removed at exit
            process = HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(log_dir)})
            _running = (os.getpid(), process, log_dir)
            log.debug("started hyperd (logs in %s)", log_dir)
        return _running[1]


@atexit.register
def _stop() -> None:
    """Stop this process's hyperd (not one a parent started before a fork)."""
    if _running is not None and _running[0] == os.getpid():
        _running[1].close()
        shutil.rmtree(_running[2], ignore_errors=True)


@contextmanager
def hyper_connection(database: Path | None = None) -> Iterator[Connection]:
    """A connection to this process's Hyper, with `database` (an existing file) attached as the
    default one when given."""
    with Connection(_process().endpoint, str(database) if database is not None else None) as connection:
        yield connection
