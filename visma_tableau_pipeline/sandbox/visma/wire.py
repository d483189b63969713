"""Visma's wire formats: exact JSON numbers, local timestamps without a zone, YYYYPP periods.

Amounts leave the sandbox as JSON numbers written from exact decimal digits, never through a
binary float. The stdlib encoder cannot emit a raw number for an object, so builders put amounts
in as marked strings (`money(cents)`), the C encoder writes them quoted, and `render_json` strips
the quotes together with the marks. Decimal values (from overlay records) take the same route.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_MARK = "\ue000"  # a private-use character: never part of real data
_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=lambda value: _decimal_mark(value)
)


def _decimal_mark(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{_MARK}{value}{_MARK}"
    raise TypeError(f"cannot write {type(value).__name__} as Visma JSON")


def money(cents: int) -> str:
    """An amount in minor units, as a marked JSON number with two decimals (-5 -> -0.05)."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{_MARK}{sign}{whole}.{fraction:02d}{_MARK}"


def number(text: str) -> str:
    """Any decimal literal (an exchange rate, a quantity) as a marked JSON number."""
    return f"{_MARK}{text}{_MARK}"


def render_json(value: Any) -> str:
    """Compact JSON text with every marked number and Decimal written as a bare number."""
    return _ENCODER.encode(value).replace(f'"{_MARK}', "").replace(f'{_MARK}"', "")


def parse_json(text: str | bytes) -> Any:
    """Parse Visma JSON with exact decimals, the way the project's client must."""
    return json.loads(text, parse_float=Decimal)


def clean(record: dict) -> dict:
    """A builder's record (with marked numbers) as plain JSON data with Decimal amounts."""
    return parse_json(render_json(record))


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers (for cents)."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


# --- time -----------------------------------------------------------------------------------

def ms_of(moment: datetime) -> int:
    """Milliseconds since 1970 of a naive local datetime (Visma's timestamps carry no zone)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_DATE_TEXT: dict[int, str] = {}


def _date_text(ordinal: int) -> str:
    """`2025-03-14` (cached: few distinct days exist)."""
    text = _DATE_TEXT.get(ordinal)
    if text is None:
        text = _DATE_TEXT[ordinal] = date.fromordinal(ordinal).isoformat()
    return text


def timestamp(ms: int) -> str:
    """`2025-03-14T10:22:31.437`, the form of lastModifiedDateTime."""
    days, rest = divmod(ms, 86_400_000)
    seconds, milli = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date_text(_EPOCH_ORDINAL + days)}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}"


def day_text(ordinal: int) -> str:
    """`2025-03-14T00:00:00`, the form of document dates."""
    return f"{_date_text(ordinal)}T00:00:00"


def day_of_ms(ms: int) -> int:
    """The date ordinal of a timestamp in milliseconds."""
    return _EPOCH_ORDINAL + ms // 86_400_000


# yyyy-MM-dd, optionally with ' ' or 'T' and HH:mm:ss, optionally .F to .FFF
_QUERY_MOMENT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?)?"
)


def parse_query_moment(text: str) -> int | None:
    """Milliseconds of a lastModifiedDateTime query value, or None when it is malformed."""
    match = _QUERY_MOMENT.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0").ljust(3, "0")) * 1000,
        )
    except ValueError:
        return None
    return ms_of(moment)


def parse_wire_timestamp(text: str) -> int:
    """Milliseconds of a timestamp the sandbox itself wrote (record fields)."""
    return ms_of(datetime.fromisoformat(text))
