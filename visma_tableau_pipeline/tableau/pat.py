"""When the Tableau personal access token will expire, so that nobody learns it from a failed run.

Tableau Cloud revokes a PAT after 15 consecutive days unused; Tableau Server ends it after its
configured lifetime (one year by default) from its creation. The pipeline records each successful
sign-in with a PAT in a small JSON file (`$VTP_HOME/tableau-pat-usage.json` by default) and
`pat_status` turns that into ok / warn / expired with a message a person can act on. The Dagster
layer shows it as an asset check.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

CLOUD_IDLE_DAYS = 15
SERVER_LIFETIME_DAYS = 365
DEFAULT_WARN_DAYS = 3
USAGE_FILE_NAME = "tableau-pat-usage.json"

PatState = Literal["ok", "warn", "expired", "unknown"]


@dataclass(frozen=True)
class PatStatus:
    state: PatState
    message: str
    expires_at: datetime | None = None
    days_left: float | None = None


class PatUsageFile:
    """The last successful use of each PAT by name, as ISO timestamps in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def under(cls, home: Path) -> PatUsageFile:
        """The usage file in the project's home folder ($VTP_HOME)."""
        return cls(Path(home) / USAGE_FILE_NAME)

    def _read(self) -> dict[str, str]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("PAT usage file %s is unreadable; starting it afresh", self.path)
            return {}
        return {str(k): str(v) for k, v in document.items()} if isinstance(document, dict) else {}

    def last_used(self, pat_name: str) -> datetime | None:
        stamp = self._read().get(pat_name)
        return datetime.fromisoformat(stamp) if stamp else None

    def record_use(self, pat_name: str, at: datetime) -> None:
        """Remember `at` as the last use of `pat_name` (written atomically; never moves back)."""
        if at.tzinfo is None:
            raise ValueError("a PAT use time must carry its timezone")
        uses = self._read()
        earlier = uses.get(pat_name)
        if earlier and datetime.fromisoformat(earlier) >= at:
            return
        uses[pat_name] = at.astimezone(UTC).isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=self.path.parent, prefix=".pat-usage.")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(uses, file, indent=2, sort_keys=True)
        os.replace(scratch, self.path)


def pat_status(
    pat_name: str,
    deployment: Literal["cloud", "server"],
    *,
    now: datetime,
    last_used: datetime | None,
    created_on: date | None = None,
    lifetime_days: int = SERVER_LIFETIME_DAYS,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> PatStatus:
    """How long PAT `pat_name` has left: expired, warn (≤ `warn_days` days) or ok; unknown when
    nothing tells (no recorded use on Cloud, no creation date on Server)."""
    if deployment == "cloud":
        if last_used is None:
            return PatStatus("unknown", f"PAT {pat_name!r} has no recorded use yet; Tableau Cloud "
                                        f"revokes it after {CLOUD_IDLE_DAYS} days unused")
        expires_at = last_used + timedelta(days=CLOUD_IDLE_DAYS)
        why = (f"Tableau Cloud revokes it after {CLOUD_IDLE_DAYS} days unused; "
               f"last used {last_used:%Y-%m-%d %H:%M} UTC")
        remedy = "use it (run the pipeline) before then"
    else:
        if created_on is None:
            return PatStatus("unknown", f"PAT {pat_name!r}: its creation date is not configured, so "
                                        f"its {lifetime_days}-day lifetime cannot be tracked")
        expires_at = datetime.combine(created_on, time(), UTC) + timedelta(days=lifetime_days)
        why = f"created {created_on}, {lifetime_days}-day lifetime on Tableau Server"
        remedy = "create a new PAT and update TABLEAU_PAT_NAME / TABLEAU_PAT_SECRET"
    days_left = (expires_at - now).total_seconds() / 86400
    if days_left <= 0:
        return PatStatus("expired", f"PAT {pat_name!r} expired on {expires_at:%Y-%m-%d} ({why}); "
                                    "create a new PAT and update TABLEAU_PAT_NAME / TABLEAU_PAT_SECRET",
                         expires_at, days_left)
    state: PatState = "warn" if days_left <= warn_days else "ok"
    return PatStatus(state, f"PAT {pat_name!r} expires in {days_left:.1f} days, on "
                            f"{expires_at:%Y-%m-%d} ({why}); {remedy}", expires_at, days_left)
