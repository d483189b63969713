"""Retries for Visma calls: 429, 5xx and network errors only, with jittered exponential backoff.

Other 4xx answers are never retried: the request itself is wrong, and Visma also limits repeated
identical failing requests. A wait Visma asks for (`Retry-After`) is honoured in full; when it
would overrun the policy's time budget, the call gives up at once with the error that says so.
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
    wait_random_exponential,
)

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

    max_attempts: int = 6
    max_seconds: float = 300.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[VismaError, float], None] | None = None,
) -> T:
    """`attempt()` until it succeeds, raises a non-retryable error, or the policy is spent.

    The error raised at the end is the last attempt's, with `attempts` set.
    """
    backoff = wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def wait(state: RetryCallState) -> float:
        asked = _retry_after(state)
        return asked if asked is not None else backoff(state)

    def wait_overruns_budget(state: RetryCallState) -> bool:
        asked = _retry_after(state)
        return asked is not None and state.seconds_since_start + asked > policy.max_seconds

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception()
        seconds = state.next_action.sleep if state.next_action else 0.0
        log.warning("retrying Visma call in %.1f s (attempt %d): %s", seconds, state.attempt_number, error)
        if on_retry is not None:
            on_retry(error, seconds)

    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return attempt()

    retrying = Retrying(
        sleep=sleep,
        stop=stop_after_attempt(policy.max_attempts)
        | stop_after_delay(policy.max_seconds)
        | wait_overruns_budget,
        wait=wait,
        retry=retry_if_exception_type(RETRYABLE),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(counted)
    except RETRYABLE as error:
        error.attempts = attempts
        raise


def _retry_after(state: RetryCallState) -> float | None:
    error = state.outcome.exception() if state.outcome else None
    return getattr(error, "retry_after", None)
