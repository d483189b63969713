"""Visma's rate limit: X requests per hour for each company and client combination.

Fixed windows per (tenant, client), opened by the first request. Every API response carries
X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (seconds to the window's end) and
X-RateLimit-Policy; once the budget is spent, 429 with Retry-After in seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
            "X-RateLimit-Policy": f"{self.limit};w={self.window_seconds};comment=\"per company and client\"",
        }


class RateLimiter:
    def __init__(self, per_window: int, window_seconds: int = 3600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_window = per_window
        self.window_seconds = window_seconds
        self._clock = clock
        self._windows: dict[tuple[str, str], list[float]] = {}  # -> [window start, used]
        self._lock = threading.Lock()

    def take(self, tenant_id: str, client_id: str) -> Allowance:
        """Count one request against the (tenant, client) budget."""
        now = self._clock()
        with self._lock:
            window = self._windows.get((tenant_id, client_id))
            if window is None or now >= window[0] + self.window_seconds:
                window = self._windows[(tenant_id, client_id)] = [now, 0]
            allowed = window[1] < self.per_window
            if allowed:
                window[1] += 1
            reset = min(self.window_seconds, max(1, math.ceil(window[0] + self.window_seconds - now)))
            return Allowance(allowed, self.per_window, int(self.per_window - window[1]), reset,
                             self.window_seconds)
