"""Visma timestamps: parse what the API emits, format what its filters accept, find the watermark.

The API writes `yyyy-MM-dd`, `yyyy-MM-ddTHH:mm:ss`, with a space instead of `T`, with 1 to 7
fraction digits, sometimes with `Z` or an offset. Its filters accept `yyyy-MM-dd[ HH:mm:ss[.FFF]]`
and no offset. The timezone of these values is not documented, so a parsed value keeps the wall
clock exactly as Visma wrote it (an offset is dropped, not applied): a value read back and sent as
a filter then means what Visma meant. The watermark is always the largest value Visma returned,
never the local clock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

log = logging.getLogger(__name__)

# yyyy-MM-ddTHH:mm:ss with a fixed number (up to 6, all kept when parsed) of fraction digits:
# among values of one length, text order is time order and equal texts are equal times
_SORTABLE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?")
# yyyy-MM-ddTHH:mm:ss, and with 3 or 6 fraction digits: what fromisoformat reads exactly
_ISO_LENGTHS = frozenset({19, 23, 26})
_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_timestamp(value: str | datetime) -> datetime:
    """A naive datetime from any timestamp format Visma emits; ValueError names the bad value."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if len(value) in _ISO_LENGTHS and value[10:11] in "T ":  # the common case, ten times faster
        try:
            return datetime.fromisoformat(value).replace(tzinfo=None)  # offsets are dropped
        except ValueError:
            pass
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        raise ValueError(f"not a Visma timestamp: {value!r}")
    time_part = match["time"] or "00:00:00"
    if time_part.count(":") == 1:
        time_part += ":00"
    microseconds = int((match["fraction"] or "0")[:6].ljust(6, "0"))
    parsed = datetime.strptime(f"{match['date']} {time_part}", "%Y-%m-%d %H:%M:%S")
    return parsed.replace(microsecond=microseconds)


def format_for_query(value: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss[.fff]`, the form Visma's `lastModifiedDateTime` filter accepts.

    Fractions are cut (not rounded) to milliseconds, so a `>=` filter never skips a record.
    """
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text


def max_modified(
    records: Iterable[Mapping],
    field: str = "lastModifiedDateTime",
    current: str | None = None,
    latest_allowed: datetime | None = None,
) -> str | None:
    """The next watermark: the largest `field` among `records` and `current`, as Visma wrote it.

    The value is returned verbatim (all its fraction digits), compared by its parsed time; of
    equal times the earliest wins, `current` first. None when neither the records nor `current`
    carry a value.

    Values in one fixed-width form (`yyyy-MM-ddTHH:mm:ss` with the same number of fraction
    digits) sort as text in time order, so only the largest of each width is parsed: parsing
    every record's value cost more than the rest of the sync's work on it. (A value in that
    form that is no real time, such as month 13, is therefore only noticed when it is largest.)

    A value that is no timestamp (outside Visma's contract: `"yesterday"`, a number) is left
    out, with a warning: the watermark then follows the records that have one, and the record
    itself is stored and held back from the tables that read the field (`marts/holdback.py`).
    So is a time after `latest_allowed` (a record stamped in the year 9999 would otherwise move
    the watermark past every change still to come, and no delta would read them).
    """
    records = records if isinstance(records, list) else list(records)
    try:
        return _latest(_candidates(records, field, current), latest_allowed)
    except _NOT_A_TIMESTAMP:  # the rare slow path: every value parsed, the bad ones left out
        every = [(-1, current)] if current else []
        every += [(position, record.get(field)) for position, record in enumerate(records)]
        valid = []
        for position, raw in every:
            if not raw:
                continue
            try:
                _checked(raw, latest_allowed)
            except _NOT_A_TIMESTAMP as error:
                log.warning("%s %r left out of the watermark: %s", field, raw, error)
                continue
            valid.append((position, raw))
        return _latest(valid, latest_allowed)


class _TooLate(ValueError):
    """A modification time after the latest the watermark may take."""


_NOT_A_TIMESTAMP = (ValueError, TypeError, AttributeError, OverflowError)


def _checked(raw: str, latest_allowed: datetime | None) -> datetime:
    value = parse_timestamp(raw)
    if latest_allowed is not None and value > latest_allowed:
        raise _TooLate(f"later than {latest_allowed:%Y-%m-%d %H:%M}, so not a time Visma has reached")
    return value


def _latest(candidates: list[tuple[int, str]], latest_allowed: datetime | None) -> str | None:
    """The latest of (position, value) candidates; of equal times the earliest position."""
    latest, latest_time, latest_position = None, None, 0
    for position, raw in candidates:
        value = _checked(raw, latest_allowed)
        if latest_time is None or value > latest_time or (value == latest_time and position < latest_position):
            latest, latest_time, latest_position = raw, value, position
    return latest


def _candidates(records: list[Mapping], field: str, current: str | None) -> list[tuple[int, str]]:
    """The values worth parsing: `current`, the largest of each sortable width, and the rest."""
    candidates: list[tuple[int, str]] = [(-1, current)] if current else []
    widest: dict[int, tuple[int, str]] = {}  # length -> (position, the largest such value)
    for position, record in enumerate(records):
        raw = record.get(field)
        if not raw:
            continue
        if type(raw) is str and _SORTABLE.fullmatch(raw):
            largest = widest.get(len(raw))
            if largest is None or raw > largest[1]:
                widest[len(raw)] = (position, raw)
        else:
            candidates.append((position, raw))
    candidates.extend(widest.values())
    return candidates
