"""Typed errors of the state database.

Every error says what failed and carries the identifiers needed to find it (`context`), never a
secret value: these messages end up in Dagster run logs and on the terminal.
"""

from __future__ import annotations


class StateError(Exception):
    """Base of every state-database error; `context` holds identifiers (company, entity, name)."""

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.context = context


class StateConfigError(StateError, ValueError):
    """The state database URL or its settings cannot be used."""


class StateUnavailableError(StateError):
    """The state database could not be reached within the retry budget, or the connection was
    lost during a transaction (nothing of which was committed). Names the database, never its
    password."""


class PayloadError(StateError, ValueError):
    """A record payload cannot be stored exactly (a float, NaN, or a value JSON cannot hold)."""


class WatermarkError(StateError, ValueError):
    """A watermark value is not a timestamp in a format Visma sends."""


class InboxError(StateError, ValueError):
    """A webhook notification cannot be stored (for example an unknown source)."""


class LedgerError(StateError, ValueError):
    """A delivery cannot be recorded (for example an unknown action)."""


class SecretKeyError(StateError):
    """The secret key is missing, malformed, unsafe, or not the one the secrets were stored with."""


class SecretKeyMissingError(SecretKeyError):
    """Neither VTP_SECRET_KEY nor a key file gives a key."""


class SecretKeyFileError(SecretKeyError):
    """The key file exists but cannot be used safely (readable by others, malformed)."""


class SecretTamperedError(StateError):
    """A stored secret does not decrypt under its own name: the row was altered or swapped."""


class SecretNameError(StateError, ValueError):
    """A secret name the settings never read (names look like `tableau/pat_secret`)."""
