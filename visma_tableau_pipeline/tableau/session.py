"""A signed-in Tableau session that stays signed in, over the real tableauserverclient (TSC).

TSC never signs in again by itself and never retries, so this wrapper does, within bounds:

- Sign-in with a personal access token or a Connected App JWT, to the configured site.
- Sessions end after 240 minutes on Tableau Server and about 120 on Tableau Cloud; the session
  signs in again shortly before that age instead of letting a long publish fail half way.
- One session per PAT: another sign-in with the same PAT (a parallel run, a person testing)
  ends ours, and the next call answers 401002. `call` then signs in again and retries once; a
  second 401002 means something keeps taking the PAT over, which a retry loop would only worsen.
- 429 (Tableau Cloud limits concurrent requests per site), 5xx, timeouts and connections dropped
  before or during an answer are retried with jittered exponential backoff, honouring
  `Retry-After` up to a cap, within a number of attempts and a time budget; each retry is logged,
  and the end of the budget is a `TableauUnavailable` that says what to do. Every call the
  project makes is safe to repeat: reads, sign-in, a project created or found by name, a publish
  that overwrites, an incremental update whose request id Tableau applies at most once.

No secret or session token is ever logged or put into an exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import requests
import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import (
    FailedSignInError,
    InternalServerError,
    NotSignedInError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from visma_tableau_pipeline.settings import RetrySettings, TableauSettings
from visma_tableau_pipeline.tableau.connected_app import connected_app_jwt
from visma_tableau_pipeline.tableau.errors import (
    TableauConfigError,
    TableauError,
    TableauSignInError,
    TableauThrottled,
    TableauUnavailable,
)
from visma_tableau_pipeline.tableau.pat import PatUsageFile

log = logging.getLogger(__name__)

T = TypeVar("T")

SESSION_LIFETIME_S = {"server": 240 * 60, "cloud": 120 * 60}
REFRESH_MARGIN_S = 10 * 60  # sign in again this long before the session would end
SESSION_ENDED_CODE = "401002"
HTTP_TIMEOUT_S = (30, 900)  # connect, read: a large publish can take minutes to answer


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry 429, 5xx and connection errors: attempts, and seconds in all."""

    attempts: int = 8
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped to this
    budget_s: float = 300.0  # no retry starts after this long since the first attempt
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, retries: RetrySettings) -> RetryPolicy:
        """The policy the settings ask for (VTP_TABLEAU_RETRY_SECONDS, VTP_RETRY_BACKOFF_SECONDS)."""
        return cls(
            initial_wait_s=retries.backoff_s,
            max_wait_s=min(cls.max_wait_s, 30 * retries.backoff_s),
            max_retry_after_s=min(cls.max_retry_after_s, retries.tableau_s),
            budget_s=retries.tableau_s,
        )


class TableauSession:
    """Keeps one Tableau session usable for a whole run; signs out at the end.

        with TableauSession(settings) as session:      # signs in here (errors surface here)
            projects = session.call(lambda server: list(TSC.Pager(server.projects)))

    Without `with`, the first `call` signs in.
    """

    def __init__(
        self,
        settings: TableauSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        retry: RetryPolicy = RetryPolicy(),
        pat_usage: PatUsageFile | None = None,
    ) -> None:
        if not (settings.pat_name and settings.pat_secret) and not settings.connected_app_client_id:
            raise TableauConfigError(
                "Tableau settings name no credentials: set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET, "
                "or the Connected App settings", server_url=settings.server_url,
            )
        self.settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._retry = retry
        self._pat_usage = pat_usage
        self._lock = threading.Lock()
        self._signed_in_at: float | None = None
        self.sign_ins = 0
        self.server = TSC.Server(settings.server_url, use_server_version=True,
                                 session_factory=_throttle_aware_session)
        self.server.add_http_options({"timeout": HTTP_TIMEOUT_S})

    @property
    def _lifetime_s(self) -> float:
        return SESSION_LIFETIME_S[self.settings.deployment]

    @property
    def _method(self) -> str:
        if self.settings.pat_name and self.settings.pat_secret:
            return f"PAT {self.settings.pat_name!r}"
        return f"Connected App {self.settings.connected_app_client_id!r} as {self.settings.username!r}"

    def __enter__(self) -> TableauSession:
        self.sign_in()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sign_in(self) -> None:
        """Sign in now (again, if already signed in), retrying 429 and 5xx."""
        self._retrying(lambda: self._sign_in_once())

    def call(self, fn: Callable[[TSC.Server], T]) -> T:
        """`fn(server)` on a live session: re-signs in on age or 401002, retries 429 and 5xx.

        `fn` may run more than once, so it must be safe to repeat (TSC calls that publish with
        Overwrite, read, or update data with a fixed request id are).
        """
        return self._retrying(lambda: self._call_signed_in(fn))

    def close(self) -> None:
        """Sign out (best effort: an ended session needs no signing out)."""
        if self._signed_in_at is None:
            return
        try:
            self.server.auth.sign_out()
        except (TSC.ServerResponseError, NotSignedInError, requests.RequestException) as error:
            log.debug("Tableau sign-out did not complete: %s", type(error).__name__)
        self._signed_in_at = None

    # -- internals ---------------------------------------------------------------------------

    def _call_signed_in(self, fn: Callable[[TSC.Server], T]) -> T:
        with self._lock:
            if self._signed_in_at is None or self._clock() - self._signed_in_at >= (
                self._lifetime_s - REFRESH_MARGIN_S
            ):
                if self._signed_in_at is not None:
                    log.info("Tableau session is %.0f min old; signing in again before it ends",
                             (self._clock() - self._signed_in_at) / 60)
                self._sign_in_once()
        try:
            return fn(self.server)
        except NotSignedInError as error:
            if not _session_ended(error):
                raise
            log.warning("Tableau session ended (401002), likely another sign-in with %s; "
                        "signing in again and retrying once", self._method)
        with self._lock:
            self._sign_in_once()
        try:
            return fn(self.server)
        except NotSignedInError as error:
            if not _session_ended(error):
                raise
            raise TableauError(
                f"the Tableau session ended again right after signing in with {self._method}: "
                "something else keeps signing in with the same credentials (one session per PAT); "
                "give each parallel run its own PAT or serialize them", site=self.settings.site,
            ) from None

    def _sign_in_once(self) -> None:
        settings = self.settings
        if settings.pat_name and settings.pat_secret:
            credentials: TSC.PersonalAccessTokenAuth | TSC.JWTAuth = TSC.PersonalAccessTokenAuth(
                settings.pat_name, settings.pat_secret.get_secret_value(), site_id=settings.site
            )
        else:
            credentials = TSC.JWTAuth(connected_app_jwt(settings, self._wall_clock()),
                                      site_id=settings.site)
        try:
            self.server.auth.sign_in(credentials)
        except FailedSignInError as error:
            raise TableauSignInError(
                f"Tableau refused the sign-in to {settings.server_url}, site {settings.site!r}, with "
                f"{self._method}: {error.summary}: {error.detail}",
                site=settings.site, code=error.code,
            ) from None
        self._signed_in_at = self._clock()
        self.sign_ins += 1
        log.info("signed in to Tableau %s, site %r, with %s", settings.server_url, settings.site,
                 self._method)
        if self._pat_usage is not None and settings.pat_name and settings.pat_secret:
            self._pat_usage.record_use(settings.pat_name, datetime.fromtimestamp(self._wall_clock(), UTC))

    def _retrying(self, attempt: Callable[[], T]) -> T:
        policy = self._retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.budget_s),
            wait=_wait(policy),
            retry=retry_if_exception(_is_transient),
            sleep=policy.sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Exception as error:
            if not _is_transient(error):
                raise
            raise TableauUnavailable(
                f"Tableau at {self.settings.server_url} kept failing ({type(error).__name__}: "
                f"{_describe(error)}) through {retrying.statistics.get('attempt_number', 1)} "
                "attempts; check Tableau's status and the network, then run again (nothing is "
                "published twice)", site=self.settings.site,
            ) from error


def _session_ended(error: NotSignedInError) -> bool:
    code = getattr(error, "code", None)
    return code == SESSION_ENDED_CODE or (code is None and not isinstance(error, FailedSignInError))


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, InternalServerError):
        return int(error.code) >= 500
    return isinstance(error, (TableauThrottled, requests.ConnectionError, requests.Timeout,
                              requests.exceptions.ChunkedEncodingError))


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        jittered = backoff(state)
        if isinstance(error, TableauThrottled) and error.retry_after_s is not None:
            return max(min(error.retry_after_s, policy.max_retry_after_s), jittered)
        return jittered

    return wait


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait_s = state.next_action.sleep if state.next_action else 0.0
    log.warning("Tableau call failed (%s: %s); retry %s in %.1f s", type(error).__name__,
                _describe(error), state.attempt_number, wait_s)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, InternalServerError):
        return f"HTTP {error.code} at {error.url}"
    return str(error).splitlines()[0][:200] if error is not None else ""


def _throttle_aware_session() -> requests.Session:
    """A requests session that turns Tableau's 429 into `TableauThrottled`, whatever its body."""
    session = requests.Session()
    session.hooks["response"].append(_raise_when_throttled)
    return session


def _raise_when_throttled(response: requests.Response, *args: object, **kwargs: object) -> None:
    if response.status_code != 429:
        return
    retry_after = response.headers.get("Retry-After")
    response.close()
    path = requests.utils.urlparse(response.url).path
    raise TableauThrottled(
        f"Tableau answered 429 Too Many Requests to {response.request.method} {path}"
        + (f"; Retry-After {retry_after} s" if retry_after else ""),
        _seconds(retry_after), path=path,
    )


def _seconds(retry_after: str | None) -> float | None:
    try:
        return float(retry_after) if retry_after is not None else None
    except ValueError:
        return None  # an HTTP date: rare from Tableau; the jittered backoff applies instead
