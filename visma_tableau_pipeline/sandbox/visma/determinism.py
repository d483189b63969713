"""Deterministic pseudo-random draws keyed by (seed, company, entity, record index).

Record i of an entity is generated on demand from its own key, so that a million invoices never
sit in memory and page N costs the same as page 1. Python's `hash()` of a str changes between
processes, so streams are keyed with SHA-256 and mixed with splitmix64.
"""

from __future__ import annotations

import hashlib
from typing import Any

_MASK = (1 << 64) - 1


def stream_key(*parts: object) -> int:
    """A stable 64-bit key for a named stream, e.g. (seed, "nordic-no", "supplier_invoices")."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def mix(value: int) -> int:
    """splitmix64's finalizer: a fast, well-spread 64-bit hash of a 64-bit value."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


class Draw:
    """Successive deterministic draws for one record: `Draw(key, i).below(10)` and so on."""

    __slots__ = ("_state",)

    def __init__(self, key: int, index: int) -> None:
        self._state = mix(key ^ mix(index))

    def next(self) -> int:
        self._state = mix(self._state)
        return self._state

    def below(self, bound: int) -> int:
        """An integer in [0, bound)."""
        return self.next() % bound

    def between(self, low: int, high: int) -> int:
        """An integer in [low, high], both included."""
        return low + self.next() % (high - low + 1)

    def chance(self, numerator: int, denominator: int) -> bool:
        """True with probability numerator / denominator."""
        return self.next() % denominator < numerator

    def pick(self, items: tuple | list) -> Any:
        return items[self.next() % len(items)]
