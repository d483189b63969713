"""What changed in a dashboard table since its last delivery, and the Tableau actions for it.

Pure: no Tableau, no files. The publisher remembers, per data source, a map from row key to the
content hash of the version it last delivered. Comparing the full current table with that map
gives the rows to upsert (new or changed), the keys to delete (gone from the table) and the new
map. Sending only those rows keeps an incremental publish small.

Canonical rendering (the same in every run and process, so hashes only change with the data):
every value is rendered as text by Arrow (decimals as `str(Decimal)`, dates ISO `2025-01-31`,
timestamps `2025-01-31 12:00:00.000000`, booleans `true`/`false`), a null as the marker `\\N`;
backslashes and the field separator inside values are escaped, so no two rows render alike.

A row key is its key values joined with "|" ("|" and "\\" inside a value are escaped with "\\"),
which reads naturally (`c1|INV|000123`) and can be parsed back into typed key values for the
delete table of the payload.

The request id of an incremental update is derived from its content: the data source, the
actions (with their conditions), and each row's key with the version it moves from and to. A
retry of the same request (after a lost response, a re-sign-in) carries the same id, and Tableau
applies it at most once within 24 hours. Including the version a row moves *from* keeps a row
that goes back from B to its earlier version A from reusing the request that took it to A. An
exact repeat of a transition within 24 hours (A→B, B→A, A→B) would still reuse an id and be
skipped by Tableau: pass `scope` (the run id) to tell runs apart. Upserts and deletes by key are
idempotent, so a new run re-sending a change set that did arrive changes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.state.keys import escape_chars, key_parts, key_strings
from visma_tableau_pipeline.tableau.errors import ChangeSetError

# "resend": a version Tableau already held, sent again whole (an overwrite, a replaced snapshot day)
RowAction = Literal["insert", "update", "delete", "resend"]

EXTRACT_SCHEMA = "Extract"
UPSERTS_TABLE = "Extract"  # the payload's upsert rows, named like the target table
DELETED_KEYS_TABLE = "deleted_keys"  # the payload's table of keys to delete
TARGET_TABLE = "Extract"

_FIELD_SEPARATOR = "\x1f"
_NULL_MARKER = "\\N"


@dataclass(frozen=True)
class RowChange:
    """One row version sent (or a row removed): what the audit ledger records."""

    key: str
    content_hash: str  # the new version; for a delete, the version that was removed
    action: RowAction
    previous_hash: str | None = None  # the version it replaces (None for an insert)


@dataclass(frozen=True)
class RowBatch:
    """Rows to upsert and keys to delete, each frame aligned with its row changes, key-ordered."""

    upserts: pd.DataFrame
    upsert_rows: tuple[RowChange, ...]
    deleted_keys: pd.DataFrame  # the key columns only, typed like the table's
    delete_rows: tuple[RowChange, ...]

    @property
    def rows(self) -> tuple[RowChange, ...]:
        return self.upsert_rows + self.delete_rows

    def __len__(self) -> int:
        return len(self.upsert_rows) + len(self.delete_rows)

    def split(self, parts: int) -> list[RowBatch]:
        """`parts` batches (fewer when there are fewer rows), each with a share of both kinds."""
        parts = max(1, min(parts, len(self)))
        pieces = []
        for index in range(parts):
            up = _share(len(self.upsert_rows), parts, index)
            down = _share(len(self.delete_rows), parts, index)
            pieces.append(RowBatch(
                self.upserts.iloc[up].reset_index(drop=True), self.upsert_rows[up],
                self.deleted_keys.iloc[down].reset_index(drop=True), self.delete_rows[down],
            ))
        return [piece for piece in pieces if len(piece)]


@dataclass(frozen=True)
class ChangeSet:
    """The difference between the current table and its last delivered version."""

    batch: RowBatch
    hashes: dict[str, str] = field(repr=False)  # row key → content hash after delivery

    @property
    def rows(self) -> tuple[RowChange, ...]:
        return self.batch.rows

    @property
    def is_empty(self) -> bool:
        return len(self.batch) == 0


def _share(total: int, parts: int, index: int) -> slice:
    return slice(total * index // parts, total * (index + 1) // parts)


def compute_changes(
    frame: pd.DataFrame, key_columns: Sequence[str], previous: Mapping[str, str]
) -> ChangeSet:
    """The change set from `previous` (row key → content hash; empty if never delivered)."""
    keys, hashes = row_keys_and_hashes(frame, key_columns)
    current = dict(zip(keys, hashes, strict=True))
    if len(current) != len(keys):
        duplicated = pd.Series(keys)[pd.Series(keys).duplicated()].head(5).tolist()
        raise ChangeSetError(
            f"key {list(key_columns)} is not unique: {len(keys) - len(current)} duplicate rows, "
            f"e.g. {duplicated}", key=tuple(key_columns),
        )
    # map / compress loop in C: a table of a million rows is compared in a fraction of a second
    delivered = list(map(previous.get, keys))
    positions = itertools.compress(range(len(keys)), map(operator.ne, delivered, hashes))
    changed = sorted((keys[position], position) for position in positions)
    upsert_rows = tuple(
        RowChange(key, hashes[position], "update" if delivered[position] is not None else "insert",
                  delivered[position])
        for key, position in changed
    )
    upserts = frame.iloc[[position for _, position in changed]].reset_index(drop=True)
    kept = len(delivered) - delivered.count(None)
    gone = sorted(itertools.filterfalse(current.__contains__, previous)) if kept < len(previous) else []
    delete_rows = tuple(RowChange(key, previous[key], "delete", previous[key]) for key in gone)
    deleted_keys = keys_frame(gone, frame, key_columns)
    return ChangeSet(RowBatch(upserts, upsert_rows, deleted_keys, delete_rows), current)


def row_keys_and_hashes(
    frame: pd.DataFrame, key_columns: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Each row's key string and content hash (sha256 hex over all columns, in frame order)."""
    missing = [column for column in key_columns if column not in frame.columns]
    if missing:
        raise ChangeSetError(f"key columns {missing} are not in the table", key=tuple(key_columns))
    if not key_columns:
        raise ChangeSetError("a change set needs at least one key column")
    # one chunk per column: frames read from Hyper come in thousands of small chunks, and
    # every step below would pay for each of them
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    if table.num_rows == 0:
        return [], []
    rendered = {name: _rendered(table.column(name), name) for name in table.column_names}
    keys = key_strings([rendered[name] for name in key_columns])
    content = pc.binary_join_element_wise(
        *[pc.fill_null(_field_escaped(rendered[name]), _NULL_MARKER) for name in table.column_names],
        pa.scalar(_FIELD_SEPARATOR, pa.large_string()),
    )
    return keys.to_pylist(), _sha256_hex(content)


def row_keys(frame: pd.DataFrame, key_columns: Sequence[str]) -> list[str]:
    """Each row's key string only (as `row_keys_and_hashes` makes it), without hashing the rows."""
    table = pa.Table.from_pandas(frame[list(key_columns)], preserve_index=False).combine_chunks()
    if table.num_rows == 0:
        return []
    return key_strings([_rendered(table.column(name), name) for name in key_columns]).to_pylist()


def _sha256_hex(texts: pa.ChunkedArray) -> list[str]:
    """sha256 hex of each (non-null) UTF-8 text, hashed straight from Arrow's buffers.

    Slicing the data buffer skips making a Python str of each row and encoding it again,
    which costs as much as the hashing itself.
    """
    digests: list[str] = []
    sha256 = hashlib.sha256
    for chunk in texts.chunks:
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)
        offsets = offsets[chunk.offset:chunk.offset + len(chunk) + 1].tolist()
        data = memoryview(chunk.buffers()[2] or b"")
        digests.extend(sha256(data[start:end]).hexdigest()
                       for start, end in itertools.pairwise(offsets))
    return digests


def _rendered(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    try:
        return pc.cast(column, pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as error:
        raise ChangeSetError(f"column {name} ({column.type}) cannot be rendered as text: {error}",
                             column=name) from error


def _field_escaped(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return escape_chars(values, {"\\": "\\\\", _FIELD_SEPARATOR: "\\x1f"})


def keys_frame(keys: Sequence[str], frame: pd.DataFrame, key_columns: Sequence[str]) -> pd.DataFrame:
    """Key strings parsed back into a frame of the key columns, typed like `frame`'s columns."""
    schema = pa.Schema.from_pandas(frame[list(key_columns)], preserve_index=False)
    split = [key_parts(key) for key in keys]
    for key, values in zip(keys, split):
        if len(values) != len(key_columns):
            raise ChangeSetError(
                f"row key {key!r} has {len(values)} values; the key has {len(key_columns)} columns",
                key=tuple(key_columns),
            )
    data = {}
    for index, name in enumerate(key_columns):
        text = pa.array([values[index] for values in split], pa.large_string())
        target = schema.field(name).type
        if not pa.types.is_string(target) and not pa.types.is_large_string(target):
            text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.large_string()), text)
        try:
            typed = pc.cast(text, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise ChangeSetError(f"key column {name}: stored keys do not parse as {target}: {error}",
                                 column=name) from error
        data[name] = pd.Series(pd.arrays.ArrowExtensionArray(typed))
    return pd.DataFrame(data, columns=list(key_columns))


def schema_fingerprint(frame: pd.DataFrame) -> str:
    """A short hash of the table's column names and types: when it changes, republish in full."""
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    described = "\n".join(f"{f.name}\t{_type_name(f.type)}" for f in schema)
    return hashlib.sha256(described.encode("utf-8")).hexdigest()[:16]


def _type_name(arrow_type: pa.DataType) -> str:
    # string and large_string become the same Hyper TEXT; a storage detail must not force a republish
    return "string" if pa.types.is_large_string(arrow_type) else str(arrow_type)


# -- Tableau actions ---------------------------------------------------------------------------


def key_condition(key_columns: Sequence[str]) -> dict[str, Any]:
    """Source row matches target row on every key column."""
    comparisons = [{"op": "eq", "source-col": k, "target-col": k} for k in key_columns]
    if len(comparisons) == 1:
        return comparisons[0]
    return {"op": "and", "args": comparisons}


def build_actions(
    key_columns: Sequence[str], *, has_upserts: bool, has_deletes: bool
) -> list[dict[str, Any]]:
    """`update_hyper_data` actions for one payload: delete by key, upsert by key (either or both).

    Deletes match the payload's `"Extract"."deleted_keys"` rows; upserts take the payload's
    `"Extract"."Extract"` rows. Both apply together in one request.
    """
    condition = key_condition(key_columns)
    target = {"target-schema": EXTRACT_SCHEMA, "target-table": TARGET_TABLE}
    actions: list[dict[str, Any]] = []
    if has_deletes:
        actions.append({"action": "delete", **target, "source-schema": EXTRACT_SCHEMA,
                        "source-table": DELETED_KEYS_TABLE, "condition": condition})
    if has_upserts:
        actions.append({"action": "upsert", **target, "source-schema": EXTRACT_SCHEMA,
                        "source-table": UPSERTS_TABLE, "condition": condition})
    return actions


def partition_replace_actions(partition_column: str, value: Any, *,
                              with_delete: bool = True) -> list[dict[str, Any]]:
    """Replace one whole partition: delete its rows (constant condition), insert the payload's.

    Later chunks of a partition too large for one payload pass `with_delete=False` (insert only).
    """
    target = {"target-schema": EXTRACT_SCHEMA, "target-table": TARGET_TABLE}
    actions: list[dict[str, Any]] = []
    if with_delete:
        condition = {"op": "eq", "target-col": partition_column, "const": typed_const(value)}
        actions.append({"action": "delete", **target, "condition": condition})
    actions.append({"action": "insert", **target, "source-schema": EXTRACT_SCHEMA,
                    "source-table": UPSERTS_TABLE})
    return actions


def typed_const(value: Any) -> dict[str, Any]:
    """A constant operand for an action condition, typed as Tableau's JSON expects."""
    if isinstance(value, bool):
        return {"type": "boolean", "v": value}
    if isinstance(value, int):
        return {"type": "integer", "v": value}
    if isinstance(value, datetime):
        return {"type": "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "v": value.isoformat()}
    if isinstance(value, str):
        return {"type": "string", "v": value}
    raise ChangeSetError(f"a partition value of type {type(value).__name__} is not supported")


def request_id(
    datasource_name: str, rows: Sequence[RowChange], actions: Sequence[Mapping[str, Any]],
    scope: str = "",
) -> str:
    """The idempotency key of one `update_hyper_data` request, derived from its content."""
    digest = hashlib.sha256()
    for part in (datasource_name, scope, json.dumps(list(actions), sort_keys=True, default=str)):
        digest.update(part.encode("utf-8") + b"\x00")
    for row in sorted(rows, key=lambda r: (r.key, r.action)):
        line = f"{row.key}\x1f{row.previous_hash or ''}\x1f{row.content_hash}\x1f{row.action}\n"
        digest.update(line.encode("utf-8"))
    return f"vtp-{digest.hexdigest()[:48]}"
