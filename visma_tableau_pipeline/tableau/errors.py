"""Typed errors of the Tableau side.

Every error says what failed and carries identifiers (`context`: site, data source, job, request
id), never a secret: no PAT secret, JWT, Connected App secret or session token is ever passed in,
because these messages end up in Dagster run logs and on the terminal.
"""

from __future__ import annotations


class TableauError(Exception):
    """Base of every error of this package; `context` holds identifiers, never secrets."""

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.context = context


class TableauConfigError(TableauError, ValueError):
    """The Tableau settings cannot be used (for example no credentials at all)."""


class TableauSignInError(TableauError):
    """Tableau refused the credentials, or the site does not exist. Not retried."""


class TableauThrottled(TableauError):
    """Tableau answered 429; `retry_after_s` is what it asked for (None when it did not say)."""

    def __init__(self, message: str, retry_after_s: float | None, **context: object) -> None:
        super().__init__(message, **context)
        self.retry_after_s = retry_after_s


class TableauUnavailable(TableauError):
    """Tableau kept answering 429 or 5xx, or the connection kept dropping, through the whole
    retry budget. The last failure is the `__cause__`."""


class TableauJobFailed(TableauError):
    """A Tableau job (publish, incremental update) finished without success; `notes` says why."""

    def __init__(self, message: str, *, job_id: str, finish_code: int | None, notes: str | None,
                 **context: object) -> None:
        super().__init__(message, job_id=job_id, finish_code=finish_code, **context)
        self.job_id = job_id
        self.finish_code = finish_code
        self.notes = notes


class ChangeSetError(TableauError, ValueError):
    """A table cannot be turned into a change set (duplicate keys, a missing key column)."""


class PayloadTooLarge(TableauError, ValueError):
    """A single row's payload file exceeds the byte limit, so no split can make it fit."""
