"""LUIDs and timestamps as Tableau writes them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the epoch; injectable so that tests can move time (session expiry, 24 h keys)."""


def new_luid() -> str:
    return str(uuid.uuid4())


def format_time(epoch_seconds: float) -> str:
    """`2024-05-01T12:00:00Z`, the only timestamp form TSC parses."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))
