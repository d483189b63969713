"""Retries for Visma calls: 429, 5xx and network errors only, with jittered exponential backoff.

Other 4xx answers are never retried: the request itself is wrong, and Visma also limits repeated
identical failing requests. A wait Visma asks for (`Retry-After`) is honoured in full; when it
would overrun the policy's time budget, the call gives up at once with the error that says so.

The default budget rides out a burst of ten 503s (or dropped connections) in a row: up to 12
attempts within 300 s, waits doubling from 1 s to at most 30 s (at most 181 s of waiting for ten
retries). Every retry is logged with the status, company, entity and page; the error that ends
the budget says how long it tried and what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from visma_tableau_pipeline.settings import RetrySettings
from visma_tableau_pipeline.visma.errors import (
    VismaError,
    VismaRateLimited,
    VismaServerError,
    VismaTransportError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = (VismaRateLimited, VismaServerError, VismaTransportError)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request, a time budget per request, backoff bounds (s)."""

    max_attempts: int = 12
    max_seconds: float = 300.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_settings(cls, retries: RetrySettings) -> RetryPolicy:
        """The policy the settings ask for (VTP_VISMA_RETRY_SECONDS, VTP_RETRY_BACKOFF_SECONDS)."""
        return cls(max_seconds=retries.visma_s, backoff_initial=retries.backoff_s,
                   backoff_max=min(cls.backoff_max, 30 * retries.backoff_s))


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[VismaError, float], None] | None = None,
) -> T:
    """`attempt()` until it succeeds, raises a non-retryable error, or the policy is spent.

    The error raised at the end is the last attempt's, with `attempts` set and, when it has
    none, a hint that says what to do.
    """
    backoff = wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def wait(state: RetryCallState) -> float:
        asked = _retry_after(state)
        return asked if asked is not None else backoff(state)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        log.warning("retrying Visma call in %.1f s (attempt %d of %d, %.0f of %.0f s spent): %s",
                    seconds, state.attempt_number, policy.max_attempts, state.seconds_since_start,
                    policy.max_seconds, error)
        if on_retry is not None and isinstance(error, VismaError):  # only Visma's errors are retried
            on_retry(error, seconds)

    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return attempt()

    retrying = Retrying(
        sleep=sleep,
        stop=stop_any(stop_after_attempt(policy.max_attempts), stop_after_delay(policy.max_seconds),
                      _AskedWaitOverrunsBudget(policy.max_seconds)),
        wait=wait,
        retry=retry_if_exception_type(RETRYABLE),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(counted)
    except RETRYABLE as error:
        error.attempts = attempts
        if error.hint is None:
            error.hint = (f"Visma kept failing through {attempts} attempts; nothing was lost (the "
                          "watermark did not move past what was stored). Run the sync again later; "
                          "if it persists, check Visma's service status and VISMA_API_URL")
        raise


class _AskedWaitOverrunsBudget(stop_base):
    """Stop when the wait Visma asks for (Retry-After) would end past the time budget."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds

    def __call__(self, state: RetryCallState) -> bool:
        asked = _retry_after(state)
        return asked is not None and (state.seconds_since_start or 0.0) + asked > self.max_seconds


def _retry_after(state: RetryCallState) -> float | None:
    error = state.outcome.exception() if state.outcome else None
    return getattr(error, "retry_after", None)
