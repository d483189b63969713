"""Reading raw Visma records (JSON dicts, decimals already `Decimal`) into plain values.

Visma sends nested references as small objects (`{"supplier": {"number": ..., "name": ...}}`),
dates as `2025-03-14T00:00:00`, `postPeriod` as MMYYYY and `financialPeriod` as YYYYPP. These
helpers are the one place that knows those shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from visma_tableau_pipeline.marts.schema import RejectedValue
from visma_tableau_pipeline.visma.catalogue import Entity, record_key
from visma_tableau_pipeline.visma.timestamps import parse_timestamp as visma_timestamp

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def field(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`supplier.number`), or None when any step is missing."""
    value: Any = record
    for step in _steps(path):
        if not isinstance(value, dict):  # JSON objects are dicts; no ABC check in the hot path
            return None
        value = value.get(step)
    return value


def text(record: Mapping[str, Any], path: str) -> str | None:
    """A field as text; numbers and ids that Visma sends as JSON numbers become their digits.

    An object or a list where a value belongs, and a lone surrogate (`"\\ud800"`, which no
    Unicode text can hold), are refused rather than dropped.
    """
    value = field(record, path)
    if value is None:
        return None
    if isinstance(value, str):
        if not value.isascii() and _LONE_SURROGATE.search(value):
            raise RejectedValue(path, value, "holds a lone surrogate, which is not text")
        return value
    if isinstance(value, (dict, list)):
        raise RejectedValue(path, value, "an object or list where the contract has a value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def amount(record: Mapping[str, Any], path: str) -> Decimal | None:
    """A numeric field as an exact Decimal (ints become Decimals; floats are refused).

    Anything but a JSON number is outside Visma's contract: `RejectedValue` names it.
    """
    value = field(record, path)
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError(f"{path} is a binary float ({value!r}); parse Visma JSON with parse_float=Decimal")
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise RejectedValue(path, value, "not a number, which the contract says it is")


def integer(record: Mapping[str, Any], path: str) -> int | None:
    """An integer field; a fraction or a text is refused rather than cut or guessed."""
    value = field(record, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value != int(value):
        raise RejectedValue(path, value, "not an integer, which the contract says it is")
    return int(value)


def boolean(record: Mapping[str, Any], path: str) -> bool | None:
    """A boolean field; `"false"` or 0 are refused rather than read as true or false."""
    value = field(record, path)
    if value is None or isinstance(value, bool):
        return value
    raise RejectedValue(path, value, "not true or false, which the contract says it is")


def parse_timestamp(value: Any, path: str = "timestamp") -> datetime | None:
    """A Visma date-time string as a naive datetime: the wall clock as Visma wrote it.

    Read by `visma/timestamps.parse_timestamp`, the one reader of Visma's forms (`T` or space,
    0-7 fraction digits, `Z` or an offset). Visma does not document its time zone, so an offset
    is dropped, not applied: a document dated `2025-03-14T00:00:00+06:00` stays on the 14th.
    Anything else is `RejectedValue` naming `path`.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, (str, datetime)):
        raise RejectedValue(path, value, "not a date-time text, which the contract says it is")
    try:
        return visma_timestamp(value)
    except (ValueError, OverflowError):
        raise RejectedValue(path, value, "not an ISO 8601 date-time") from None


def timestamp(record: Mapping[str, Any], path: str) -> datetime | None:
    """A date-time field as a naive datetime."""
    return parse_timestamp(field(record, path), path)


def day(record: Mapping[str, Any], path: str) -> date | None:
    """A date-time field as a date (Visma sends dates as midnight timestamps)."""
    parsed = timestamp(record, path)
    return None if parsed is None else parsed.date()


def period_from_post_period(value: str | None) -> str | None:
    """`postPeriod` MMYYYY as the YYYYPP financial period the tables use (`032025` → `202503`)."""
    if not value:
        return None
    if len(value) != 6 or not value.isdigit() or not 1 <= int(value[:2]) <= 12:
        raise RejectedValue("postPeriod", value, "not a period MMYYYY")
    return value[2:] + value[:2]


def financial_period(record: Mapping[str, Any], period_field: str = "financialPeriod",
                     post_period_field: str = "postPeriod") -> str | None:
    """The record's YYYYPP financial period, from `financialPeriod` or else from `postPeriod`."""
    return text(record, period_field) or period_from_post_period(text(record, post_period_field))


def lenient_period(value: str | None) -> str | None:
    """A period the spec leaves unformatted (payments' `applicationPeriod`) as YYYYPP.

    YYYYPP starts with a year; MMYYYY ends with one. A six-digit value whose first four digits
    are a plausible year (1900-2199) is read as YYYYPP, otherwise as MMYYYY.
    """
    if not value:
        return None
    if len(value) == 6 and value.isdigit() and 1900 <= int(value[:4]) <= 2199:
        return value
    return period_from_post_period(value)


def unique_by_key(entity: Entity, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Records with duplicates on (company_id, entity key) removed, the last one winning.

    Offset paging can return a record twice within one scan; the later copy is the newer read.
    """
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for record in records:
        latest[(str(record.get("company_id", "")), *record_key(entity, record))] = record
    return iter(latest.values())
