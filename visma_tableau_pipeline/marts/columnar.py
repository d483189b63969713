"""Reading the fields a table needs straight from its records' JSON texts into Arrow columns.

Decoding every stored record into Python dicts and reading each value through a getter cost
most of a whole build (for `ap_invoices`, about 40 µs of decoding and 85 µs of getters per
record, measured with cProfile; `benchmarks/full_build.py`). pyarrow's JSON reader, given an
explicit schema of only the fields a table reads, parses the texts in C at about 90,000 records
a second and hands back typed columns; conversions then run on whole columns.

The per-record path (`FlatTable.rows`, `TableSchema.frame`) stays the reference, and this path
only takes a batch whose result it can promise to be the same. It relies on the reader being
stricter than Python: a value of another JSON type than the one read (a number where text is
read, an object where a value is, a fraction where an integer is), a duplicate key, a lone
surrogate or a number beyond the column's range makes the reader refuse the batch. Where the
reader is more lenient, this module checks first: an amount written as a JSON string is found by
a pattern on the text (the reader would take `"12.3"` as a number), and so is a letter written as
an escape (a key spelt so would slip past that pattern). An amount with a part below the cent or beyond what
NUMERIC(18,2) holds is left to `money_value`'s rule, a timestamp outside the plain ISO forms to
`parse_timestamp`, value by value. A batch refused is `Declined`, and its caller builds it record
by record: the values, the errors, and so the records held back are the per-record path's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from visma_tableau_pipeline.marts.fields import parse_timestamp
from visma_tableau_pipeline.marts.schema import MONEY_TYPE, Kind, RejectedValue

COMPANY = "company_id"  # not read from the text: the company the record was stored under

# How each kind of column is read from JSON. Money is read exactly: the reader converts the
# number's own digits (scale 20 holds every fraction a double prints); rates and quantities as
# the double the contract says they are (the reader rounds correctly, as float(Decimal) does).
_JSON_TYPES: dict[Kind, pa.DataType] = {
    Kind.TEXT: pa.string(), Kind.DATE: pa.string(), Kind.TIMESTAMP: pa.string(),
    Kind.MONEY: pa.decimal128(38, 20), Kind.QUANTITY: pa.float64(), Kind.RATE: pa.float64(),
    Kind.INT: pa.int64(), Kind.BOOL: pa.bool_(),
}
# yyyy-MM-dd, optionally THH:mm:ss (or a space) and up to 6 fraction digits: what Arrow's cast
# reads as `parse_timestamp` does; other forms go to `parse_timestamp` one by one.
_PLAIN_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?)?$"
# An ASCII letter written as an escape (\u0041-\u007A): how a key could hide an amount's name.
_ESCAPED_LETTER = r"\\u00[4-7][0-9a-fA-F]"
_PREFIX = 4


class Declined(Exception):
    """A batch this path cannot promise to convert as the per-record path does."""


@dataclass(frozen=True)
class Reads:
    """The fields to read: dotted paths with their kinds (or, for what no column kind describes,
    an Arrow type: a list of segments), at the record's level and, for a table of lines, within
    the items of the list field `items`."""

    record: Mapping[str, Kind | pa.DataType]
    items: str | None = None
    item: Mapping[str, Kind | pa.DataType] | None = None

    def schema(self) -> pa.Schema:
        """The explicit schema the reader takes: nested structs for dotted paths."""
        fields = _struct_fields(self.record)
        if self.items is not None:
            fields.append(pa.field(self.items, pa.list_(pa.struct(_struct_fields(self.item or {})))))
        return pa.schema(fields)

    def screen(self) -> tuple[str, ...]:
        """What the reader would take too leniently, as patterns: an amount written as a JSON
        string, and a key written with escapes of ASCII letters (which could spell an amount's
        name). One pattern per group of names sharing their first letters, which the regular
        expression engine then skips to: a fifth of the time of one pattern naming them all."""
        money = sorted({path.rsplit(".", 1)[-1] for paths in (self.record, self.item or {})
                        for path, kind in paths.items() if kind is Kind.MONEY})
        if not money:
            return ()
        groups: dict[str, list[str]] = {}
        for name in money:
            groups.setdefault(name[:_PREFIX], []).append(re.escape(name[_PREFIX:]))
        return (*(f'{re.escape(prefix)}(?:{"|".join(rests)})"\\s*:\\s*"' for prefix, rests in groups.items()),
                _ESCAPED_LETTER)


def _struct_fields(paths: Mapping[str, Kind | pa.DataType]) -> list[pa.Field]:
    tree: dict[str, Any] = {}
    for path, kind in paths.items():
        if path == COMPANY:
            continue
        *parents, leaf = path.split(".")
        node = tree
        for step in parents:
            node = node.setdefault(step, {})
            if not isinstance(node, dict):
                raise ValueError(f"{path}: read as a value and as an object")
        if isinstance(node.get(leaf), dict):
            raise ValueError(f"{path}: read as a value and as an object")
        json_type = _JSON_TYPES[kind] if isinstance(kind, Kind) else kind
        if leaf in node and node[leaf] != json_type:
            raise ValueError(f"{path}: read as two JSON types")
        node[leaf] = json_type

    def fields(node: dict[str, Any]) -> list[pa.Field]:
        return [pa.field(name, pa.struct(fields(child)) if isinstance(child, dict) else child)
                for name, child in node.items()]

    return fields(tree)


@dataclass(frozen=True)
class Batch:
    """Columns read from a batch of records: `record` by path (one value per record), `item` by
    path (one per list item), and for each item the position of its record."""

    record: dict[str, pa.Array]
    item: dict[str, pa.Array]
    parents: pa.Array | None


def read_batch(texts: Sequence[bytes], companies: Sequence[str], reads: Reads,
               schema: pa.Schema, screen: Sequence[str]) -> Batch:
    """The fields of `reads` from the JSON `texts`, each regular for its kind (see `regular`).

    `schema` and `screen` are `reads.schema()` and `reads.screen()`, made once per table."""
    data = b"\n".join(texts)
    whole = pa.array([data], pa.large_binary())
    if any(pc.match_substring_regex(whole, pattern)[0].as_py() for pattern in screen):
        raise Declined("an amount written as text, or a letter of a key written as an escape")
    try:
        table = pa_json.read_json(
            pa.BufferReader(data),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=max(len(data), 1 << 16) + 1),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                               newlines_in_values=any(b"\n" in text for text in texts)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise Declined(str(error)) from None
    if table.num_rows != len(texts):
        raise Declined("the reader saw another number of records")
    record = {path: regular(kind, _leaf(table, path)) for path, kind in reads.record.items() if path != COMPANY}
    if COMPANY in reads.record:
        record[COMPANY] = pa.array(companies, pa.string())
    if reads.items is None:
        return Batch(record, {}, None)
    lists = table.column(reads.items).combine_chunks()
    items = pc.list_flatten(lists)
    if items.null_count:
        raise Declined("a list item that is null")
    item = {path: regular(kind, _leaf_of(items, path)) for path, kind in (reads.item or {}).items()}
    return Batch(record, item, pc.list_parent_indices(lists))


def _leaf(table: pa.Table, path: str) -> pa.Array:
    first, *rest = path.split(".")
    column = table.column(first).combine_chunks()
    return _leaf_of(column, ".".join(rest)) if rest else column


def _leaf_of(struct: pa.Array, path: str) -> pa.Array:
    value = struct
    for step in path.split("."):
        value = pc.struct_field(value, step)  # null where any step is null, as `fields.field`
    return value


def regular(kind: Kind | pa.DataType, values: pa.Array) -> pa.Array:
    """`values` as read, made sure to mean what the per-record path reads: money in cents
    (anything else, Visma's double noise among it, is for `money_value` to judge)."""
    if kind is Kind.MONEY:
        try:
            return pc.cast(values, MONEY_TYPE)
        except pa.ArrowInvalid:
            raise Declined("an amount below the cent or beyond NUMERIC(18,2)") from None
    return values


def converted(kind: Kind, values: pa.Array) -> pa.Array:
    """A regular column as the column kind holds it: timestamps and dates parsed."""
    if kind is Kind.TIMESTAMP:
        return timestamps(values)
    if kind is Kind.DATE:
        return pc.cast(timestamps(values), pa.date32())
    return values


def timestamps(values: pa.Array) -> pa.Array:
    """Visma date-time texts as naive timestamps, as `fields.parse_timestamp` reads them."""
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    plain = pc.fill_null(pc.match_substring_regex(values, _PLAIN_TIMESTAMP), True)
    if pc.any(pc.starts_with(values, "0000")).as_py():
        raise Declined("year 0, which Python's dates do not have")
    try:
        parsed = pc.cast(pc.if_else(plain, values, pa.scalar(None, pa.string())), pa.timestamp("us"))
    except pa.ArrowInvalid:  # no such day or time (2025-02-30): `parse_timestamp` refuses it
        raise Declined("a timestamp that is no time") from None
    if pc.all(plain).as_py():
        return parsed
    others = pc.invert(plain)
    try:
        one_by_one = [parse_timestamp(value) for value in pc.filter(values, others).to_pylist()]
    except RejectedValue:
        raise Declined("a timestamp parse_timestamp refuses") from None
    return pc.replace_with_mask(parsed, others, pa.array(one_by_one, pa.timestamp("us")))


# What a per-record function may raise for a value it refuses (as `holdback.RECORD_ERRORS`).
_REFUSALS = (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, IndexError)


def distinct_rows(columns: Sequence[pa.Array]) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct combination of the columns' values (nulls included), in
    order of appearance, and for every row the position of its combination in that order."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        _, codes = np.unique(codes * len(encoded.dictionary) + index, return_inverse=True)  # below the row count
    _, first, inverse = np.unique(codes.reshape(-1), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return first[order], position[inverse.reshape(-1)]


def by_distinct(columns: Sequence[pa.Array], compute: Callable[[tuple[Any, ...]], Any],
                result_type: pa.DataType) -> pa.Array:
    """`compute` of each row's values, called once per distinct combination (in order of first
    appearance) and spread to every row: the per-record function itself, at the cost of the few
    distinct values a classifying column has (document types, periods, accounts)."""
    first, positions = distinct_rows(columns)
    values = [column.take(pa.array(first)).to_pylist() for column in columns]
    try:
        results = [compute(row) for row in zip(*values, strict=True)] if len(first) else []
    except _REFUSALS:
        raise Declined("a value the per-record path refuses") from None
    return spread(results, positions, result_type)


def spread(results: list[Any], positions: np.ndarray, result_type: pa.DataType) -> pa.Array:
    """A column of `results[position]` for each row's position (`distinct_rows`)."""
    try:
        return pc.take(pa.array(results, result_type), pa.array(positions))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise Declined("a value the column cannot hold") from None


def nested(paths: Iterable[str], values: Iterable[Any]) -> dict[str, Any]:
    """A record with `values` at dotted `paths`: what a per-record function reads of them."""
    record: dict[str, Any] = {}
    for path, value in zip(paths, values, strict=True):
        *parents, leaf = path.split(".")
        node = record
        for step in parents:
            node = node.setdefault(step, {})
        node[leaf] = value
    return record
