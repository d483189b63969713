"""Record and row keys as one string: the one encoding, for single keys and for whole columns.

A key is its values joined with "|"; a "|" or "\\" inside a value is escaped with "\\", so two
different tuples never give one string, and the string parses back into its values. It reads
naturally (`nordic-no|Invoice|000123`). The store keys records by it, the audit ledger and the
delivery watermark key rows by it, and a row's group is its key's first parts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.state.errors import PayloadError

KEY_SEPARATOR = "|"
_ESCAPE = "\\"
_KEY_ESCAPES = {_ESCAPE: _ESCAPE * 2, KEY_SEPARATOR: _ESCAPE + KEY_SEPARATOR}


def key_string(parts: Sequence[str | int]) -> str:
    """One string for a catalogue key tuple, e.g. ('Invoice', '000123') -> 'Invoice|000123'.

    A '|' or '\\' inside a part is escaped with '\\', so different tuples never give one string.
    """
    if not parts:
        raise PayloadError("a record key needs at least one part")
    if all(type(part) is str for part in parts):  # the common case, for every record read
        joined = KEY_SEPARATOR.join(parts)  # type: ignore[arg-type]  # all str, tested above
        if "\\" not in joined and joined.count(KEY_SEPARATOR) == len(parts) - 1:
            return joined  # no part holds a separator or a backslash: nothing to escape
    texts = []
    for part in parts:
        if part is None or isinstance(part, bool) or not isinstance(part, str | int):
            raise PayloadError(f"record key part {part!r} is not a string or integer", key=parts)
        texts.append(str(part).replace(_ESCAPE, _ESCAPE * 2).replace(KEY_SEPARATOR, _ESCAPE + KEY_SEPARATOR))
    return KEY_SEPARATOR.join(texts)


def key_parts(key: str) -> tuple[str, ...]:
    """The parts of a `key_string`, e.g. 'Invoice|000123' -> ('Invoice', '000123').

    Reconciliation reads a record back from Visma by the key the store holds, so it needs the
    parts again (integers come back as their text, as Visma's path parameters take them).
    """
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in key:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == KEY_SEPARATOR:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(parts)


def key_strings(columns: Sequence[pa.ChunkedArray]) -> pa.ChunkedArray:
    """`key_string` of every row of text columns (nulls as empty values), computed by Arrow.

    Delivery keys whole tables, where a Python call per row would cost more than the rest.
    """
    escaped = [pc.fill_null(escape_chars(column, _KEY_ESCAPES), "") for column in columns]
    if len(escaped) == 1:
        return escaped[0]
    return pc.binary_join_element_wise(*escaped, pa.scalar(KEY_SEPARATOR, pa.large_string()))


def escape_chars(values: pa.ChunkedArray, escapes: dict[str, str]) -> pa.ChunkedArray:
    """`values` with each (one-character) pattern replaced, in order.

    Most columns hold none of the patterns, and looking for a byte in the raw data buffers is
    far cheaper than replacing (or a per-value search), so a column without any is left as it
    is. Bytes of the buffers outside the values can only cause a needless, harmless replace.
    """
    for pattern, replacement in escapes.items():
        if _has_byte(values, pattern.encode("ascii")[0]):
            values = pc.replace_substring(values, pattern, replacement)
    return values


def _has_byte(values: pa.ChunkedArray, byte: int) -> bool:
    return any(
        data is not None and bool((np.frombuffer(data, dtype=np.uint8) == byte).any())
        for chunk in values.chunks for data in chunk.buffers()[2:3]
    )
