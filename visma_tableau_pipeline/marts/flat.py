"""Tables that are one row per record (or per item of a record's list), declared as data.

Most dashboard tables (invoices, suppliers, customers, accounts, payments, orders) are a flat
projection of one entity. Declaring them as (column, kind, source) triples keeps each table a
readable list, and the conversion (text, exact decimal, date) follows from the kind.

A table is built column-wise from the records' JSON texts (`marts/columnar.py`), a batch of
records at a time; a batch that path declines is built record by record (`rows`), the reference
whose values, errors and held-back records the column-wise build reproduces. A source is a dotted
path, or a `Derived` column: a per-record function with the fields it reads, so that the
column-wise build can compute it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.columnar import (
    COMPANY,
    Batch,
    Declined,
    Reads,
    by_distinct,
    converted,
    nested,
    read_batch,
)
from visma_tableau_pipeline.marts.fields import amount, boolean, day, integer, text, timestamp
from visma_tableau_pipeline.marts.inputs import MartInputs, Record, StoredRecord
from visma_tableau_pipeline.marts.schema import ARROW_TYPES, Column, Kind, TableSchema

log = logging.getLogger(__name__)

Getter = Callable[[Record], Any]
# Records read column-wise at a time: the reader's fastest size (measured: 91,000 records/s at
# 2,000, 78,000 at 50,000), and what a declined batch costs built one by one. At most BATCH_BYTES
# of text too, well below the 2 GiB a block of the reader holds (a journal batch can be large).
BATCH, BATCH_BYTES = 2_000, 64 << 20


class Derived:
    """A column computed by a per-record function from the fields it `reads` (dotted paths with
    the kinds they are read as; not rates or quantities, which the record holds as Decimals).

    The column-wise build calls the function once per distinct combination of those fields'
    values (`columnar.by_distinct`): right for classifying columns (a sign, a period). Columns
    with a value per record (signed amounts) override `column` with Arrow arithmetic.
    """

    def __init__(self, row: Getter, *reads: tuple[str, Kind]) -> None:
        if any(kind in (Kind.RATE, Kind.QUANTITY) for _, kind in reads):
            raise ValueError("a Derived column reads rates and quantities as the Decimals records hold")
        self.row, self.reads = row, reads

    def __call__(self, record: Record) -> Any:
        return self.row(record)

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        """The column from the `reads`' columns (regular, as `columnar.read_batch` gives them)."""
        paths = [path for path, _ in self.reads]
        return by_distinct(values, lambda row: self.row(nested(paths, row)), ARROW_TYPES[kind])


Source = str | Derived | Getter  # a dotted path, a Derived column, or a function of the record


def getter(kind: Kind, source: Source) -> Getter:
    """A function reading one column's value from a record, converted as the column kind says."""
    if callable(source):
        return source
    if kind in (Kind.MONEY, Kind.QUANTITY, Kind.RATE):
        return lambda record: amount(record, source)
    if kind is Kind.DATE:
        return lambda record: day(record, source)
    if kind is Kind.TIMESTAMP:
        return lambda record: timestamp(record, source)
    if kind is Kind.TEXT:
        return lambda record: text(record, source)
    if kind is Kind.BOOL:
        return lambda record: boolean(record, source)
    return lambda record: integer(record, source)


@dataclass(frozen=True)
class Lines:
    """A table of one row per item of a record's list field `items`: its rows read the record
    as `record.<path>` and the item as `item.<path>` (`header.referenceNumber`, `line.cost`).

    With `position`, a row also reads the item's place in its list (1 for the first) under that
    name: a line number for items that carry none (a payment's lines)."""

    items: str
    record: str = "header"
    item: str = "line"
    position: str | None = None


@dataclass(frozen=True)
class FlatTable:
    """A dashboard table with one row per record of one entity (or per item, with `lines`).

    `also_reads` are paths a builder needs besides the columns (a line's subaccount segments):
    `columns` gives them by path."""

    name: str
    entity: str
    fields: tuple[tuple[str, Kind, Source], ...]
    lines: Lines | None = None
    also_reads: tuple[tuple[str, Kind | pa.DataType], ...] = ()

    @property
    def schema(self) -> TableSchema:
        """The declared columns: `company_id` first, then the fields in order."""
        return TableSchema(
            self.name,
            (Column("company_id", Kind.TEXT), *tuple(Column(name, kind) for name, kind, _ in self.fields)),
        )

    @cached_property
    def _getters(self) -> tuple[tuple[str, Getter], ...]:
        return (
            ("company_id", getter(Kind.TEXT, "company_id")),
            *((name, getter(kind, source)) for name, kind, source in self.fields),
        )

    def wrapped(self, records: Iterable[Record]) -> Iterator[Record]:
        """What `rows` reads: the records, or with `lines` each item as {company_id, record, item}."""
        if self.lines is None:
            yield from records
            return
        lines = self.lines
        for record in records:
            for place, item in enumerate(record.get(lines.items) or [], start=1):
                row = {"company_id": record.get("company_id"), lines.record: record, lines.item: item}
                yield row if lines.position is None else {**row, lines.position: place}

    def rows(self, records: Iterable[Record]) -> Iterable[dict[str, Any]]:
        """One row dict per record (as `wrapped` gives them), by the per-record getters."""
        getters = self._getters
        for record in records:
            yield {name: get(record) for name, get in getters}

    def build(self, inputs: MartInputs) -> pd.DataFrame:
        """The table from the entity's records: column-wise a batch at a time, a declined batch
        record by record."""
        stored = inputs.stored(self.entity)
        if stored is None or not self.columnwise:
            return self.build_record_by_record(inputs)
        frames, declined = [], []
        for start, end in batches(stored):
            try:
                frames.append(self.schema.frame_from_arrays(*self.columns(stored[start:end])))
            except Declined as reason:
                declined.append(str(reason))
                frames.append(self.schema.frame(self.rows(self.wrapped(inputs.decoded(self.entity, start, end)))))
        if declined:  # worth seeing: such batches cost what a build record by record does
            log.info("table %s: %d of %d batches of records built one by one (the first because: %s)",
                     self.name, len(declined), len(frames), declined[0])
        if not frames:
            return self.schema.frame([])
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def build_record_by_record(self, inputs: MartInputs) -> pd.DataFrame:
        """The reference build: every row by the per-record getters."""
        return self.schema.frame(self.rows(self.wrapped(inputs.of(self.entity))))

    def columnwise_arrays(self, inputs: MartInputs, entity: str, context: Mapping[str, Any] | None = None,
                          ) -> tuple[dict[str, pa.Array], int]:
        """`columns` of every record of `entity`; `Declined` when any batch is, for a builder
        whose rows depend on each other (duplicates dropped, segment columns learnt from all)."""
        stored = inputs.stored(entity)
        if stored is None or not self.columnwise:
            raise Declined("records that cannot be read as JSON texts, or a source that is a bare function")
        parts = [self.columns(stored[start:end], context) for start, end in batches(stored)]
        if not parts:
            return {}, 0
        return ({name: pa.concat_arrays([arrays[name] for arrays, _ in parts]) for name in parts[0][0]},
                sum(size for _, size in parts))

    @property
    def columnwise(self) -> bool:
        """Whether every source is a path or a `Derived` column (a bare function is not)."""
        return all(isinstance(source, (str, Derived)) for _, _, source in self.fields)

    @cached_property
    def _reads(self) -> tuple[Reads, pa.Schema, tuple[str, ...]]:
        record: dict[str, Kind | pa.DataType] = {COMPANY: Kind.TEXT}
        item: dict[str, Kind | pa.DataType] = {}
        sources = [((source, kind),) if isinstance(source, str) else getattr(source, "reads", ())
                   for _, kind, source in self.fields]
        for reads in (*sources, self.also_reads):
            for path, read_kind in reads:
                level, inner = self._level(path)
                if level == "position":
                    continue
                target = item if level == "item" else record
                target[inner] = _read_as(target.get(inner), read_kind, path)
        reads = Reads(record, self.lines.items, item) if self.lines else Reads(record)
        return reads, reads.schema(), reads.screen()

    def _level(self, path: str) -> tuple[str, str]:
        """Where a row's path is read: ("record", path), ("item", path within the item), or
        ("position", path) for the item's place in its list (`Lines.position`)."""
        if self.lines is None or path == COMPANY:
            return "record", path
        if path == self.lines.position:
            return "position", path
        head, _, rest = path.partition(".")
        if head == self.lines.record and rest:
            return "record", rest
        if head == self.lines.item and rest:
            return "item", rest
        raise ValueError(f"table {self.name}: {path} names neither {self.lines.record} nor {self.lines.item}")

    def columns(self, stored: Sequence[StoredRecord], context: Mapping[str, Any] | None = None,
                ) -> tuple[dict[str, pa.Array], int]:
        """The table's columns (Arrow, each kind's type) of `stored`, and the number of rows;
        `Declined` when the batch must be built record by record. `context` is handed to the
        `Derived` columns (lookups a builder made)."""
        try:
            return self._columns(stored, context or {})
        except pa.ArrowException as error:  # not a refusal foreseen: never hold a record back for it
            log.warning("table %s: a batch is built record by record after an error of its column-wise "
                        "build: %s", self.name, error)
            raise Declined(str(error)) from error

    def _columns(self, stored: Sequence[StoredRecord], context: Mapping[str, Any]) -> tuple[dict[str, pa.Array], int]:
        reads, schema, screen = self._reads
        batch = read_batch([item.text for item in stored], [item.company_id for item in stored],
                           reads, schema, screen)
        size = len(batch.parents) if batch.parents is not None else len(stored)
        arrays = {"company_id": self.read(batch, COMPANY)}
        for name, kind, source in self.fields:
            if isinstance(source, str):
                arrays[name] = converted(kind, self.read(batch, source))
            else:
                assert isinstance(source, Derived)  # `columnwise` holds
                arrays[name] = source.column([self.read(batch, path) for path, _ in source.reads], kind, context)
        arrays.update((path, self.read(batch, path)) for path, _ in self.also_reads)
        return arrays, size

    def read(self, batch: Batch, path: str) -> pa.Array:
        """One read path's column, one value per row (a record's value repeated for its items)."""
        level, inner = self._level(path)
        if level == "item":
            return batch.item[inner]
        if level == "position":
            return _positions(batch.parents)
        values = batch.record[inner]
        return values if batch.parents is None else pc.take(values, batch.parents)


def _positions(parents: pa.Array | None) -> pa.Array:
    """Each item's place in its record's list (1 for the first), from its record's position."""
    owners = np.asarray(parents if parents is not None else [], dtype=np.int64)
    first = np.searchsorted(owners, owners, side="left")  # the items of a record are consecutive
    return pa.array(np.arange(len(owners)) - first + 1, pa.int64())


def batches(stored: Sequence[StoredRecord]) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive batches of at most BATCH records and BATCH_BYTES of text."""
    start, size = 0, 0
    for index, item in enumerate(stored):
        if index > start and (index - start >= BATCH or size + len(item.text) > BATCH_BYTES):
            yield start, index
            start, size = index, 0
        size += len(item.text)
    if start < len(stored):
        yield start, len(stored)


def _read_as(known: Kind | pa.DataType | None, kind: Kind | pa.DataType, path: str) -> Kind | pa.DataType:
    """One kind to read a path as, when several columns read it (a date and a timestamp are both text)."""
    if known is None or known == kind:
        return kind
    texts = {Kind.TEXT, Kind.DATE, Kind.TIMESTAMP}
    if known in texts and kind in texts:
        return Kind.TEXT
    raise ValueError(f"{path} is read as {known} and as {kind}")
