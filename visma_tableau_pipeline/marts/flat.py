"""Tables that are one row per record, declared as data: column, kind, where the value comes from.

Most dashboard tables (suppliers, customers, accounts, payments, orders) are a flat projection
of one entity. Declaring them as (column, kind, source) triples keeps each table a readable list,
and the conversion (text, exact decimal, date) follows from the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from visma_tableau_pipeline.marts.fields import amount, boolean, day, integer, text, timestamp
from visma_tableau_pipeline.marts.inputs import MartInputs, Record
from visma_tableau_pipeline.marts.schema import Column, Kind, TableSchema

Getter = Callable[[Record], Any]
Source = str | Getter  # a dotted path into the record, or a function of the record


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
class FlatTable:
    """A dashboard table with one row per record of one entity."""

    name: str
    entity: str
    fields: tuple[tuple[str, Kind, Source], ...]

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

    def rows(self, records: Iterable[Record]) -> Iterable[dict[str, Any]]:
        """One row dict per record."""
        getters = self._getters
        for record in records:
            yield {name: get(record) for name, get in getters}

    def build(self, inputs: MartInputs) -> pd.DataFrame:
        """The table from the entity's records."""
        return self.schema.frame(self.rows(inputs.of(self.entity)))
