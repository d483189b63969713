"""List queries as Tableau takes them: `filter=field:op:value,...`, `sort=field:asc`, paging.

Paging follows Tableau: `pageSize` (default 100, at most 1000) and `pageNumber` (from 1); the
answer carries `<pagination pageNumber pageSize totalAvailable>`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from visma_tableau_pipeline.sandbox.tableau import errors
from visma_tableau_pipeline.sandbox.tableau.xmlio import element

T = TypeVar("T")
FieldGetter = Callable[[T], str | None]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "cieq": lambda a, b: a.lower() == b.lower(),
    "has": lambda a, b: b.lower() in a.lower(),
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class FilterClause:
    field: str
    op: str
    values: tuple[str, ...]


def parse_filter(expression: str) -> list[FilterClause]:
    """`name:eq:Sales,tags:in:[a,b]` → clauses. Commas inside `[...]` belong to the value."""
    clauses, depth, start = [], 0, 0
    for index, char in enumerate(expression + ","):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            if expression[start:index]:
                clauses.append(_parse_clause(expression[start:index]))
            start = index + 1
    return clauses


def _parse_clause(text: str) -> FilterClause:
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise errors.bad_request(f"Filter '{text}' is not of the form field:operator:value.", "400006")
    field, op, value = parts
    if op == "in":
        if not (value.startswith("[") and value.endswith("]")):
            raise errors.bad_request(f"Filter '{text}': 'in' takes [a,b,...].", "400006")
        return FilterClause(field, op, tuple(value[1:-1].split(",")))
    if op not in _COMPARE:
        raise errors.bad_request(f"Filter '{text}': unknown operator '{op}'.", "400006")
    return FilterClause(field, op, (value,))


def _matches(item: T, clause: FilterClause, fields: Mapping[str, FieldGetter[T]]) -> bool:
    getter = fields.get(clause.field)
    if getter is None:
        known = ", ".join(sorted(fields))
        raise errors.bad_request(
            f"Filtering on '{clause.field}' is not supported here; supported: {known}.", "400006"
        )
    actual = getter(item)
    if actual is None:
        return False
    if clause.op == "in":
        return actual in clause.values
    return _COMPARE[clause.op](actual, clause.values[0])


def _positive_int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise errors.bad_request(f"{name} must be a positive integer; got '{raw}'.", "400006")
    return int(raw)


def list_page(
    items: Sequence[T], query: Mapping[str, str], fields: Mapping[str, FieldGetter[T]]
) -> tuple[list[T], ET.Element]:
    """The requested page of `items` after filter and sort, with its `<pagination>` element."""
    selected = list(items)
    for clause in parse_filter(query.get("filter", "")):
        selected = [item for item in selected if _matches(item, clause, fields)]
    for sort_term in reversed([t for t in query.get("sort", "").split(",") if t]):
        field, _, direction = sort_term.partition(":")
        getter = fields.get(field)
        if getter is None:
            raise errors.bad_request(f"Sorting on '{field}' is not supported here.", "400006")
        selected.sort(key=lambda item: getter(item) or "", reverse=direction == "desc")
    page_size = min(_positive_int(query, "pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    page_number = _positive_int(query, "pageNumber", 1)
    start = (page_number - 1) * page_size
    pagination = element(
        "pagination",
        {"pageNumber": page_number, "pageSize": page_size, "totalAvailable": len(selected)},
    )
    return selected[start : start + page_size], pagination
