"""Pacing against Visma's rate limit, so that the project never collides with it.

Visma limits "X requests per hour for each company and client combination" and tells the budget on
every response: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds to the
window's end). A `Budget` holds what was learnt from those headers and decides when the next request
may go. While plenty remains, requests go at once; when the remainder runs low it spreads the
remaining calls evenly over the rest of the window, and when nothing remains it waits for the window
to end. A 429's `Retry-After` holds every request of the same company and client, not only the one
that was refused.

A `Pacer` keeps one budget in this process. Pages are fetched concurrently, so it is thread-safe and
counts a request as spent when it is sent, before its answer arrives. When several processes read
the same company, `visma/shared_pacing.py` keeps the budget in the state database instead, with the
same rules.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

# X-RateLimit-Reset is whole seconds, so two answers of one window may put its end up to a second
# apart, and a little more across machines whose clocks differ: a later end within this slack is
# the same window, not a new one.
SAME_WINDOW_SLACK_S = 2.0
# A window may end up to a second before the end its answers give (Reset is rounded up), and a
# request takes a moment to reach Visma: one sent in this last stretch may count in the next window.
WINDOW_EDGE_S = 1.5
LOW_FRACTION = 0.1
LOW_FLOOR = 5


class RequestPacer(Protocol):
    """What a Visma client asks of its pacer: one `acquire()` before every request, `observe()`
    of every answer's headers, and `hold()` for a 429's Retry-After."""

    def acquire(self) -> float: ...

    def observe(self, headers: Mapping[str, str]) -> None: ...

    def hold(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Reported:
    """The budget as one answer reported it: `reset_s` is seconds from the answer to the window's end."""

    limit: int | None
    remaining: int
    reset_s: float

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Reported | None:
        """The `X-RateLimit-*` headers of an answer, or None when it has no usable budget."""
        limit = _header_number(headers, "X-RateLimit-Limit")
        remaining = _header_number(headers, "X-RateLimit-Remaining")
        reset = _header_number(headers, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return None
        return cls(None if limit is None else int(limit), int(remaining), reset)


@dataclass
class Budget:
    """One window's budget as last reported, and the schedule of what is left of it.

    Times are seconds on one clock: a process's monotonic clock when the budget lives in that process
    only, wall-clock UTC when it is shared between processes (see `visma/shared_pacing.py`).

    Requests sent while no answer of the current window has been seen, and those sent at the edge
    of a window, may count in a window whose budget is not known yet: they are `unreported`, and
    taken off the remainder the first answer of the next window reports (all but the one that
    answer is about), since Visma may have counted them after it answered.
    """

    limit: int | None = None
    remaining: int | None = None  # None: no answer of the current window yet
    reset_at: float | None = None  # the end of the window last reported
    next_slot: float = 0.0  # when the remainder is low: the earliest moment of the next request
    hold_until: float = 0.0  # a 429's Retry-After
    unreported: int = 0

    def learn(self, limit: int | None, remaining: int, reset_at: float) -> None:
        """Take in what an answer reported. The answers of concurrent requests arrive out of
        order: within one window the lowest remainder is the truth, and an answer from a window
        that has ended, or given way to a later one, is ignored."""
        if limit is not None:
            self.limit = limit
        if self.reset_at is not None and reset_at <= self.reset_at + SAME_WINDOW_SLACK_S:
            if self.remaining is not None and reset_at >= self.reset_at - SAME_WINDOW_SLACK_S:
                self.remaining = min(self.remaining, remaining)
            return
        self.remaining = remaining - max(0, self.unreported - 1)
        self.reset_at = reset_at
        self.next_slot = 0.0
        self.unreported = 0

    def hold(self, until: float) -> None:
        self.hold_until = max(self.hold_until, until)

    def take(self, now: float, most: int = 1) -> tuple[float, int]:
        """Count requests as spent: (the moment they may be sent, how many).

        Up to `most` go together while plenty remains and nothing holds them (their number is
        taken from the remainder at once); otherwise one, at its own moment.
        """
        start = max(now, self.hold_until)
        if self.remaining is not None and self.reset_at is not None and start >= self.reset_at:
            self.remaining = None  # the window has ended: a fresh budget, not known until answered
        if self.remaining is None or self.reset_at is None:
            self.unreported += 1
            return start, 1
        if start > now or start >= self.reset_at - WINDOW_EDGE_S:
            most = 1
        send_at, taken = self._slot(start, most)
        self.remaining -= taken
        if send_at >= self.reset_at - WINDOW_EDGE_S:
            self.unreported += taken
        return send_at, taken

    def grant_ends(self) -> float:
        """Until when requests taken together may still be sent: before the window's edge."""
        return -math.inf if self.reset_at is None else self.reset_at - WINDOW_EDGE_S

    def _slot(self, start: float, most: int) -> tuple[float, int]:
        assert self.remaining is not None and self.reset_at is not None
        if self.remaining <= 0:
            self.next_slot = self.reset_at
            return self.reset_at, 1
        spare = self.remaining - self.low_mark()
        if spare > 0:
            return start, min(most, spare)
        slot = max(start, self.next_slot)
        if slot >= self.reset_at:
            return self.reset_at, 1
        self.next_slot = slot + (self.reset_at - slot) / self.remaining
        return slot, 1

    def low_mark(self) -> int:
        """At or below this remainder the rest of the window is shared out evenly."""
        if self.limit is None:
            return LOW_FLOOR
        return max(LOW_FLOOR, math.ceil(self.limit * LOW_FRACTION))


def wait_until(send_at: float, now: float, sleep: Callable[[float], None]) -> float:
    """Sleep until `send_at` (on the clock `now` was read from); returns the seconds waited."""
    wait = send_at - now
    if wait <= 0:
        return 0.0
    log.info("pacing Visma requests to the rate limit: waiting %.1f s", wait)
    sleep(wait)
    return wait


class Pacer:
    """The rate budget of one (company, client) pair in this process; `acquire()` before every request."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._budget = Budget()

    def acquire(self) -> float:
        """Wait as long as the budget requires, then count one request; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            send_at, _ = self._budget.take(now)
        return wait_until(send_at, now, self._sleep)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from a response's `X-RateLimit-*` headers."""
        reported = Reported.from_headers(headers)
        if reported is None:
            return
        with self._lock:
            self._budget.learn(reported.limit, reported.remaining, self._clock() + reported.reset_s)

    def hold(self, seconds: float) -> None:
        """Hold every request for `seconds` (a 429's Retry-After)."""
        with self._lock:
            self._budget.hold(self._clock() + seconds)


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        log.debug("ignoring non-numeric %s header %r", name, raw)
        return None
