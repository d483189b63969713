"""Canonical JSON for Visma records: exact decimals, stable text, and a content hash.

The stored text is also what the hash covers, so a record whose content has not changed hashes
the same on every read and causes no new version. Fields that change without the record
changing are left out at every depth: `metadata` (paging totals Visma puts on every item) and
`timeStamp` (Visma's ETag).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from visma_tableau_pipeline.state.errors import PayloadError

VOLATILE_FIELDS = frozenset({"metadata", "timeStamp"})


def canonical_json(payload: dict[str, Any]) -> str:
    """Compact JSON with sorted keys, volatile fields dropped, and each Decimal as its exact text.

    Floats are refused: money parsed as float has already lost cents (parse with
    parse_float=Decimal). An integral Decimal such as Decimal('100') reads back as the int 100,
    just as Visma's own JSON does.
    """
    parts: list[str] = []
    append = parts.append

    def write(value: Any, path: str) -> None:
        # Leaves are written inline, not by recursion: this runs for every field of every record.
        kind = type(value)
        if kind is str:
            append(encode_basestring_ascii(value))
        elif kind is Decimal:
            if not value.is_finite():
                raise PayloadError(f"{value} at {path} is not a number JSON can hold", path=path)
            append(str(value))
        elif kind is dict:
            separator = "{"
            for name in sorted(value):
                if name in VOLATILE_FIELDS:
                    continue
                if type(name) is not str:
                    raise PayloadError(f"non-string field name {name!r} at {path}", path=path)
                append(separator)
                separator = ","
                append(encode_basestring_ascii(name))
                append(":")
                item = value[name]
                if type(item) is str:
                    append(encode_basestring_ascii(item))
                else:
                    write(item, f"{path}.{name}")
            append("}" if separator == "," else "{}")
        elif kind is list:
            separator = "["
            for index, item in enumerate(value):
                append(separator)
                separator = ","
                write(item, f"{path}[{index}]")
            append("]" if separator == "," else "[]")
        elif value is None:
            append("null")
        elif value is True:
            append("true")
        elif value is False:
            append("false")
        elif kind is int:
            append(str(value))
        elif kind is float:
            raise PayloadError(
                f"float at {path}: parse Visma JSON with parse_float=Decimal so money stays exact",
                path=path,
            )
        else:
            raise PayloadError(f"{kind.__name__} at {path} is not a JSON value", path=path)

    if type(payload) is not dict:
        raise PayloadError(f"a record payload must be a JSON object, not {type(payload).__name__}")
    write(payload, "$")
    return "".join(parts)


def content_hash(canonical_text: str) -> str:
    """sha256 hex digest of canonical JSON text."""
    return hashlib.sha256(canonical_text.encode("ascii")).hexdigest()


def load_payload(text: str) -> dict[str, Any]:
    """Stored JSON back to a dict, decimals as Decimal."""
    return json.loads(text, parse_float=Decimal)
