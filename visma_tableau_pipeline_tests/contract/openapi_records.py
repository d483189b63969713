"""Hypothesis strategies for Visma records drawn from Visma's OpenAPI document, not the sandbox.

The sandbox only produces the values its author thought of; Visma produces whatever its contract
admits. Everything found wrong lately was such a value (a 17-digit exchange rate, a date of
"yesterday"), so these strategies read each catalogue entity's item schema out of the document
(the DTO of its GET answer, `$ref`s resolved) and draw every field from its declared type and
format, leaning on the edges:

- `number`/`double`: JSON numbers as Visma's serializer writes a double: shortest round-trip
  texts (17 significant digits), tiny and huge magnitudes, more decimals than a currency has,
  small negatives (-0.05), integral values written with and without `.0`.
- `integer` `int32`/`int64`: the whole declared range.
- `date-time`: `2025-03-14T00:00:00`, date only, a space for `T`, 1 to 7 fraction digits, `Z`
  or an offset, .NET's `DateTime.MinValue`/`MaxValue`.
- `enum`: the listed values and some unknown ones (Visma adds values without notice).
- strings: long texts, characters outside the BMP, control characters.
- optional fields: absent, null, or a value. The document marks no field `nullable` (nor
  `required` in these DTOs), yet Visma writes unset properties as null; a field that is
  `nullable` gets null as well, a `required` one is always present.

Nesting is cut at `MAX_DEPTH` objects and arrays at `MAX_ITEMS` items, so that a record is drawn in
milliseconds. Each record carries its entity's key fields with unique, valid values and
numbered lines (documents never repeat a line number), as Visma's own lists do.

`malformed_records` mutates one field of such a record out of the contract (a date of
"yesterday", text where a number is, "NaN"), the shape of the records that have stopped syncs.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from hypothesis import strategies as st

from visma_tableau_pipeline.visma.catalogue import Entity

MAX_DEPTH = 3  # objects nested in this many objects (arrays not counted) are drawn empty
MAX_ITEMS = 3  # items of any array
# The paging envelope is not part of a record: the harness puts it on as Visma's pages do.
ENVELOPE_FIELDS = frozenset({"metadata"})

Json = Any  # a decoded JSON value: dict, list, str, int, Decimal, bool or None


# -- values by type and format ---------------------------------------------------------------

_EDGE_DOUBLES = (
    "1.0275229357798166",  # the exchange rate that stopped ap_invoices
    "0.30000000000000004", "-0.05", "-0.01", "0.005", "0.125", "1E-7", "5E-324",
    "2.2250738585072014E-308", "1.7976931348623157E+308", "-1.7976931348623157E+308",
    "9007199254740993", "123456789012345.67", "99999999999999999", "1E+16", "100.0", "0", "-0.0",
)


def doubles() -> st.SearchStrategy[Json]:
    """A JSON number as Visma writes a `double`, decoded exactly (Decimal, or int if integral)."""
    shortest = st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Decimal(repr(f)))
    rates = st.floats(min_value=0.0001, max_value=20).map(lambda f: Decimal(repr(f)))
    amounts = st.decimals(min_value=-10**12, max_value=10**12, places=2, allow_nan=False)
    fine = st.integers(0, 8).flatmap(
        lambda places: st.decimals(min_value=-10**6, max_value=10**6, places=places, allow_nan=False)
    )
    return st.one_of(
        st.sampled_from(_EDGE_DOUBLES).map(Decimal), shortest, rates, amounts, fine,
        st.integers(-10**15, 10**15),
    )


def integers(fmt: str | None) -> st.SearchStrategy[int]:
    """An integer within its format's range (int32 unless the format says int64)."""
    bits = 64 if fmt == "int64" else 32
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.sampled_from((0, 1, -1, low, high)), st.integers(low, high))


_DOTNET_MIN, _DOTNET_MAX = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)


@st.composite
def date_times(draw: st.DrawFn) -> str:
    """A `date-time` in one of the forms Visma writes (see the module docstring)."""
    moment = draw(st.one_of(
        st.sampled_from((_DOTNET_MIN, _DOTNET_MAX, datetime(2025, 3, 14), datetime(2024, 2, 29, 23, 59, 59))),
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),
        st.datetimes(min_value=_DOTNET_MIN, max_value=_DOTNET_MAX),
    ))
    day_text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"  # strftime drops the zeros of year 1
    if draw(st.integers(0, 9)) == 0:
        return day_text
    separator = draw(st.sampled_from("TTTT "))
    text = f"{day_text}{separator}{moment:%H:%M:%S}"
    fraction_digits = draw(st.sampled_from((0, 0, 1, 2, 3, 3, 4, 5, 6, 7)))
    if fraction_digits:
        text += "." + draw(st.text("0123456789", min_size=fraction_digits, max_size=fraction_digits))
    zone = draw(st.sampled_from(("", "", "", "Z", "offset")))
    if zone == "offset":
        minutes = draw(st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15))
        sign = "-" if minutes < 0 else "+"
        text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    else:
        text += zone
    return text


_NON_BMP = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, categories=("L", "S", "N", "Co"))
_ANY_CHARACTER = st.characters(exclude_categories=("Cs",))  # all but lone surrogates, NUL included


def texts() -> st.SearchStrategy[str]:
    """Short texts, texts with characters outside the BMP, long texts (several KB)."""
    short = st.text(_ANY_CHARACTER, max_size=20)
    astral = st.text(st.one_of(_NON_BMP, st.sampled_from("aØ 😀𝄞")), min_size=1, max_size=12)
    long = st.tuples(st.text(_ANY_CHARACTER, min_size=1, max_size=8), st.integers(300, 1500)).map(
        lambda part: part[0] * part[1]
    )
    return st.one_of(short, short, astral, long)


def unknown_enum_values(known: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Enum values the document does not list: what Visma sends after adding one."""
    return st.one_of(
        st.sampled_from(("Unknown", "PendingApproval2026", "")),
        st.text(string.ascii_letters, min_size=1, max_size=12),
    ).filter(lambda value: value not in known)


@cache
def enum_values(known: tuple[str, ...]) -> st.SearchStrategy[str]:
    """The listed values, mostly, and now and then one the document does not list."""
    return st.one_of(st.sampled_from(known), st.sampled_from(known), unknown_enum_values(known))


# Periods are plain strings in the document; their descriptions say YYYYPP or MMYYYY. Mostly
# those forms, sometimes any text (all the contract promises).
_YYYYPP = st.builds(lambda y, p: f"{y:04d}{p:02d}", st.integers(1990, 2100), st.integers(1, 13))
_MMYYYY = st.builds(lambda p, y: f"{p:02d}{y:04d}", st.integers(1, 13), st.integers(1990, 2100))
PERIOD_FIELDS: dict[str, st.SearchStrategy[str]] = {
    "financialPeriod": st.one_of(_YYYYPP, _YYYYPP, texts()),
    "postPeriod": st.one_of(_MMYYYY, _MMYYYY, texts()),
    "applicationPeriod": st.one_of(_YYYYPP, _MMYYYY, texts()),
}

INT32, INT64 = integers("int32"), integers("int64")
_SCALARS: dict[tuple[str, str | None], st.SearchStrategy[Json]] = {
    ("number", "double"): doubles(),
    ("number", None): doubles(),
    ("string", "date-time"): date_times(),
    ("string", "uuid"): st.uuids().map(str),
    ("string", "byte"): st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()),
    ("string", None): texts(),
    ("boolean", None): st.booleans(),
}


# -- the document ----------------------------------------------------------------------------

class OpenApiRecords:
    """Strategies for the records of catalogue entities, read from one OpenAPI 3.0 document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self._schemas: Mapping[str, Any] = document["components"]["schemas"]
        self._cache: dict[tuple[int, int, str], st.SearchStrategy[Json]] = {}

    def item_schema_name(self, entity: Entity) -> str:
        """The component schema of one item of the entity's GET answer (an array's items)."""
        answer = self.document["paths"][entity.path]["get"]["responses"]["200"]
        schema = answer["content"]["application/json"]["schema"]
        schema = schema.get("items", schema)
        return schema["$ref"].rsplit("/", 1)[-1]

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """A schema with its `$ref` (to `#/components/schemas/...`) followed."""
        while "$ref" in schema:
            schema = self._schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def schema_at(self, entity: Entity, path: str) -> Mapping[str, Any] | None:
        """The schema of a dotted field path of the entity's items (through arrays), if declared."""
        schema = self.resolve(self._schemas[self.item_schema_name(entity)])
        for step in path.split("."):
            while schema.get("type") == "array":
                schema = self.resolve(schema["items"])
            found = schema.get("properties", {}).get(step)
            if found is None:
                return None
            schema = self.resolve(found)
        return schema

    def values(self, schema: Mapping[str, Any], depth: int = 0, name: str = "") -> st.SearchStrategy[Json]:
        """Values of one schema, as decoded JSON (numbers with a fraction as Decimal).

        Built once per schema, depth and field name: building strategies, not drawing from
        them, was most of the time a record took.
        """
        key = (id(schema), depth, name)
        if key not in self._cache:
            resolved = self.resolve(schema)
            strategy = self._values(resolved, depth, name)
            if resolved.get("nullable"):
                strategy = st.none() | strategy
            self._cache[key] = strategy
        return self._cache[key]

    def _values(self, schema: Mapping[str, Any], depth: int, name: str) -> st.SearchStrategy[Json]:
        kind, fmt = schema.get("type"), schema.get("format")
        if "enum" in schema:
            return enum_values(tuple(schema["enum"]))
        if name in PERIOD_FIELDS and kind == "string":
            return PERIOD_FIELDS[name]
        if kind == "integer":
            return INT64 if fmt == "int64" else INT32
        if kind == "array":
            return st.lists(self.values(schema["items"], depth), max_size=MAX_ITEMS)
        if kind == "object" or "properties" in schema:
            return self.objects(schema, depth)
        scalar = _SCALARS.get((kind, fmt), _SCALARS.get((kind, None)))
        if scalar is None:
            raise ValueError(f"no strategy for type {kind!r} format {fmt!r} ({name or 'item'})")
        return scalar

    def objects(self, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[dict[str, Json]]:
        """An object: required properties always, every other one absent, null or a value."""
        if depth >= MAX_DEPTH:
            return st.just({})
        key = (id(schema), depth, "{}")
        if key not in self._cache:
            required = set(schema.get("required", ()))
            properties = {
                name: self.values(prop, depth + 1, name)
                for name, prop in schema.get("properties", {}).items()
                if name not in ENVELOPE_FIELDS
            }
            self._cache[key] = st.fixed_dictionaries(
                {name: value for name, value in properties.items() if name in required},
                optional={name: st.none() | value for name, value in properties.items() if name not in required},
            )
        return self._cache[key]

    def records(self, entity: Entity, min_size: int = 1, max_size: int = 6) -> st.SearchStrategy[list[dict]]:
        """Records of `entity` with unique, valid keys and numbered lines, as one page lists them."""
        return _records(self, entity, min_size, max_size)

    def key_values(self, entity: Entity, field: str) -> st.SearchStrategy[Json]:
        """Valid values of one key field: never null nor empty, of the field's declared type."""
        schema = self.schema_at(entity, field) or {"type": "string"}
        if "enum" in schema:
            return st.sampled_from(tuple(schema["enum"]))
        if schema.get("type") == "integer":
            return st.integers(1, 2**31 - 1)
        if field.rsplit(".", 1)[-1] in PERIOD_FIELDS:
            return _YYYYPP
        return KEY_TEXTS


# Key texts: what Visma's CD fields hold (letters, digits, separators), plus the characters the
# store escapes in keys (`|`, `\`) and some outside ASCII and the BMP.
KEY_TEXTS = st.text(string.ascii_letters + string.digits + "-_/. |\\ÆØÅæøå😀", min_size=1, max_size=12).filter(
    lambda key: key.strip() == key
)


def _set_path(record: dict, path: str, value: Json) -> None:
    *parents, last = path.split(".")
    target = record
    for step in parents:
        child = target.get(step)
        if not isinstance(child, dict):
            child = target[step] = {}
        target = child
    target[last] = value


# Lists whose items Visma numbers within a document: list field -> numbering field. Numbers are
# unique within their list; the tables key their lines by them.
LINE_NUMBERS: dict[str, str] = {
    "invoiceLines": "lineNumber", "lines": "lineNumber", "journalTransactionLines": "lineNumber",
    "summary": "lineNumber", "segments": "segmentId", "segmentValues": "valueId",
}


def _number_lines(value: Json) -> None:
    """Give the items of numbered lists (at any depth) the numbers 1, 2, ... in order."""
    if isinstance(value, dict):
        for name, child in value.items():
            numbering = LINE_NUMBERS.get(name)
            if numbering and isinstance(child, list):
                for number, item in enumerate(child, start=1):
                    if isinstance(item, dict):
                        item[numbering] = number if numbering != "valueId" else f"V{number}"
            _number_lines(child)
    elif isinstance(value, list):
        for item in value:
            _number_lines(item)


@st.composite
def _records(draw: st.DrawFn, source: OpenApiRecords, entity: Entity, min_size: int, max_size: int) -> list[dict]:
    schema = source.resolve(source.document["components"]["schemas"][entity.schema])
    keys = draw(st.lists(
        st.tuples(*(source.key_values(entity, field) for field in entity.key)),
        min_size=min_size, max_size=max_size, unique=True,
    ))
    records = []
    for key in keys:
        record = draw(source.objects(schema, 0))
        for field, value in zip(entity.key, key, strict=True):
            _set_path(record, field, value)
        _number_lines(record)
        records.append(record)
    return records


# -- outside the contract --------------------------------------------------------------------

@dataclass(frozen=True)
class Mutation:
    """Where a record was taken outside its contract, and with what."""

    path: tuple[str | int, ...]  # keys and list indexes from the record's top
    value: Json

    @property
    def dotted(self) -> str:
        """The field as the tables' source paths spell it (list indexes left out)."""
        return ".".join(str(step) for step in self.path if isinstance(step, str))


_NOT_A_DATE = ("yesterday", "", "2025-13-45T00:00:00", "14.03.2025", "2025-02-30T00:00:00", "0000-00-00T00:00:00")
_NOT_A_NUMBER = ("NaN", "Infinity", "12,50", "1.2.3", "", "N/A", "-")
_NOT_A_TEXT: tuple[Json, ...] = (123, Decimal("4.5"), True, {"id": "x"}, ["x"], "\ud800")
_NOT_A_BOOL: tuple[Json, ...] = ("true", 1, "yes")


def _leaves(value: Json, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Json]]:
    if isinstance(value, dict):
        for name, child in value.items():
            yield from _leaves(child, (*path, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, (*path, index))
    else:
        yield path, value


def _wrong_values(value: Json) -> tuple[Json, ...]:
    """Values of another type than `value`, the kind a broken record holds in its place."""
    if isinstance(value, bool):
        return _NOT_A_BOOL
    if isinstance(value, (int, Decimal)):
        return _NOT_A_NUMBER
    if isinstance(value, str) and value[:4].isdigit() and value[4:5] == "-":
        return _NOT_A_DATE
    return _NOT_A_TEXT


@st.composite
def _malformed(draw: st.DrawFn, source: OpenApiRecords, entity: Entity, max_size: int) -> tuple[list[dict], Mutation]:
    records = draw(source.records(entity, min_size=1, max_size=max_size))
    index = draw(st.integers(0, len(records) - 1))
    key_roots = {field.split(".")[0] for field in entity.key}
    leaves = [(path, value) for path, value in _leaves(records[index]) if path[0] not in key_roots]
    if not leaves:  # every field the record has is a key: give it one the document declares
        leaves = [((entity.modified_field,), "2025-03-14T00:00:00")]
    path, value = draw(st.sampled_from(leaves))
    wrong = draw(st.sampled_from(_wrong_values(value)))
    target: Any = records[index]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = wrong
    return records, Mutation((index, *path), wrong)


def malformed_records(source: OpenApiRecords, entity: Entity, max_size: int = 4) -> st.SearchStrategy[tuple[list[dict], Mutation]]:
    """Records of `entity` of which one holds one field outside the contract; and which field.

    The mutation's path starts with the record's index in the list.
    """
    return _malformed(source, entity, max_size)


_WALL_CLOCK = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?"
)


def wall_clock(value: str) -> datetime | None:
    """The time a `date_times()` text means as Visma wrote it (offset dropped, fraction cut to µs).

    The expectation the harness holds the tables to: Visma's timezone is not documented
    (API-FACTS), so the wall clock it wrote is kept. None when `value` is no such text.
    """
    match = _WALL_CLOCK.fullmatch(value)
    if match is None:
        return None
    year, month, day_, hour, minute, second, fraction, _ = match.groups()
    try:
        return datetime(int(year), int(month), int(day_), int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0")[:6].ljust(6, "0")))
    except ValueError:
        return None

