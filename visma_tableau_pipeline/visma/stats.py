"""What a client did, for a materialization's metadata: calls, pages, retries, waits, bytes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    """Counters of one `VismaClient`; updated from several threads, read at the end of a run."""

    api_calls: int = 0  # requests sent to the API (each retry counts): what the rate budget sees
    token_requests: int = 0
    pages: int = 0
    extra_passes: int = 0  # passes read again because rows moved between pages
    retries: int = 0
    throttled_seconds: float = 0.0  # waits for the rate limit: pacing plus Retry-After
    bytes: int = 0  # response bytes received from the API
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **increments: float) -> None:
        """Add to counters by name, atomically."""
        with self._lock:
            for name, amount in increments.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_metadata(self) -> dict[str, float]:
        """The counters as plain numbers, ready for Dagster materialization metadata."""
        with self._lock:
            return {
                "api_calls": self.api_calls,
                "token_requests": self.token_requests,
                "pages": self.pages,
                "extra_passes": self.extra_passes,
                "retries": self.retries,
                "throttled_seconds": round(self.throttled_seconds, 3),
                "bytes": self.bytes,
            }
