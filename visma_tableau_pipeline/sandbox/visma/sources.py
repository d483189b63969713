"""Where an entity's generated records come from, one company at a time.

A `SeriesSource` generates record i on demand. Its creation time, lastModifiedDateTime and
financial period grow with i, so a delta or period filter is an index range found by binary
search and page N is generated in O(page size). A `ListSource` holds a short list (accounts,
branches, periods, computed GL balances) and is filtered by scanning.

Builders return records whose amounts are marked numbers (see `wire.money`); `wire.clean`
turns one into plain JSON data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from visma_tableau_pipeline.sandbox.visma.calendar import FiscalCalendar
from visma_tableau_pipeline.sandbox.visma.companies import CompanyProfile
from visma_tableau_pipeline.sandbox.visma.determinism import stream_key
from visma_tableau_pipeline.sandbox.visma.wire import day_of_ms, render_json
from visma_tableau_pipeline.visma.catalogue import key_values

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class CompanyContext:
    """What every builder of one company needs."""

    profile: CompanyProfile
    seed: int
    calendar: FiscalCalendar
    data_start_ms: int
    data_end_ms: int

    def key(self, *parts: object) -> int:
        return stream_key(self.seed, self.profile.company_id, *parts)


class Source:
    """The records of one entity in one company, before any mutation."""

    entity_name: str = ""
    # whether modified_ms(i) and period(i) never decrease with i (filters become index ranges)
    monotonic: bool = False
    # record field that holds the YYYYPP period (dotted), or "postPeriod" written PPYYYY
    period_field: str | None = None
    # nested list counted by paging instead of records (journal lines)
    lines_field: str | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def modified_ms(self, index: int) -> int:
        raise NotImplementedError

    def period(self, index: int) -> str | None:
        return None

    def build(self, index: int, when_ms: int | None = None) -> dict:
        """Record `index`; `when_ms` makes a new record created (and modified) at that time."""
        raise NotImplementedError

    def render(self, index: int, suffix: str = "") -> str:
        """Record `index` as compact JSON text, with `suffix` (more members, such as
        `,"metadata":{...}`) before its closing brace. Sources on a hot path write it directly."""
        text = render_json(self.build(index))
        return f"{text[:-1]}{suffix}}}" if suffix else text

    def index_of(self, key: tuple[str, ...]) -> int | None:
        """The index of the record with this key, or None."""
        raise NotImplementedError

    def line_counts(self) -> Sequence[int]:
        """Lines per generated record, for sources whose `lines_field` pages by line."""
        raise NotImplementedError(f"{self.entity_name} does not page by lines")


class SeriesSource(Source):
    """`count` records spread evenly in time between `start_ms` and `end_ms`."""

    monotonic = True
    lag_ms = 2 * HOUR_MS  # lastModifiedDateTime trails creation by a little

    def __init__(self, ctx: CompanyContext, count: int, start_ms: int, end_ms: int) -> None:
        self.ctx = ctx
        self.count = count
        self.start_ms = start_ms
        self.span_ms = end_ms - start_ms
        self.stream = ctx.key(self.entity_name)

    def __len__(self) -> int:
        return self.count

    def created_ms(self, index: int) -> int:
        return self.start_ms + index * self.span_ms // max(self.count, 1)

    def modified_ms(self, index: int) -> int:
        return self.created_ms(index) + self.lag_ms

    def times(self, index: int, when_ms: int | None) -> tuple[int, int]:
        """(created, modified) of record `index`, or both `when_ms` for a new record."""
        if when_ms is not None:
            return when_ms, when_ms
        created = self.created_ms(index)
        return created, created + self.lag_ms

    def period(self, index: int) -> str | None:
        if self.period_field is None:
            return None
        return self.ctx.calendar.period_of_day(day_of_ms(self.created_ms(index))).period_id


class ListSource(Source):
    """A short, fully built list in serving order."""

    def __init__(self, records: list[dict], key_fields: tuple[str, ...],
                 modified_ms: list[int] | None = None) -> None:
        self.records = records
        self.key_fields = key_fields
        self._modified = modified_ms or [0] * len(records)
        self._index = {key_values(key_fields, record): i for i, record in enumerate(records)}

    def __len__(self) -> int:
        return len(self.records)

    def modified_ms(self, index: int) -> int:
        return self._modified[index]

    def build(self, index: int, when_ms: int | None = None) -> dict:
        if when_ms is not None:
            raise ValueError(f"{self.entity_name} is a fixed list: new records need a body")
        return dict(self.records[index])

    def index_of(self, key: tuple[str, ...]) -> int | None:
        return self._index.get(tuple(key))


def parse_number(text: str, prefix: str = "") -> int | None:
    """The integer in a generated number such as `000123` or `TC000123`, or None."""
    if not text.startswith(prefix) or not text[len(prefix):].isdigit():
        return None
    return int(text[len(prefix):])
