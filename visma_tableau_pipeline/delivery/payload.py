"""Payload files for incremental updates: upsert rows and keys to delete, split under a byte limit.

A payload is one .hyper file with `"Extract"."Extract"` (rows to upsert or insert) and, when
rows are deleted, `"Extract"."deleted_keys"` (their key columns). Each table is written by
`marts.hyper.write_hyper`, which keeps decimals exact; when there are both, Hyper then copies
the two tables into the one payload file (upserts alone are already `"Extract"."Extract"`, so
that file is the payload as it is).

Tableau takes at most 100 MB per update request by default. The size of a Hyper file is known
only once written (it grows in 64 KiB blocks), so a payload that turns out too large is split
into as many parts as its size suggests and each part written again, halving further when
needed. Each part becomes one request with its own request id.
"""

from __future__ import annotations

import itertools
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tableauhyperapi import HyperException, SchemaName, TableName

from visma_tableau_pipeline.delivery.row_changes import (
    DELETED_KEYS_TABLE,
    EXTRACT_SCHEMA,
    UPSERTS_TABLE,
    RowBatch,
)
from visma_tableau_pipeline.marts.hyper import EXTRACT_TABLE, write_hyper
from visma_tableau_pipeline.marts.hyper_process import hyper_connection
from visma_tableau_pipeline.tableau.errors import PayloadTooLarge, TableauError

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_BYTES = 100 * 1024 * 1024
_PAYLOAD_ALIAS, _PART_ALIAS = "payload", "part"


@dataclass(frozen=True)
class Payload:
    """One request's worth of changes and the file that carries them."""

    batch: RowBatch
    path: Path

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def write_payload(batch: RowBatch, path: Path) -> Path:
    """Write `batch` to the payload file `path` (replacing it); returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as scratch:
        parts = {}
        if batch.upsert_rows:
            parts[UPSERTS_TABLE] = write_hyper(batch.upserts, Path(scratch), "upserts")
        if batch.delete_rows:
            parts[DELETED_KEYS_TABLE] = write_hyper(batch.deleted_keys, Path(scratch), "deleted")
        if list(parts) == [UPSERTS_TABLE]:  # already `"Extract"."Extract"`: nothing to copy
            combined = parts[UPSERTS_TABLE]
        else:
            combined = Path(scratch) / "payload.hyper"
            _combine(parts, combined)
        path.unlink(missing_ok=True)
        combined.replace(path)
    return path


def _combine(parts: dict[str, Path], target: Path) -> None:
    """Copy each part's `"Extract"."Extract"` into `target` as `"Extract".<table name>`."""
    try:
        with hyper_connection() as connection:
            connection.catalog.create_database(target)
            connection.catalog.attach_database(target, alias=_PAYLOAD_ALIAS)
            connection.catalog.create_schema(SchemaName(_PAYLOAD_ALIAS, EXTRACT_SCHEMA))
            for table_name, part in parts.items():
                connection.catalog.attach_database(part, alias=_PART_ALIAS)
                source = TableName(_PART_ALIAS, EXTRACT_TABLE.schema_name.name.unescaped,
                                   EXTRACT_TABLE.name.unescaped)
                destination = TableName(_PAYLOAD_ALIAS, EXTRACT_SCHEMA, table_name)
                connection.execute_command(f"CREATE TABLE {destination} AS SELECT * FROM {source}")
                connection.catalog.detach_database(_PART_ALIAS)
            connection.catalog.detach_database(_PAYLOAD_ALIAS)
    except HyperException as error:
        raise TableauError(f"writing payload {target.name}: {error.main_message}",
                           payload=str(target)) from error


def write_payloads(batch: RowBatch, directory: Path, stem: str, max_bytes: int) -> list[Payload]:
    """Payload files for `batch`, each at most `max_bytes`, named `<stem>-<n>.hyper`."""
    directory = Path(directory)
    pending = [batch]
    written: list[Payload] = []
    attempts = itertools.count()
    while pending:
        part = pending.pop(0)
        path = write_payload(part, directory / f"{stem}-attempt{next(attempts)}.hyper")
        size = path.stat().st_size
        if size <= max_bytes:
            written.append(Payload(part, path))
            continue
        path.unlink()
        if len(part) == 1:
            raise PayloadTooLarge(
                f"one row of {stem} makes a {size}-byte payload, over the {max_bytes}-byte limit",
                limit=max_bytes, size=size, key=part.rows[0].key,
            )
        pieces = part.split(max(2, math.ceil(size / max_bytes)))
        log.info("payload of %s rows is %s bytes, over %s: splitting into %s", len(part), size,
                 max_bytes, len(pieces))
        pending = pieces + pending
    final = []
    for index, payload in enumerate(written):
        path = payload.path.replace(directory / f"{stem}-{index:04d}.hyper")
        final.append(Payload(payload.batch, path))
    return final
