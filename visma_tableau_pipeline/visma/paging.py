"""Reading a paged Visma list completely: the stop rule, concurrent pages, batch merging, dedupe.

The stop rule (API-FACTS "Paging"): a `pageSize` over the endpoint's maximum is silently reduced
to it, so the size that counts is the one *applied*, min(requested, maxPageSize), learnt from page
1's `metadata`. The read stops when a page holds fewer units than that, or when pageNumber x applied
size reaches `totalCount`. Stopping on the requested size instead (as two public clients do) ends
the read after page 1 whenever the maximum is smaller than the request, and loses the rest.

`/v2/journaltransaction` counts *lines*, not batches: its units are lines, and a batch split over
two pages is merged before it is handed on. Offset paging over changing data can show a record
twice (rows shift between pages), or skip it: records are deduplicated on the catalogue key
within one read, and a pass over the list that saw rows move (a key twice, a changing
`totalCount`) is followed by another pass that yields only what the earlier ones missed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.visma.catalogue import Entity, record_key
from visma_tableau_pipeline.visma.timestamps import parse_timestamp

A = TypeVar("A")  # a page's answer as fetched, before it is decoded


class RecordBatch(list):
    """Records (a plain list of dicts to every caller) with each record's stored text beside it.

    `texts[i]` is the JSON text the state store keeps for record i: Visma's own text of the item
    without its volatile fields; record i then holds only the fields the store indexes it by,
    and the volatile ones (a read `as_stored`). None where the read kept no text (a journal
    batch merged from pieces, an item whose text could not be cut safely, a read not
    `as_stored`): record i is then whole, and the store writes its canonical JSON. `keys[i]` is
    record i's catalogue key as the store spells it (`key_string`): worked out once when the
    page is checked, then reused by the dedupe and the sync.
    """

    __slots__ = ("keys", "texts")

    def __init__(
        self, records: Iterable[dict], texts: Iterable[str | None] | None, keys: Iterable[str]
    ) -> None:
        super().__init__(records)
        self.texts: list[str | None] = [None] * len(self) if texts is None else list(texts)
        self.keys: list[str] = list(keys)
        if len(self.texts) != len(self) or len(self.keys) != len(self):
            raise ValueError(f"{len(self)} records, {len(self.texts)} texts, {len(self.keys)} keys")


@dataclass(frozen=True)
class Page:
    """One page as Visma sent it (items still carry their `metadata`)."""

    number: int
    items: list[dict]

    @property
    def total_count(self) -> int | None:
        return _metadata_number(self.items, "totalCount")

    @property
    def max_page_size(self) -> int | None:
        return _metadata_number(self.items, "maxPageSize")


def _metadata_number(items: list[dict], name: str) -> int | None:
    for item in items:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        if isinstance(metadata, dict) and metadata.get(name) is not None:
            return int(metadata[name])
    return None


def page_units(entity: Entity, items: list[dict]) -> int:
    """What the endpoint counts in `pageSize`: items, or lines for entities paged by lines."""
    if not entity.lines_span_pages:
        return len(items)
    return sum(max(1, len(item.get(entity.lines_field or "") or [])) for item in items)


def applied_page_size(requested: int, max_page_size: int | None) -> int:
    """The page size Visma actually applies to a request for `requested`."""
    return min(requested, max_page_size) if max_page_size else requested


def is_last_page(number: int, units: int, applied: int, total_count: int | None) -> bool:
    """The stop rule: a short page, or everything `totalCount` announced has been covered."""
    return units < applied or (total_count is not None and number * applied >= total_count)


def iter_pages(
    fetch: Callable[[int], A],
    *,
    decode: Callable[[int, A], list[dict]],
    entity: Entity,
    requested_size: int,
    executor: Executor,
    window: int,
) -> Iterator[Page]:
    """Every page of a paged list, in page order.

    Page 1 is read alone, for `totalCount` and `maxPageSize`; the following pages are fetched
    concurrently on `executor`, at most `window` of them in flight (or waiting to be consumed), so
    memory stays bounded however long the list. A page's `totalCount` can grow while reading: the
    plan is extended page by page as long as the stop rule says the list goes on.

    `fetch` gets a page's answer; `decode` turns it into items in the caller's thread, one page
    at a time, as it is consumed. Decoding holds the GIL, so decoding in the fetching threads
    ran no faster, and pages decoded side by side cost about a third more CPU time
    (benchmarks/visma_sync.py); an answer waiting as bytes also takes less memory than decoded.
    """
    first = Page(1, decode(1, fetch(1)))
    yield first
    applied = applied_page_size(requested_size, first.max_page_size)
    total = first.total_count
    if is_last_page(1, page_units(entity, first.items), applied, total):
        return
    last_planned = _pages_for(total, applied) or 2
    next_number = 2
    in_flight: deque[tuple[int, Future[A]]] = deque()
    try:
        while True:
            while len(in_flight) < window and next_number <= last_planned:
                in_flight.append((next_number, executor.submit(fetch, next_number)))
                next_number += 1
            number, future = in_flight.popleft()
            page = Page(number, decode(number, future.result()))
            yield page
            total = page.total_count if page.total_count is not None else total
            if is_last_page(number, page_units(entity, page.items), applied, total):
                return
            last_planned = max(last_planned, _pages_for(total, applied) or number + 1)
    finally:
        for _, future in in_flight:
            future.cancel()


def _pages_for(total_count: int | None, applied: int) -> int | None:
    return None if total_count is None else max(1, math.ceil(total_count / applied))


class BatchMerger:
    """Joins the pieces of journal batches that `/v2/journaltransaction` split over pages.

    The last batch of a page is held back until the next page shows whether it continues there.
    Lines that arrive twice (rows shifting between pages) are kept once, by `lineNumber`.
    """

    def __init__(self, entity: Entity) -> None:
        self._entity = entity
        self._lines_field = entity.lines_field or ""
        self._pending: dict | None = None

    def feed(self, items: list[dict]) -> list[dict]:
        """The batches of this page that are complete now; the last one stays pending."""
        complete: list[dict] = []
        for item in items:
            if self._pending is not None and self._key(item) == self._key(self._pending):
                self._add_lines(self._pending, item.get(self._lines_field) or [])
                continue
            if self._pending is not None:
                complete.append(self._pending)
            self._pending = {**item, self._lines_field: []}
            self._add_lines(self._pending, item.get(self._lines_field) or [])
        return complete

    def finish(self) -> list[dict]:
        """The batch still pending at the end of the read."""
        pending, self._pending = self._pending, None
        return [pending] if pending is not None else []

    def _key(self, item: dict) -> tuple[str, ...]:
        return record_key(self._entity, item)

    def _add_lines(self, batch: dict, lines: list[dict]) -> None:
        merged: list[dict] = batch[self._lines_field]
        seen = {line.get("lineNumber") for line in merged if line.get("lineNumber") is not None}
        for line in lines:
            number = line.get("lineNumber")
            if number is not None and number in seen:
                continue
            seen.add(number)
            merged.append(line)


class Deduplicator:
    """Lets each record through once per read, unless a later copy was modified more recently.

    A record edited during the read moves between pages and can show up twice; the newer copy is
    let through again so that a keyed upsert ends on the latest version. A read can take several
    passes over the list: `repeats` counts the keys met twice within the current pass, the sign
    that rows moved while it was read (and that some may have been skipped).
    """

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        # What it remembers is a million entries in a long read, kept where Python's cyclic
        # collector never walks them: dicts of key strings and ints, which it stops tracking, not
        # tuples, which it tracks. Walking a remembered tuple per record on every full collection
        # took two thirds of the CPU of reading 1,000,000 invoices (benchmarks/visma_sync.py).
        # The modification time is kept as Visma wrote it and parsed only when a key comes back:
        # parsing every record's timestamp with strptime cost ten times the rest of the dedupe.
        self._modified: dict[str, object] = {}  # key -> modified as Visma wrote it
        self._pass_of: dict[str, int] = {}  # key -> the pass that last saw it
        self._pass = 1
        self.repeats = 0

    def next_pass(self) -> None:
        self._pass += 1
        self.repeats = 0

    def admit(self, record: dict, key: str | None = None) -> bool:
        """Whether to hand `record` on; `key` is its `key_string`, if already worked out."""
        name = key if key is not None else key_string(record_key(self.entity, record))
        raw_modified = record.get(self.entity.modified_field)
        previous_pass = self._pass_of.get(name)
        self._pass_of[name] = self._pass
        if previous_pass is not None:
            if previous_pass == self._pass:
                self.repeats += 1
            previous_raw = self._modified[name]
            modified, previous_modified = _modified(raw_modified), _modified(previous_raw)
            if modified is None or previous_modified is None or modified <= previous_modified:
                return False
        self._modified[name] = raw_modified
        return True


def _modified(raw: Any) -> datetime | None:
    if not raw:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        return None
