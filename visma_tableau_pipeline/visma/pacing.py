"""Pacing against Visma's rate limit, so that the project never collides with it.

Visma limits "X requests per hour for each company and client combination" and tells the budget on
every response: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds to the
window's end). A `Pacer` learns from those headers. While plenty remains, requests go at once; when
the remainder runs low it spreads the remaining calls evenly over the rest of the window, and when
nothing remains it waits for the window to end. A 429's `Retry-After` holds every request of the
same company and client, not only the one that was refused. Pages are fetched concurrently, so the
pacer is thread-safe and counts a request as spent when it is sent, before its answer arrives.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        log.debug("ignoring non-numeric %s header %r", name, raw)
        return None


class Pacer:
    """The rate budget of one (company, client) pair; `acquire()` before every request."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        low_fraction: float = 0.1,
        low_floor: int = 5,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._low_fraction = low_fraction
        self._low_floor = low_floor
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._next_slot = 0.0
        self._hold_until = 0.0

    def acquire(self) -> float:
        """Wait as long as the budget requires, then count one request; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._hold_until)
            send_at = start + self._delay(start)
            if self._remaining is not None:
                self._remaining -= 1
        wait = send_at - now
        if wait > 0:
            log.info("pacing Visma requests to the rate limit: waiting %.1f s", wait)
            self._sleep(wait)
            return wait
        return 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from a response's `X-RateLimit-*` headers."""
        limit = _header_number(headers, "X-RateLimit-Limit")
        remaining = _header_number(headers, "X-RateLimit-Remaining")
        reset = _header_number(headers, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        with self._lock:
            reset_at = self._clock() + reset
            same_window = self._reset_at is not None and reset_at <= self._reset_at + 2.0  # Reset is whole seconds
            if same_window and self._remaining is not None:
                # Answers of concurrent requests arrive out of order: the lowest count is the truth.
                self._remaining = min(self._remaining, int(remaining))
            else:
                self._remaining = int(remaining)
                self._reset_at = reset_at
                self._next_slot = 0.0
            if limit is not None:
                self._limit = int(limit)

    def hold(self, seconds: float) -> None:
        """Hold every request for `seconds` (a 429's Retry-After)."""
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + seconds)

    def _delay(self, start: float) -> float:
        """Seconds after `start` at which the next request may go. Called under the lock."""
        if self._remaining is None or self._reset_at is None:
            return 0.0
        if start >= self._reset_at:
            # The window has ended: a fresh budget until the next answer says otherwise.
            self._remaining, self._reset_at = None, None
            return 0.0
        if self._remaining <= 0:
            self._next_slot = self._reset_at
            return self._reset_at - start
        if self._remaining > self._low_mark():
            return 0.0
        slot = max(start, self._next_slot)
        if slot >= self._reset_at:
            return self._reset_at - start
        self._next_slot = slot + (self._reset_at - slot) / self._remaining
        return slot - start

    def _low_mark(self) -> int:
        if self._limit is None:
            return self._low_floor
        return max(self._low_floor, math.ceil(self._limit * self._low_fraction))


_shared: dict[tuple[str, str, str], Pacer] = {}
_shared_lock = threading.Lock()


def shared_pacer(api_url: str, tenant_id: str, client_id: str) -> Pacer:
    """The one pacer of a (company, client) pair in this process, shared by all its clients."""
    key = (api_url.rstrip("/"), tenant_id, client_id)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Pacer()
        return _shared[key]
