"""Column sources several tables share: a document's financial period, a payment's period, and
the first non-empty of two texts (`flat.Derived`, so that tables build them column-wise too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.fields import financial_period, lenient_period, text
from visma_tableau_pipeline.marts.flat import Derived
from visma_tableau_pipeline.marts.schema import TEXT, Kind


def period_of(record: str = "") -> Derived:
    """The YYYYPP financial period (`fields.financial_period`) of the record, or of the record
    a line table names `record` (`header`)."""
    prefix = record + "." if record else ""
    if not record:
        return Derived(financial_period, ("financialPeriod", TEXT), ("postPeriod", TEXT))
    return Derived(lambda row: financial_period(row[record]),
                   (prefix + "financialPeriod", TEXT), (prefix + "postPeriod", TEXT))


def lenient_period_of(path: str) -> Derived:
    """A period the contract leaves unformatted (`fields.lenient_period`) as YYYYPP."""
    return Derived(lambda row: lenient_period(text(row, path)), (path, TEXT))


class FirstText(Derived):
    """The first of two text fields that is not empty (`text(a) or text(b)`)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(lambda row: text(row, first) or text(row, second), (first, TEXT), (second, TEXT))

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        first, second = values
        return pc.if_else(pc.fill_null(pc.not_equal(first, ""), False), first, second)
