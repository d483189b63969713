"""The stored text of a Visma record, its content hash, and canonical JSON.

The stored text is also what the hash covers, so a record whose content has not changed hashes
the same on every read and causes no new version. Fields that change without the record
changing are left out: `metadata` (paging totals Visma puts on every item) and `timeStamp`
(Visma's ETag).

The text is normally Visma's own text of the item with those fields cut out
(visma/items.py): it is stable as long as Visma writes the same record the same way, and costs
nothing to make. Where there is no such text (journal batches merged from pieces, items with
nested or oddly placed volatile fields, records built in code), the text is the canonical JSON
below: sorted keys, exact decimals, volatile fields dropped at every depth.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

import msgspec

from visma_tableau_pipeline.state.errors import PayloadError

VOLATILE_FIELDS = frozenset({"metadata", "timeStamp"})


def canonical_json(payload: dict[str, Any]) -> str:
    """Compact JSON with sorted keys, volatile fields dropped, and each Decimal as its exact text.

    Floats are refused: money parsed as float has already lost cents (parse with
    parse_float=Decimal). An integral Decimal such as Decimal('100') reads back as the int 100,
    just as Visma's own JSON does.
    """
    if type(payload) is not dict:
        raise PayloadError(f"a record payload must be a JSON object, not {type(payload).__name__}")
    try:
        text = _object_text(payload)
    except (_Unencodable, KeyError, TypeError):
        _check(payload, "$")  # raises the error that names the offending path
        raise
    if "NaN" in text or "Infinity" in text:  # a non-finite Decimal, or merely a string saying so
        _check(payload, "$")
    return text


# The encoder runs for every field of every record read (a full sync of a million invoices is
# some hundred million values), so it keeps no path and dispatches on the exact type through a
# table. Anything it does not expect makes it give up; `_check` then walks the payload in the same
# order with paths, to raise the error that names the value.


class _Unencodable(Exception):
    """A value the fast encoder does not handle; `_check` says what is wrong with it."""


_FIELD_TEXTS: dict[str, str] = {}  # field name -> '"name":' (Visma's field names repeat)
_MAX_FIELD_TEXTS = 4096


def _field_text(name: Any) -> str:
    if type(name) is not str:
        raise _Unencodable
    text = _FIELD_TEXTS.get(name)
    if text is None:
        text = encode_basestring_ascii(name) + ":"
        if len(_FIELD_TEXTS) < _MAX_FIELD_TEXTS:
            _FIELD_TEXTS[name] = text
    return text


def _object_text(value: dict) -> str:
    if not value:
        return "{}"
    parts = []
    for name in sorted(value):
        if name in VOLATILE_FIELDS:
            continue
        item = value[name]
        parts.append(_field_text(name) + _TEXT_OF[type(item)](item))
    return "{" + ",".join(parts) + "}" if parts else "{}"


def _array_text(value: list) -> str:
    return "[" + ",".join([_TEXT_OF[type(item)](item) for item in value]) + "]"


# Exact types only: a subclass (IntEnum, a str subclass) is no JSON value here, as in `_check`.
# A non-finite Decimal is written as NaN or Infinity and caught in `canonical_json`.
_TEXT_OF: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    Decimal: Decimal.__str__,
    int: int.__repr__,
    bool: {True: "true", False: "false"}.__getitem__,
    type(None): {None: "null"}.__getitem__,
    dict: _object_text,
    list: _array_text,
}


def _check(value: Any, path: str) -> None:
    """Raise the PayloadError for the first value, in encoding order, that JSON cannot hold exactly."""
    kind = type(value)
    if kind is dict:
        for name in sorted(value):
            if name in VOLATILE_FIELDS:
                continue
            if type(name) is not str:
                raise PayloadError(f"non-string field name {name!r} at {path}", path=path)
            _check(value[name], f"{path}.{name}")
    elif kind is list:
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
    elif kind is Decimal:
        if not value.is_finite():
            raise PayloadError(f"{value} at {path} is not a number JSON can hold", path=path)
    elif kind is float:
        raise PayloadError(
            f"float at {path}: parse Visma JSON with parse_float=Decimal so money stays exact",
            path=path,
        )
    elif kind not in _TEXT_OF:
        raise PayloadError(f"{kind.__name__} at {path} is not a JSON value", path=path)


def content_hash(text: str) -> str:
    """sha256 hex digest of a stored text's UTF-8 (canonical JSON is ASCII: same bytes as before)."""
    return hashlib.sha256(text.encode()).hexdigest()


# JSON to the values `json.loads(parse_float=Decimal)` gives, in about 70% of its CPU time:
# every number with a fraction or exponent a Decimal. Strict JSON in UTF-8 only: anything else
# (NaN, a byte order mark, a lone surrogate written as an escape) it refuses with one of
# EXACT_JSON_REFUSED.
EXACT_JSON = msgspec.json.Decoder(float_hook=Decimal)
EXACT_JSON_REFUSED = (msgspec.DecodeError, UnicodeDecodeError)


def load_json(raw: str | bytes, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """JSON text to Python values, decimals exact: by `EXACT_JSON`, or else by `json.loads`,
    which reads what msgspec refuses or raises the error that says what is wrong."""
    try:
        return EXACT_JSON.decode(raw)
    except EXACT_JSON_REFUSED:
        return json.loads(raw, parse_float=Decimal, parse_constant=parse_constant)


def load_payload(text: str | bytes) -> dict[str, Any]:
    """Stored JSON (text, or its UTF-8 bytes) back to a dict, decimals as Decimal."""
    return load_json(text)
