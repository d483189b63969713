"""Query parameters of a list request, checked the way the real API checks them.

Malformed values (pageNumber 0, a date that is no date, a period that is no YYYYPP, an unknown
enum value) answer 400 with Visma's exception body. Parameters an endpoint does not know are
ignored, as the real API ignores them (and so returns unfiltered rows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from visma_tableau_pipeline.sandbox.visma.endpoints import Endpoint
from visma_tableau_pipeline.sandbox.visma.errors import validation_error
from visma_tableau_pipeline.sandbox.visma.store import Query
from visma_tableau_pipeline.sandbox.visma.wire import parse_query_moment
from visma_tableau_pipeline.visma.catalogue import Delta

CONDITIONS = (">", ">=", "<", "<=")
_PERIOD = re.compile(r"\d{4}(0[1-9]|1[0-2])")
_INTEGER = re.compile(r"-?\d{1,9}")


@dataclass(frozen=True)
class ListRequest:
    query: Query
    start: int  # first record (or journal line) of the answer
    size: int  # how many at most
    page_number: int
    page_size: int  # applied page size (paged endpoints)


def _integer(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _INTEGER.fullmatch(text.strip()):
        raise validation_error(f"The value '{text}' is not valid for {name}.")
    return int(text)


def parse_list_request(endpoint: Endpoint, params: Mapping[str, str], path_value: str | None,
                       modified_field: str) -> ListRequest:
    """The filters and window of a list request, or a 400 ApiError."""
    equals: list[tuple[str, Any]] = []
    supplied = False
    for param in endpoint.params:
        text = params.get(param.name)
        if text is None or text == "":
            continue
        supplied = True
        equals.append((param.field, _typed(param.name, param.kind, param.values, text)))
    if endpoint.path_field and path_value is not None:
        equals.append((endpoint.path_field, path_value))

    modified = None
    if endpoint.delta is not Delta.NONE and params.get("lastModifiedDateTime"):
        text = params["lastModifiedDateTime"]
        moment = parse_query_moment(text)
        if moment is None:
            raise validation_error(f"Invalid lastModifiedDateTime '{text}'.",
                                   "Use yyyy-MM-dd, yyyy-MM-dd HH:mm:ss or yyyy-MM-dd HH:mm:ss.FFF")
        condition = ">="
        if endpoint.delta is Delta.WITH_CONDITION and params.get("lastModifiedDateTimeCondition"):
            condition = params["lastModifiedDateTimeCondition"]
            if condition not in CONDITIONS:
                raise validation_error(f"Invalid lastModifiedDateTimeCondition '{condition}'.",
                                       "Allowed: >, >=, <, <=")
        modified = (condition, moment)
        supplied = True

    period = None
    if endpoint.period_param and params.get(endpoint.period_param):
        period = params[endpoint.period_param]
        if not _PERIOD.fullmatch(period):
            raise validation_error(f"Invalid {endpoint.period_param} '{period}'. Expected format YYYYPP.")

    if endpoint.requires_filter and not (supplied or params.get("greaterThanValue")):
        raise validation_error("At least one filter parameter must be provided for this request.",
                               "Filter on lastModifiedDateTime, status, week or type.")

    query = Query(modified, period, tuple(equals), modified_field)
    if endpoint.paged:
        page_number = _integer(params, "pageNumber")
        page_size = _integer(params, "pageSize")
        if page_number is not None and page_number < 1:
            raise validation_error(f"Invalid pageNumber {page_number}. Page numbers start at 1.")
        if page_size is not None and page_size < 1:
            raise validation_error(f"Invalid pageSize {page_size}. The page size must be at least 1.")
        page_number = page_number or 1
        applied = min(page_size or endpoint.max_page_size, endpoint.max_page_size)
        return ListRequest(query, (page_number - 1) * applied, applied, page_number, applied)
    skip = _integer(params, "skipRecords") or 0
    count = _integer(params, "numberToRead")
    if skip < 0 or (count is not None and count < 1):
        raise validation_error("Invalid skipRecords or numberToRead.")
    return ListRequest(query, skip, count if count is not None else 1 << 40, 1, 0)


def _typed(name: str, kind: str, values: tuple[str, ...], text: str) -> Any:
    if kind == "bool":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise validation_error(f"The value '{text}' is not valid for {name}.")
        return lowered == "true"
    if kind == "enum":
        for value in values:
            if value.lower() == text.lower():
                return value
        raise validation_error(f"The value '{text}' is not valid for {name}.",
                               f"Allowed values: {', '.join(values)}")
    return text
