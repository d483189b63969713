"""An entity's records as the API serves them: generated records plus a small overlay of
mutations, filtered, ordered and paged.

Serving order is (lastModifiedDateTime, key): the generated records in index order, then the
overlay records (modified and created ones, whose timestamps come from the sandbox clock and
so are later than every generated one). A modified record therefore jumps to the end of the
list, and rows behind it shift one place forward, as offset paging on the real API does.

Generated records hidden by a mutation are a sorted list of indices; with a delta or period
filter on a monotonic source, the generated part of a result is an index range minus those
indices, so page N is found by arithmetic and binary search, never by a scan. Other filters
(status, supplier, ...) scan the candidate range once and cache the matching indices.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from visma_tableau_pipeline.sandbox.visma.masters import version_stamp
from visma_tableau_pipeline.sandbox.visma.sources import Source
from visma_tableau_pipeline.sandbox.visma.wire import clean, parse_wire_timestamp, render_json, timestamp
from visma_tableau_pipeline.visma.catalogue import key_values

_FILTER_CACHE_SIZE = 32


class RecordNotFound(KeyError):
    """No record with this key exists (or it was deleted)."""


class RecordExists(ValueError):
    """A record with this key exists already."""


def _with_suffix(text: str, suffix: str) -> str:
    return f"{text[:-1]}{suffix}}}" if suffix else text


def field_value(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class Query:
    """A parsed list request's filters."""

    modified: tuple[str, int] | None = None  # (condition, ms)
    period: str | None = None  # YYYYPP
    equals: tuple[tuple[str, Any], ...] = ()  # (dotted field, value)
    modified_field: str = "lastModifiedDateTime"


def _compare(value: int, condition: str, bound: int) -> bool:
    if condition == ">":
        return value > bound
    if condition == ">=":
        return value >= bound
    if condition == "<":
        return value < bound
    return value <= bound


class BaseView:
    """The generated records a query selects, in order: a range minus hidden indices, or an
    explicit index list. With `prefix`, each record weighs its line count (journal paging)."""

    def __init__(self, lo: int, hi: int, hidden: list[int], indices: Sequence[int] | None,
                 prefix: Sequence[int] | None) -> None:
        self.lo, self.hi = lo, hi
        self.indices = indices
        self.prefix = prefix  # prefix[i] = units before record i (over all generated records)
        if indices is None:
            self.hidden = hidden[bisect_left(hidden, lo):bisect_left(hidden, hi)]
            self.count = hi - lo - len(self.hidden)
        else:
            self.hidden = []
            self.count = len(indices)
        if prefix is None:
            self.units = self.count
        elif indices is None:
            self.units = prefix[hi] - prefix[lo] - sum(prefix[h + 1] - prefix[h] for h in self.hidden)
            self._hidden_units = list(accumulate((prefix[h + 1] - prefix[h] for h in self.hidden), initial=0))
        else:
            self._local_prefix = list(accumulate((prefix[i + 1] - prefix[i] for i in indices), initial=0))
            self.units = self._local_prefix[-1]

    def index_at(self, position: int) -> int:
        """The generated index of the record at `position` (0-based) of this view."""
        if self.indices is not None:
            return self.indices[position]
        target = self.lo + position
        while True:
            candidate = self.lo + position + bisect_right(self.hidden, target)
            if candidate == target:
                return target
            target = candidate

    def iter_from(self, position: int) -> Iterator[int]:
        """Indices from `position` to the end of the view."""
        if position >= self.count:
            return
        if self.indices is not None:
            yield from self.indices[position:]
            return
        index = self.index_at(position)
        hidden_at = bisect_left(self.hidden, index)
        while index < self.hi:
            if hidden_at < len(self.hidden) and self.hidden[hidden_at] == index:
                hidden_at += 1
            else:
                yield index
            index += 1

    def locate_unit(self, unit: int) -> tuple[int, int]:
        """(position of the record holding unit `unit`, units of that record before it)."""
        if self.prefix is None:
            return unit, 0
        if self.indices is not None:
            position = bisect_right(self._local_prefix, unit) - 1
            return position, unit - self._local_prefix[position]
        prefix, lo = self.prefix, self.lo

        def units_before(index: int) -> int:
            return prefix[index] - prefix[lo] - self._hidden_units[bisect_left(self.hidden, index)]

        index = bisect_right(range(lo, self.hi), unit, key=units_before) - 1 + lo
        position = index - lo - bisect_left(self.hidden, index)
        return position, unit - units_before(index)


@dataclass(frozen=True)
class Page:
    """The records of one page as JSON texts, and the size of the whole list (records, or
    lines where lines span pages)."""

    texts: list[str]
    total_units: int


class EntityStore:
    """One entity of one company: generated records, the overlay, and list queries."""

    def __init__(self, source: Source, key_fields: Sequence[str],
                 modified_field: str = "lastModifiedDateTime") -> None:
        self.source = source
        self.key_fields = tuple(key_fields)
        self.modified_field = modified_field
        self.hidden: list[int] = []
        self.overlay: dict[tuple[str, ...], dict] = {}
        self.created = 0
        self.version = 0
        self.mutated_ms = 0  # sandbox-clock time of the latest mutation
        self._ordered_overlay: list[dict] | None = None
        self._filter_cache: OrderedDict[tuple, list[int]] = OrderedDict()
        self._prefix: list[int] | None = None
        self.lock = threading.RLock()

    # --- reading -------------------------------------------------------------------------

    def _line_prefix(self) -> list[int] | None:
        if self.source.lines_field is None:
            return None
        if self._prefix is None:
            counts = self.source.line_counts()
            self._prefix = list(accumulate(counts, initial=0))
        return self._prefix

    def _overlay_in_order(self) -> list[dict]:
        if self._ordered_overlay is None:
            self._ordered_overlay = sorted(
                self.overlay.values(),
                key=lambda record: (self._modified_ms(record), key_values(self.key_fields, record)),
            )
        return self._ordered_overlay

    def _modified_ms(self, record: dict) -> int:
        text = record.get(self.modified_field)
        return parse_wire_timestamp(text) if isinstance(text, str) else 0

    def _record_period(self, record: dict) -> str | None:
        name = self.source.period_field
        value = field_value(record, name) if name else None
        if name == "postPeriod" and isinstance(value, str):  # PPYYYY
            return value[2:] + value[:2]
        return value

    def _matches(self, record: dict, query: Query, with_ranges: bool) -> bool:
        if with_ranges:
            if query.modified and not _compare(self._modified_ms(record), *query.modified):
                return False
            if query.period and self._record_period(record) != query.period:
                return False
        return all(field_value(record, name) == value for name, value in query.equals)

    def base_view(self, query: Query) -> BaseView:
        source, count = self.source, len(self.source)
        lo, hi = 0, count
        if source.monotonic:
            if query.modified:
                condition, bound = query.modified
                cut = (bisect_left if condition in (">=", "<") else bisect_right)(
                    range(count), bound, key=source.modified_ms)
                lo, hi = (cut, count) if condition in (">", ">=") else (0, cut)
            if query.period:
                def period_of(index: int) -> str:
                    return source.period(index) or ""  # a source listed by period gives each record one

                lo = max(lo, bisect_left(range(count), query.period, key=period_of))
                hi = min(hi, bisect_right(range(count), query.period, key=period_of))
                hi = max(lo, hi)
            scan = bool(query.equals)
        else:
            scan = bool(query.equals or query.modified or query.period)
        indices = None
        if scan:
            signature = (lo, hi, query, self.version)
            indices = self._filter_cache.get(signature)
            if indices is None:
                hidden = set(self.hidden)
                indices = [
                    i for i in range(lo, hi)
                    if i not in hidden and self._matches(source.build(i), query, not source.monotonic)
                ]
                self._filter_cache[signature] = indices
                if len(self._filter_cache) > _FILTER_CACHE_SIZE:
                    self._filter_cache.popitem(last=False)
        return BaseView(lo, hi, self.hidden, indices, self._line_prefix())

    def select(self, query: Query) -> tuple[BaseView, list[dict]]:
        """The generated part and the overlay part of a query's result."""
        with self.lock:
            view = self.base_view(query)
            extra = [record for record in self._overlay_in_order() if self._matches(record, query, True)]
            return view, extra

    def page(self, query: Query, start: int, size: int, max_page_size: int | None = None) -> Page:
        """Records [start, start + size) of the result; for journals, lines in that range.

        With `max_page_size`, every record carries `metadata: {totalCount, maxPageSize}`.
        """
        view, extra = self.select(query)
        if self.source.lines_field is None:
            total = view.count + len(extra)
        else:
            total = view.units + sum(len(r[self.source.lines_field]) for r in extra)
        suffix = "" if max_page_size is None else f',"metadata":{{"totalCount":{total},"maxPageSize":{max_page_size}}}'
        if self.source.lines_field is None:
            return Page(self._record_page(view, extra, start, size, suffix), total)
        return Page(self._line_page(view, extra, start, size, suffix), total)

    def _record_page(self, view: BaseView, extra: list[dict], start: int, size: int, suffix: str) -> list[str]:
        texts: list[str] = []
        render = self.source.render
        for index in view.iter_from(start):
            if len(texts) == size:
                break
            texts.append(render(index, suffix))
        overlay_start = max(0, start - view.count)
        wanted = extra[overlay_start:overlay_start + size - len(texts)]
        texts.extend(_with_suffix(render_json(r), suffix) for r in wanted)
        return texts

    def _line_page(self, view: BaseView, extra: list[dict], start: int, size: int, suffix: str) -> list[str]:
        lines_field = self.source.lines_field
        assert lines_field is not None
        records: list[dict] = []
        wanted = size
        if start < view.units:
            position, skip = view.locate_unit(start)
            for index in view.iter_from(position):
                if wanted <= 0:
                    break
                record = self.source.build(index)
                lines = record[lines_field]
                taken = lines[skip:skip + wanted]
                wanted -= len(taken)
                skip = 0
                records.append({**record, lines_field: taken})
        offset = max(0, start - view.units)
        for record in extra:
            if wanted <= 0:
                break
            lines = record[lines_field]
            if offset >= len(lines):
                offset -= len(lines)
                continue
            taken = lines[offset:offset + wanted]
            wanted -= len(taken)
            offset = 0
            records.append({**record, lines_field: taken})
        return [_with_suffix(render_json(r), suffix) for r in records]

    def all_records(self) -> Iterator[dict]:
        """Every current record, clean, in serving order."""
        view, extra = self.select(Query())
        for index in view.iter_from(0):
            yield clean(self.source.build(index))
        yield from (clean(record) for record in extra)

    # --- mutations -----------------------------------------------------------------------

    def _touch(self, record: dict, now_ms: int) -> None:
        stamp = timestamp(now_ms)
        if self.modified_field == "lastModified":  # dimensions: their segments carry the time
            for segment in record.get("segments", []):
                segment["lastModified"] = stamp
        elif self.modified_field in record:
            record[self.modified_field] = stamp
        if "timeStamp" in record:
            record["timeStamp"] = version_stamp(now_ms)

    def _changed(self, now_ms: int) -> None:
        self.version += 1
        self.mutated_ms = max(self.mutated_ms, now_ms)
        self._ordered_overlay = None

    def _hide_base(self, key: tuple[str, ...]) -> None:
        """Hide the generated record of `key` (found by `current`), which the overlay replaces."""
        index = self._find_base(key)
        if index is None:
            raise RecordNotFound(f"{self.source.entity_name} {key} has no generated record to hide")
        insort(self.hidden, index)

    def _find_base(self, key: tuple[str, ...]) -> int | None:
        index = self.source.index_of(key)
        if index is None or not 0 <= index < len(self.source):
            return None
        position = bisect_left(self.hidden, index)
        if position < len(self.hidden) and self.hidden[position] == index:
            return None
        if key_values(self.key_fields, self.source.build(index)) != key:
            return None
        return index

    def current(self, key: tuple[str, ...]) -> dict:
        """The clean record with this key."""
        if len(key) != len(self.key_fields):
            raise ValueError(f"a {self.source.entity_name} key has {len(self.key_fields)} parts "
                             f"({', '.join(self.key_fields)}); got {key}")
        with self.lock:
            if key in self.overlay:
                return clean(self.overlay[key])
            index = self._find_base(key)
            if index is None:
                raise RecordNotFound(f"{self.source.entity_name} {key} does not exist")
            return clean(self.source.build(index))

    def text(self, key: tuple[str, ...]) -> str:
        """The record with this key as its list pages write it (without their `metadata`)."""
        with self.lock:
            if key in self.overlay:
                return render_json(self.overlay[key])
            index = self._find_base(key) if len(key) == len(self.key_fields) else None
            if index is None:
                raise RecordNotFound(f"{self.source.entity_name} {key} does not exist")
            return self.source.render(index)

    def modify(self, key: tuple[str, ...], changes: dict | Callable[[dict], dict], now_ms: int) -> dict:
        """Apply `changes` (or a function of the record giving them) and bump its timestamp."""
        with self.lock:
            record = self.current(key)
            updates = changes(record) if callable(changes) else changes
            record.update(updates)
            if key_values(self.key_fields, record) != key:
                raise ValueError(f"a modification may not change the key of {self.source.entity_name} {key}")
            self._touch(record, now_ms)
            if key not in self.overlay:
                self._hide_base(key)
            self.overlay[key] = record
            self._changed(now_ms)
            return clean(record)

    def create(self, record: dict | None, now_ms: int) -> dict:
        """Add a record: the given one, or the source's next generated one, created now."""
        with self.lock:
            if record is None:
                record = clean(self.source.build(len(self.source) + self.created, when_ms=now_ms))
                self.created += 1
            else:
                record = clean(record)
                self._touch(record, now_ms)
            key = key_values(self.key_fields, record)
            if key in self.overlay or self._find_base(key) is not None:
                raise RecordExists(f"{self.source.entity_name} {key} exists already")
            self.overlay[key] = record
            self._changed(now_ms)
            return clean(record)

    def delete(self, key: tuple[str, ...], now_ms: int) -> dict:
        """Hard-delete a record; returns what it was."""
        with self.lock:
            record = self.current(key)
            if key in self.overlay:
                del self.overlay[key]
            else:
                self._hide_base(key)
            self._changed(now_ms)
            return record
