"""Visma's JSON answers read item by item, each item keeping its own text.

The state store keeps a record's JSON text and hashes it. Re-encoding every decoded record costs
more than decoding it (benchmarks/visma_sync.py), so each item's own slice of the answer is kept
beside it. Answers are decoded with msgspec, which takes about half the CPU time of `json.loads`
for the same result (decimals included) and hands out each item's slice of the answer as it
stands. An answer msgspec refuses (not UTF-8, a byte order mark, `\ud800`-style lone surrogates
that `json.loads` accepts, or no JSON at all) is read again with the stdlib's C scanner, which
either reads it or says exactly what is wrong.

Numbers with a fraction are Decimal, as everywhere in the client. `NaN`, `Infinity` and
`-Infinity`, which Python's json reads by default, are refused: no amount in Visma can be one,
and the state store could not hold it exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from decimal import Decimal
from functools import lru_cache
from json.scanner import make_scanner
from typing import Any

import msgspec
from msgspec import UNSET
from msgspec.structs import astuple

from visma_tableau_pipeline.state.payloads import EXACT_JSON, EXACT_JSON_REFUSED, VOLATILE_FIELDS, load_json

_WHITESPACE = " \t\n\r"
_QUOTED_VOLATILE = tuple((name, json.dumps(name)) for name in sorted(VOLATILE_FIELDS))
_QUOTED_VOLATILE_BYTES = tuple((name, quoted.encode()) for name, quoted in _QUOTED_VOLATILE)
# An ASCII letter written as a \u escape: a field name could then be spelt so that counting its
# plain spelling misses it. No JSON writer does this; such items are stored as canonical JSON.
_ESCAPED_LETTER = re.compile(r"\\u00[4-7]")
_ESCAPED_LETTER_BYTES = re.compile(_ESCAPED_LETTER.pattern.encode())


class NotJson(ValueError):
    """The answer is not one JSON document."""


class NonFiniteNumber(ValueError):
    """The answer holds NaN, Infinity or -Infinity, which no Visma amount can be."""

    def __init__(self, literal: str) -> None:
        super().__init__(f"the JSON holds the number {literal}")
        self.literal = literal


def _refuse_constant(literal: str) -> Any:
    raise NonFiniteNumber(literal)


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
_scan = make_scanner(_DECODER)  # type: ignore[arg-type]  # typeshed types the C scanner's argument oddly
_ITEM_SLICES = msgspec.json.Decoder(list[msgspec.Raw])  # each item's own bytes, undecoded


def decode(raw: bytes) -> Any:
    """A whole answer as one value, decimals exact; NotJson or NonFiniteNumber if it cannot be."""
    try:
        return load_json(raw, parse_constant=_refuse_constant)
    except NonFiniteNumber:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise NotJson(str(exc)) from None


def decode_with_texts(raw: bytes) -> tuple[Any, list[str | None]]:
    """An answer decoded, with the text the state store keeps for each item.

    The answer is a list of items, or one object (which then counts as the one item). An item's
    text is its own slice of the answer without its volatile fields, so that
    `json.loads(text, parse_float=Decimal)` gives the item without them; None where that cannot
    be had safely (see `without_volatile_fields`), or for an item that is not an object. The
    encoding is detected as `json.loads` does (UTF-8, 16 or 32, with or without a byte order
    mark). Bytes that only `json.loads`'s lenient decoding accepts (lone surrogates) give texts
    of None: such text could be neither hashed nor stored as it is.
    """
    try:
        document = EXACT_JSON.decode(raw)
        pieces = _ITEM_SLICES.decode(raw) if type(document) is list else [raw.strip(b" \t\n\r")]
    except EXACT_JSON_REFUSED:
        return _decode_with_texts_slowly(raw)
    items = document if type(document) is list else [document]
    counted = _counts_explained(raw, items)
    return document, [_stored_text(str(piece, "utf-8"), item, counted) for piece, item in zip(pieces, items)]


def decode_for_store(raw: bytes, fields: Collection[str]) -> tuple[Any, list[str | None]]:
    """A list answer in the form the state store takes: each item's `fields` and its text.

    Each item whose text can be had (as in `decode_with_texts`) comes as a dict of only those of
    its top-level members named in `fields` (and its volatile ones), decoded: what the store
    indexes a record by. The text holds the rest; nothing else is decoded, which is most of the
    CPU a page costs. An item whose text cannot be had is decoded whole, its text None. An
    answer that is not a list of objects, or that msgspec refuses, comes as `decode_with_texts`
    gives it.
    """
    decoder, names = _summary_decoder(tuple(fields))
    try:
        summaries = [
            {name: value for name, value in zip(names, astuple(summary)) if value is not UNSET}
            for summary in decoder.decode(raw)
        ]
        pieces = [str(piece, "utf-8") for piece in _ITEM_SLICES.decode(raw)]
        counted = _counts_explained(raw, summaries)
        texts = [_stored_text(piece, item, counted) for piece, item in zip(pieces, summaries)]
        items = [
            item if text is not None else EXACT_JSON.decode(piece)
            for item, piece, text in zip(summaries, pieces, texts)
        ]
    except EXACT_JSON_REFUSED:
        return decode_with_texts(raw)
    return items, texts


@lru_cache(maxsize=64)
def _summary_decoder(fields: tuple[str, ...]) -> tuple[msgspec.json.Decoder, tuple[str, ...]]:
    """A decoder of a list of objects into their `fields` and volatile fields, skipping the rest.

    A struct whose attributes are renamed to the JSON names, so that any name can be one.
    """
    names = tuple(dict.fromkeys([*fields, *sorted(VOLATILE_FIELDS)]))
    attributes = [f"f{index}" for index in range(len(names))]
    summary = msgspec.defstruct(
        "Summary", [(attribute, Any, UNSET) for attribute in attributes], rename=dict(zip(attributes, names))
    )
    return msgspec.json.Decoder(list[summary], float_hook=Decimal), names  # type: ignore[valid-type]  # a struct made at run time


def _decode_with_texts_slowly(raw: bytes) -> tuple[Any, list[str | None]]:
    """`decode_with_texts` by the stdlib's scanner, for what msgspec refuses."""
    try:
        try:
            text = raw.decode(json.detect_encoding(raw))
        except UnicodeDecodeError:
            document = decode(raw)
            return document, [None] * (len(document) if isinstance(document, list) else 1)
        document, item_texts = _split(text)
    except NonFiniteNumber:
        raise
    except (ValueError, StopIteration, IndexError) as exc:  # the scanner says StopIteration
        raise NotJson(str(exc) or type(exc).__name__) from None
    items = document if isinstance(document, list) else [document]
    counted = _counts_explained(text.encode(), items)
    return document, [_stored_text(t, item, counted) for t, item in zip(item_texts, items)]


def without_volatile_fields(item_text: str, item: dict) -> str | None:
    """The item's own text without its top-level volatile fields, or None if that is not safe.

    `item` is what `item_text` decodes to; the result decodes to `item` without `metadata` and
    `timeStamp`. Each volatile field is cut with its value and one comma, found with `str.count`
    and `str.rfind` (a regex over every item cost twice the decoding). This is only done when
    each name occurs in the text exactly as often as the item's top-level keys explain: a nested
    volatile field (the store drops those too), a name inside a string, or a duplicate key all
    give None, and the caller falls back to canonical JSON.
    """
    return _stored_text(item_text, item, counted=False)


def _counts_explained(page: bytes, items: list[Any]) -> bool:
    """Whether each volatile name occurs in the page once per item that has it as a key.

    Then it occurs exactly once in each such item and in no other (a key accounts for at least
    one occurrence when no letter is escaped), so the items need not be counted one by one.
    Counting the page costs the same as counting every item; locating a field at the end of an
    item with `rfind` is then nearly free.
    """
    if b"\\" in page and _ESCAPED_LETTER_BYTES.search(page):
        return False
    for name, quoted in _QUOTED_VOLATILE_BYTES:
        having = sum([type(item) is dict and name in item for item in items])
        if page.count(quoted) != having:
            return False
    return True


def _stored_text(text: str, item: Any, counted: bool) -> str | None:
    if type(item) is not dict:
        return None
    if not counted:
        if "\\" in text and _ESCAPED_LETTER.search(text):
            return None
        for name, quoted in _QUOTED_VOLATILE:
            if text.count(quoted) != (name in item):
                return None
    # Each volatile key of the item now occurs once in its text: the key is spelt plainly (no
    # escaped letters) and accounts for an occurrence by itself.
    spans = []
    for name, quoted in _QUOTED_VOLATILE:
        if name in item:
            span = _member_span(text, text.rfind(quoted), len(quoted))
            if span is None:
                return None
            spans.append(span)
    return _without_spans(text, spans) if spans else text


def _member_span(text: str, key_start: int, key_length: int) -> tuple[int, int] | None:
    """Where the member whose key starts at `key_start` lies, with one comma beside it.

    The comma before it when there is one; for the first member, the comma after it. None if
    the place does not hold a member (a string value spelt like the key).
    """
    colon = key_start + key_length
    if text[colon] != ":":
        colon = _skip_whitespace(text, colon)
        if not text.startswith(":", colon):
            return None
    value_start = colon + 1
    if text[value_start] in _WHITESPACE:
        value_start = _skip_whitespace(text, value_start)
    end = _value_end(text, value_start)
    before = key_start - 1
    while text[before] in _WHITESPACE:
        before -= 1
    if text[before] == ",":
        return before, end
    if text[before] != "{":
        return None
    return key_start, _past_comma(text, end)


def _past_comma(text: str, index: int) -> int:
    """Past the comma that follows `index` (after whitespace), or `index` if none follows."""
    after = _skip_whitespace(text, index)
    return after + 1 if text[after] == "," else index


def _without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` without the member spans, in one copy (one per item is what the page can afford)."""
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        previous_start, previous_end = merged[-1]
        if start < previous_end:  # the first member and the next share a comma: the pair is
            merged[-1] = (previous_start, _past_comma(text, end))  # now the first member
        else:
            merged.append((start, end))
    pieces = []
    position = 0
    for start, end in merged:
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _split(text: str) -> tuple[Any, list[str]]:
    index = _skip_whitespace(text, 0)
    if not text.startswith("[", index):
        value, end = _scan(text, index)
        _expect_end(text, end)
        return value, [text[index:end]]
    items: list[Any] = []
    texts: list[str] = []
    index = _skip_whitespace(text, index + 1)
    if text.startswith("]", index):
        _expect_end(text, index + 1)
        return items, texts
    while True:
        item, end = _scan(text, index)
        items.append(item)
        texts.append(text[index:end])
        separator = text[end]
        if separator in _WHITESPACE:  # Visma writes compact JSON: this is the rare case
            end = _skip_whitespace(text, end)
            separator = text[end]
        if separator == ",":
            index = end + 1
            if text[index] in _WHITESPACE:
                index = _skip_whitespace(text, index)
        elif separator == "]":
            _expect_end(text, end + 1)
            return items, texts
        else:
            raise NotJson(f"expected ',' or ']' at character {end}")


def _expect_end(text: str, index: int) -> None:
    if _skip_whitespace(text, index) != len(text):
        raise NotJson(f"extra data after the JSON value at character {index}")


def _skip_whitespace(text: str, index: int) -> int:
    """The first index at or after `index` that is not JSON whitespace (len(text) at the end)."""
    while index < len(text) and text[index] in _WHITESPACE:  # Visma writes compact JSON: rare
        index += 1
    return index


def _value_end(text: str, index: int) -> int:
    """Where the JSON value that starts at `index` ends (ValueError if none starts there)."""
    try:
        return _scan(text, index)[1]
    except StopIteration:
        raise NotJson(f"no JSON value at character {index}") from None
