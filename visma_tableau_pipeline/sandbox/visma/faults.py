"""Fault injection: what can go wrong between a client and Visma, on purpose and reproducibly.

Faults are keyed by the number of the authenticated API request (1, 2, 3, ... counted from the
moment the plan is set), so a sequential client meets them at the same place on every run.
Token requests and admin calls do not count.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject. All off by default.

    - error_every N: every Nth request answers `error_status` (5xx).
    - error_burst_start M, error_burst_length K: requests M .. M+K-1 answer `error_status`.
    - drop_every N / drop_at: the connection closes mid-response (the client sees a transport
      error such as httpx.RemoteProtocolError, never a status).
    - throttle_every N: every Nth request answers 429 with Retry-After `throttle_retry_after`.
    - page_latency_ms: added to every paged list response (benchmarks of slow pages).
    - shift_after_page P: once per company and entity, right after page P of a paged list is
      served, `shift_modify` records of that page are modified (they move to the end of the
      list) and `shift_delete` are hard-deleted, so offset paging skips or repeats rows.
      `shift_entity` limits this to one entity (catalogue name).
    - webhook_drop_rate, webhook_duplicate_rate: fractions of notifications not sent, or sent
      twice (identically).
    - seed: makes every random choice here reproducible.
    """

    seed: int = 0
    error_every: int = 0
    error_burst_start: int = 0
    error_burst_length: int = 0
    error_status: int = 503
    drop_every: int = 0
    drop_at: tuple[int, ...] = ()
    throttle_every: int = 0
    throttle_retry_after: int = 1
    page_latency_ms: int = 0
    shift_after_page: int = 0
    shift_modify: int = 0
    shift_delete: int = 0
    shift_entity: str | None = None
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> FaultPlan:
        """A plan from the admin endpoint's JSON; unknown fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "drop_at" in values:
            values["drop_at"] = tuple(values["drop_at"])
        return cls(**values)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "drop_at": list(self.drop_at)}


class Fault:
    """What to do with request number n."""

    NONE = "none"
    ERROR = "error"
    DROP = "drop"
    THROTTLE = "throttle"


@dataclass
class FaultState:
    """A plan and the progress of the run against it."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    requests: int = 0
    shifted: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, plan: FaultPlan) -> None:
        with self.lock:
            self.plan = plan
            self.requests = 0
            self.shifted = set()

    def next_request(self) -> tuple[int, str]:
        """Count an API request and say which fault, if any, it meets."""
        with self.lock:
            self.requests += 1
            n, plan = self.requests, self.plan
        if (plan.drop_every and n % plan.drop_every == 0) or n in plan.drop_at:
            return n, Fault.DROP
        burst_end = plan.error_burst_start + plan.error_burst_length
        in_burst = plan.error_burst_length and plan.error_burst_start <= n < burst_end
        if in_burst or (plan.error_every and n % plan.error_every == 0):
            return n, Fault.ERROR
        if plan.throttle_every and n % plan.throttle_every == 0:
            return n, Fault.THROTTLE
        return n, Fault.NONE

    def claim_shift(self, company_id: str, entity_name: str, page_number: int) -> bool:
        """True once per (company, entity) when the page just served should trigger a shift."""
        plan = self.plan
        if not plan.shift_after_page or page_number != plan.shift_after_page:
            return False
        if plan.shift_entity and plan.shift_entity != entity_name:
            return False
        with self.lock:
            if (company_id, entity_name) in self.shifted:
                return False
            self.shifted.add((company_id, entity_name))
            return True
