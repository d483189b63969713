"""Subaccount segments as columns: `segment_department`, `segment_project`, ...

A Visma subaccount is a combination of dimension segment values (for example department 10 and
project 200 in subaccount `10200` or `10-200`). The dimension `SUBACCOUNT` declares the segments,
their order and their lengths; a company names them itself, so the columns are derived from that
definition rather than written into the code. Segment values are taken, in order of trust, from the
`segments` list Visma nests in the subaccount object, from the `/v1/subaccount` list, and from
splitting the subaccount number by the declared segment lengths.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.columnar import Declined, distinct_rows, spread
from visma_tableau_pipeline.marts.fields import text

log = logging.getLogger(__name__)

SUBACCOUNT_DIMENSION_ID = "SUBACCOUNT"
SEGMENT_COLUMN_PREFIX = "segment_"
# What a column-wise build reads of a nested subaccount's `segments` (`segment_columns`).
SEGMENTS_TYPE = pa.list_(pa.struct([("segmentId", pa.int64()), ("segmentDescription", pa.string()),
                                    ("segmentValue", pa.string())]))


def segment_column_name(description: str | None, segment_id: int) -> str:
    """The column name of one segment: `segment_` + its description in lower snake case."""
    words = re.sub(r"[^0-9a-zA-Z]+", "_", description or "").strip("_").lower()
    return SEGMENT_COLUMN_PREFIX + (words or str(segment_id))


@dataclass
class SegmentLayout:
    """Which segments each company's subaccounts have, and each known subaccount's values."""

    # (company_id, segment_id) -> column name
    column_by_segment: dict[tuple[str, int], str] = field(default_factory=dict)
    # company_id -> [(segment_id, length)] in key order, from the dimension definition
    lengths: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # (company_id, subaccount number) -> {segment_id: value}, from /v1/subaccount
    known_values: dict[tuple[str, str], dict[int, str]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, dimensions: Iterable[Mapping[str, Any]],
                     subaccounts: Iterable[Mapping[str, Any]] = ()) -> SegmentLayout:
        """The layout from `DtoDimension` records (the SUBACCOUNT one) and `SubAccountDto` records."""
        layout = cls()
        for dimension in dimensions:
            if str(dimension.get("id", "")).upper() != SUBACCOUNT_DIMENSION_ID:
                continue
            company = str(dimension.get("company_id", ""))
            segments = sorted(dimension.get("segments") or [], key=lambda s: s.get("segmentId") or 0)
            layout.lengths[company] = [
                (int(segment["segmentId"]), int(segment.get("length") or 0)) for segment in segments
            ]
            for segment in segments:
                layout._name(company, int(segment["segmentId"]), segment.get("description"))
        for subaccount in subaccounts:
            company = str(subaccount.get("company_id", ""))
            number = text(subaccount, "subaccountNumber")
            values = layout._values_from_segments(company, subaccount.get("segments"))
            if number is not None and values:
                layout.known_values[(company, number)] = values
        return layout

    def observe(self, company: str, subaccount: Mapping[str, Any] | None) -> None:
        """Learn segment names from a nested subaccount (used when no dimension was read)."""
        if isinstance(subaccount, Mapping):
            self._values_from_segments(company, subaccount.get("segments"))

    @property
    def column_names(self) -> list[str]:
        """Every segment column, ordered by segment id and then name, each once."""
        ordered = sorted(self.column_by_segment.items(), key=lambda item: (item[0][1], item[1]))
        return list(dict.fromkeys(name for _, name in ordered))

    def values(self, company: str, subaccount: Mapping[str, Any] | str | None) -> dict[str, str]:
        """{segment column: value} for one subaccount (a nested object or a subaccount number)."""
        if isinstance(subaccount, Mapping):
            nested = self._values_from_segments(company, subaccount.get("segments"))
            number = text(subaccount, "subaccountNumber")
        else:
            nested, number = {}, subaccount
        by_id = (self.known_values.get((company, number)) or self._split(company, number)) if number else {}
        by_id = {**by_id, **nested}
        return {
            self.column_by_segment[(company, segment_id)]: value
            for segment_id, value in by_id.items()
            if (company, segment_id) in self.column_by_segment
        }

    def _name(self, company: str, segment_id: int, description: str | None) -> str:
        key = (company, segment_id)
        if key not in self.column_by_segment:
            self.column_by_segment[key] = segment_column_name(description, segment_id)
        return self.column_by_segment[key]

    def _values_from_segments(self, company: str, segments: Any) -> dict[int, str]:
        values: dict[int, str] = {}
        for segment in segments or []:
            if segment.get("segmentId") is None:
                continue
            segment_id = int(segment["segmentId"])
            self._name(company, segment_id, segment.get("segmentDescription"))
            value = text(segment, "segmentValue")
            if value is not None:
                values[segment_id] = value
        return values

    def _split(self, company: str, number: str) -> dict[int, str]:
        """Split a subaccount number by the declared segment lengths (with or without dashes)."""
        lengths = self.lengths.get(company) or []
        if not lengths:
            return {}
        parts = number.split("-")
        if len(parts) == len(lengths):
            return {segment_id: part for (segment_id, _), part in zip(lengths, parts, strict=True)}
        if len(number) == sum(length for _, length in lengths):
            values, start = {}, 0
            for segment_id, length in lengths:
                values[segment_id] = number[start:start + length]
                start += length
            return values
        log.debug("subaccount %r of company %s does not fit its segment lengths", number, company)
        return {}


def segment_columns(layout: SegmentLayout, companies: pa.Array, numbers: pa.Array,
                    segments: pa.Array | None = None) -> dict[str, pa.Array]:
    """The segment columns of rows, as `observe` over every row and then `values` for each gives
    them, but computed once per distinct subaccount. A row's subaccount is an object whose
    `subaccountNumber` is in `numbers` and whose `segments` (`SEGMENTS_TYPE`) are in `segments`,
    or, without `segments`, a subaccount number. Observing the distinct subaccounts in order of
    first appearance names every segment as observing every row does (the first description
    seen wins, and a row's first sight of a segment is its subaccount's first appearance).
    """
    keys = [companies, numbers] if segments is None else [companies, numbers, _segments_key(segments)]
    first, positions = distinct_rows(keys)
    at = pa.array(first, pa.int64())
    company_ids, subaccounts = companies.take(at).to_pylist(), numbers.take(at).to_pylist()
    if segments is not None:
        subaccounts = [{"subaccountNumber": number, "segments": listed}
                       for number, listed in zip(subaccounts, segments.take(at).to_pylist(), strict=True)]
    try:
        for company, subaccount in zip(company_ids, subaccounts, strict=True):
            layout.observe(company, subaccount)
        values = [layout.values(company, subaccount) for company, subaccount in zip(company_ids, subaccounts,
                                                                                      strict=True)]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise Declined("a subaccount the per-record path refuses") from None
    return {name: spread([found.get(name) for found in values], positions, pa.string())
            for name in layout.column_names}


def _segments_key(segments: pa.Array) -> pa.Array:
    """One text per row that differs exactly where the rows' segment lists differ (every part
    length-prefixed, so no text a segment holds can make two lists look alike)."""
    items = pc.list_flatten(segments)
    if items.null_count:
        raise Declined("a segment that is null")
    parts = [_prefixed(pc.cast(pc.struct_field(items, name), pa.string()))
             for name in ("segmentId", "segmentDescription", "segmentValue")]
    per_item = pc.binary_join_element_wise(*parts, "|")
    lengths = pc.fill_null(pc.list_value_length(segments), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array([0, *lengths.cumsum().tolist()], pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, per_item), ";")
    return pc.if_else(pc.is_null(segments), pa.scalar("N"), joined)


def _prefixed(values: pa.Array) -> pa.Array:
    prefixed = pc.binary_join_element_wise(pc.cast(pc.utf8_length(values), pa.string()), values, ":")
    return pc.fill_null(prefixed, "N")
