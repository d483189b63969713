"""The Visma.net ERP client: authenticated, paced, retried reads of the catalogue's entities.

One `VismaClient` serves one company: its own token, its own rate budget (shared with every client
of the same company and client id in this process, and through the state database with every other
process when it is given `company_pacer(company, db)`), its own statistics. It only reads.

    with VismaClient(company) as client:
        for batch in client.read_entity(entity("supplier_invoices"), modified_since=watermark):
            store(batch)
        metadata = client.stats.as_metadata()
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import cache
from itertools import compress
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from visma_tableau_pipeline.settings import CompanySettings
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.visma.auth import TokenProvider
from visma_tableau_pipeline.visma.catalogue import DIMENSION_IDS_PATH, Delta, Entity, Paging, record_key
from visma_tableau_pipeline.visma.errors import (
    VismaError,
    VismaPayloadError,
    VismaRateLimited,
    VismaRequestError,
    VismaTenantError,
    VismaTransportError,
    VismaUnstableReadError,
    error_for_status,
)
from visma_tableau_pipeline.visma.items import (
    NonFiniteNumber,
    NotJson,
    decode,
    decode_for_store,
)
from visma_tableau_pipeline.visma.pacing import RequestPacer
from visma_tableau_pipeline.visma.paging import BatchMerger, Deduplicator, Page, RecordBatch, iter_pages
from visma_tableau_pipeline.visma.periods import PERIOD_FIELDS
from visma_tableau_pipeline.visma.retrying import RetryPolicy, call_with_retries
from visma_tableau_pipeline.visma.shared_pacing import company_pacer
from visma_tableau_pipeline.visma.stats import ClientStats
from visma_tableau_pipeline.visma.timestamps import format_for_query, parse_timestamp

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_PAGE_SIZE = 1000
DEFAULT_DELTA_OVERLAP = timedelta(minutes=5)
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=15.0)

# Endpoints that refuse to list without a filter: /v1/timeCard always, the /v2 GL endpoints when no
# periodId is given. A full read asks for everything modified since this date.
_NEEDS_A_FILTER = frozenset({"/v1/timeCard", "/v2/journaltransaction", "/v2/generalLedgerBalance"})
FULL_READ_SINCE = "1900-01-01"

# ASP.NET's answer when no route matches a path: said of the path, not of any record.
_ROUTING_MISS = "No HTTP resource was found"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Entities read one id at a time: the list of ids comes from another path.
_ID_LISTS = {"/v1/dimension/{dimensionId}": (DIMENSION_IDS_PATH, "dimensionId")}

_TENANT_HINT = (
    "Visma issued a token but the API refuses it. Most often VISMA_TENANT_ID (tenant_id in the "
    "VTP_CONFIG file) holds the customer (contract) tenant id instead of the company tenant id: "
    "login then succeeds and every API call answers 401. Use the company tenant id of company "
    "{company} (see docs.vismasoftware.no/vismanetapi/how-tos/fix401error). Otherwise the "
    "application may not be approved for this company, or lack the read scope."
)


class Presence(str, Enum):
    """What Visma's answer to a read by key says about the record."""

    EXISTS = "exists"  # 200 with the record
    GONE = "gone"  # 404 about the record: Visma confirms it no longer exists
    UNCLEAR = "unclear"  # an answer that proves neither (see `VismaClient.read_by_key`)


@dataclass(frozen=True)
class KeyedRead:
    """The answer to a read of one record by its key."""

    presence: Presence
    detail: str  # the path and what Visma answered, for the log
    records: RecordBatch | None = None  # the one record as stored, when it EXISTS


@dataclass(frozen=True)
class PageProgress:
    """What `read_entity` reports after each page (for run logs)."""

    entity: str
    page: int
    items: int
    total_count: int | None  # as Visma announced it; lines for journal transactions
    records_yielded: int  # records handed on so far in this pass over the list


class VismaClient:
    """Reads one Visma.net ERP company. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        company: CompanySettings,
        *,
        transport: httpx.BaseTransport | None = None,
        max_concurrency: int | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy = RetryPolicy(),
        page_size: int = DEFAULT_PAGE_SIZE,
        delta_overlap: timedelta = DEFAULT_DELTA_OVERLAP,
        max_passes: int = 3,
        pacer: RequestPacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.company = company
        self.stats = ClientStats()
        self.max_concurrency = max_concurrency or company.max_concurrency
        self._retry_policy = retry_policy
        self._page_size = page_size
        self._delta_overlap = delta_overlap
        self._max_passes = max_passes
        self._sleep = sleep
        headers = {"Accept": "application/json"}
        if company.ipp_company_id:
            headers["ipp-company-id"] = company.ipp_company_id
        self._http = httpx.Client(
            base_url=company.api_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers=headers,
            limits=httpx.Limits(max_connections=self.max_concurrency + 2),
        )
        self._auth = TokenProvider(
            company, self._http, policy=retry_policy, stats=self.stats, clock=clock, sleep=sleep
        )
        self._pacer = pacer or company_pacer(company)
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix=f"visma-{company.company_id}"
        )

    def __enter__(self) -> VismaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the page threads and close the connections."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    # -- one request -------------------------------------------------------------------------

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        entity: str | None = None,
        page: int | None = None,
    ) -> Any:
        """GET `path` under the API base URL and return its JSON (numbers with fractions as Decimal).

        Paced, retried (429, 5xx, network), and renewed once on a 401. `entity` and `page` only
        name the context in errors.
        """
        context = {"company_id": self.company.company_id, "entity": entity, "page": page}
        return _decoded(self._answer(path, params, context), decode, context)

    def _answer(self, path: str, params: Mapping[str, Any] | None, context: dict) -> _Answer:
        """The successful response to a GET, after pacing, retries and one token renewal."""
        token = self._auth.token()
        try:
            response = self._send_with_retries(path, params, token, context)
        except VismaRequestError as error:
            if error.status != 401:
                raise
            log.info("Visma answered 401 for company %s: renewing the token once", self.company.company_id)
            self._auth.invalidate(token)
            try:
                response = self._send_with_retries(path, params, self._auth.token(), context)
            except VismaRequestError as again:
                if again.status != 401:
                    raise
                raise VismaTenantError(
                    "Visma refused a freshly issued token (401)",
                    status=401,
                    url=again.url,
                    visma_message=again.visma_message,
                    hint=_TENANT_HINT.format(company=self.company.company_id),
                    **context,
                ) from None
        return _Answer.of(response)

    def _send_with_retries(
        self, path: str, params: Mapping[str, Any] | None, token: str, context: dict
    ) -> httpx.Response:
        return call_with_retries(
            lambda: self._send(path, params, token, context),
            self._retry_policy,
            sleep=self._sleep,
            on_retry=self._count_retry,
        )

    def _send(
        self, path: str, params: Mapping[str, Any] | None, token: str, context: dict
    ) -> httpx.Response:
        self.stats.add(throttled_seconds=self._pacer.acquire())
        try:
            response = self._http.get(
                path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.TransportError as exc:
            raise VismaTransportError(
                f"the network failed talking to Visma ({type(exc).__name__})",
                url=str(exc.request.url) if _has_request(exc) else path,
                **context,
            ) from None
        self.stats.add(api_calls=1, bytes=len(response.content))
        # A read response and its stream refer to each other, so only Python's cyclic collector
        # would free the response and the page it holds. A read that makes few new objects runs
        # that collector rarely, and pages piled up (a full sync of 1,000,000 invoices peaked at
        # 2.1 GB). Without the stream, the page goes as soon as the client lets go of it.
        response.stream = httpx.ByteStream(b"")
        self._pacer.observe(response.headers)
        error = error_for_status(response, **context)
        if isinstance(error, VismaRateLimited) and error.retry_after:
            self._pacer.hold(error.retry_after)
        if error is not None:
            raise error
        return response

    def _count_retry(self, error: VismaError, seconds: float) -> None:
        throttled = seconds if isinstance(error, VismaRateLimited) else 0.0
        self.stats.add(retries=1, throttled_seconds=throttled)

    # -- reading an entity -------------------------------------------------------------------

    def read_entity(
        self,
        entity: Entity,
        *,
        modified_since: str | datetime | None = None,
        period: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        path_params: Mapping[str, str] | None = None,
        page_size: int | None = None,
        on_page: Callable[[PageProgress], None] | None = None,
        as_stored: bool = False,
        news_only: bool = False,
    ) -> Iterator[RecordBatch]:
        """Every record of `entity` (changed since `modified_since`, in `period`), in batches.

        `modified_since` is a watermark: the read asks for records modified at or after it minus
        the client's overlap. With `news_only` it asks for records modified after it, with no
        overlap (a sensor's probe: records it has seen already would fill its few pages). `period`
        is a YYYYPP financial period. `extra_params` must use parameter names from Visma's OpenAPI
        document (unknown names are silently ignored by Visma, returning the wrong rows). Records
        are deduplicated by the catalogue key within the read, journal batches split over pages are
        merged, and page `metadata` is removed.

        Each batch is a list of records. With `as_stored=True` (the sync) the batch comes in the
        form the state store takes, so that the store neither encodes a record again nor needs it
        decoded whole: its `texts` hold, where it can be had, Visma's own JSON text of each record
        without volatile fields, and a record that has a text holds only the fields the store
        indexes (key, period, modification time) and Visma's volatile ones; the text holds the
        whole record.
        """
        params = self._query(entity, modified_since, period, extra_params, news_only)
        if "{" in entity.path and not path_params:
            yield from self._read_each_id(entity, params, on_page, as_stored)
            return
        path = _fill_path(entity.path, path_params or {})
        dedupe = Deduplicator(entity)
        if entity.paging is Paging.NONE:
            page = Page(1, self._fetch_items(entity, path, params, None, as_stored))
            yield from self._records(entity, iter([page]), dedupe, on_page)
            return
        requested = page_size or self._page_size
        for pass_number in range(1, self._max_passes + 1):
            totals: set[int] = set()
            pages = iter_pages(
                lambda number: self._answer(
                    path, {**params, "pageNumber": number, "pageSize": requested},
                    self._context(entity, number),
                ),
                decode=lambda number, answer: self._items(entity, path, answer, number, as_stored),
                entity=entity,
                requested_size=requested,
                executor=self._executor,
                window=2 * self.max_concurrency,
            )
            yield from self._records(entity, _noting_totals(pages, totals), dedupe, on_page)
            if dedupe.repeats == 0 and len(totals) <= 1:
                return
            log.info(
                "%s: rows moved during pass %d of the read (%d seen twice, totalCount %s); "
                "reading again for rows that shifted past a page boundary",
                entity.name, pass_number, dedupe.repeats, sorted(totals),
            )
            self.stats.add(extra_passes=1)
            dedupe.next_pass()
        raise VismaUnstableReadError(
            f"rows kept moving during all {self._max_passes} passes over the list",
            company_id=self.company.company_id,
            entity=entity.name,
            hint="Every record handed on is correct, but some may have been skipped: run the read "
            "again when the company is quieter. The watermark must not advance on this read",
        )

    def _records(
        self,
        entity: Entity,
        pages: Iterator[Page],
        dedupe: Deduplicator,
        on_page: Callable[[PageProgress], None] | None,
    ) -> Iterator[RecordBatch]:
        """Pages to batches of records: merged (journal batches), deduplicated, metadata removed."""
        merger = BatchMerger(entity) if entity.lines_span_pages else None
        yielded = 0
        for page in pages:
            self.stats.add(pages=1)
            # A merged journal batch is no longer any one item, nor its text.
            batch = _admitted(merger.feed(page.items) if merger else page.items, dedupe)
            yielded += len(batch)
            log.debug("%s: page %d, %d items (total %s)", entity.name, page.number, len(page.items), page.total_count)
            if on_page is not None:
                on_page(PageProgress(entity.name, page.number, len(page.items), page.total_count, yielded))
            if batch:
                yield batch
        if merger:
            batch = _admitted(merger.finish(), dedupe)
            if batch:
                yield batch

    def _read_each_id(
        self,
        entity: Entity,
        params: dict[str, Any],
        on_page: Callable[[PageProgress], None] | None,
        as_stored: bool,
    ) -> Iterator[RecordBatch]:
        """Entities listed by id first (dimensions): the ids, then one request per id."""
        if entity.path not in _ID_LISTS:
            raise ValueError(f"{entity.name}: path {entity.path} needs path_params")
        ids_path, id_param = _ID_LISTS[entity.path]
        ids = self.get(ids_path, entity=entity.name)
        if not isinstance(ids, list):
            raise VismaPayloadError(
                f"Visma's list of ids at {ids_path} is not a list",
                company_id=self.company.company_id,
                entity=entity.name,
                hint="Check VISMA_API_URL (api_url) points at the Visma.net ERP API",
            )
        log.debug("%s: %d ids to read", entity.name, len(ids))
        for number, item_id in enumerate(ids, start=1):
            path = _fill_path(entity.path, {id_param: str(item_id)})
            page = Page(number, self._fetch_items(entity, path, params, None, as_stored))
            yield from self._records(entity, iter([page]), Deduplicator(entity), on_page)

    def _fetch_items(
        self, entity: Entity, path: str, params: Mapping[str, Any], page: int | None, as_stored: bool
    ) -> RecordBatch:
        """One response as a list of items, checked (see `_items`)."""
        answer = self._answer(path, params, self._context(entity, page))
        return self._items(entity, path, answer, page, as_stored, single="{" in entity.path)

    def read_by_key(self, entity: Entity, key: tuple[str, ...]) -> KeyedRead:
        """What Visma says about one record of `entity`, read by its key (`entity.by_key_path`).

        Reconciliation asks this about a record a list read did not see: rows shift between pages
        while Visma changes, so a record missing from a list may still exist. A 404 about the
        record confirms it is gone; ASP.NET's routing 404 ("No HTTP resource was found") says
        nothing about the record (the path did not match), and neither does a 200 holding another
        record: both are UNCLEAR. A record that exists comes in the form the state store takes
        (`as_stored`, see `read_entity`). Other failures raise, as any read does.
        """
        if entity.by_key_path is None:
            raise ValueError(f"{entity.name}: Visma offers no read of one record by its key")
        names = _PLACEHOLDER.findall(entity.by_key_path)
        if len(names) != len(key):
            raise ValueError(f"{entity.name}: {entity.by_key_path} takes {len(names)} key parts, not {key}")
        path = _fill_path(entity.by_key_path, dict(zip(names, key)))
        context = self._context(entity, None)
        try:
            answer = self._answer(path, None, context)
        except VismaRequestError as error:
            if error.status != 404:
                raise
            said = error.visma_message or "nothing"
            if said.startswith(_ROUTING_MISS):
                return KeyedRead(Presence.UNCLEAR, f"{path}: 404 from routing ({said})")
            return KeyedRead(Presence.GONE, f"{path}: 404 ({said})")
        found = self._items(entity, path, answer, None, as_stored=True, single=True)
        if found.keys != [key_string(key)]:
            return KeyedRead(Presence.UNCLEAR, f"{path}: 200 with records {found.keys}")
        return KeyedRead(
            Presence.EXISTS, f"{path}: 200", RecordBatch(map(_without_metadata, found), found.texts, found.keys)
        )

    def _context(self, entity: Entity, page: int | None) -> dict[str, Any]:
        return {"company_id": self.company.company_id, "entity": entity.name, "page": page}

    def _items(
        self, entity: Entity, path: str, answer: _Answer, page: int | None, as_stored: bool,
        single: bool = False,
    ) -> RecordBatch:
        """A response as a list of items, checked: a list of objects, each with its key.

        `as_stored`: see `read_entity`. Journal batches split over pages are merged from whole
        items, and a merged batch is no item's text, so those are decoded whole. `single`: the
        path names one record (a dimension, a record by its key), which Visma answers with the
        object itself.
        """
        context = self._context(entity, page)
        if as_stored and not entity.lines_span_pages:
            fields = _stored_fields(entity)
            document, item_texts = _decoded(answer, lambda raw: decode_for_store(raw, fields), context)
        else:
            document, item_texts = _decoded(answer, decode, context), None
        if isinstance(document, dict) and single:
            document = [document]
        context["url"] = path
        if not isinstance(document, list):
            raise VismaPayloadError(
                f"Visma answered with a JSON {type(document).__name__}, not the list of "
                f"{entity.schema} items",
                hint="Check VISMA_API_URL (api_url) points at the Visma.net ERP API; if it does, "
                "run the read again",
                **context,
            )
        keys = []
        for index, item in enumerate(document):
            key = record_key(entity, item) if isinstance(item, dict) else ()
            if not any(key):
                raise VismaPayloadError(
                    f"item {index} has no key ({', '.join(entity.key)}); it is not a "
                    f"{entity.schema}",
                    hint="The response does not look like this entity's list: check the path and "
                    "parameters, or run the read again",
                    **context,
                )
            keys.append(key_string(key))
        return RecordBatch(document, item_texts, keys)

    def _query(
        self,
        entity: Entity,
        modified_since: str | datetime | None,
        period: str | None,
        extra_params: Mapping[str, Any] | None,
        news_only: bool = False,
    ) -> dict[str, Any]:
        """The query parameters of a read, by their OpenAPI names; httpx encodes them once."""
        params: dict[str, Any] = {}
        if period is not None:
            if entity.period_param is None:
                raise ValueError(f"{entity.name} has no period filter; read it without period=")
            params[entity.period_param] = period
        since = self.delta_since(modified_since, overlap=not news_only)
        if since is None and entity.path in _NEEDS_A_FILTER and period is None:
            since = FULL_READ_SINCE
        if since is not None:
            if entity.delta is Delta.NONE:
                log.debug("%s has no delta filter: reading it in full", entity.name)
            else:
                params["lastModifiedDateTime"] = since
                if entity.delta is Delta.WITH_CONDITION:
                    params["lastModifiedDateTimeCondition"] = ">" if news_only else ">="
        params.update(extra_params or {})
        return params

    def delta_since(self, modified_since: str | datetime | None, *, overlap: bool = True) -> str | None:
        """The `lastModifiedDateTime` to ask for: the watermark minus the overlap, Visma's format."""
        if modified_since is None:
            return None
        shift = self._delta_overlap if overlap else timedelta(0)
        return format_for_query(parse_timestamp(modified_since) - shift)


@dataclass(frozen=True)
class _Answer:
    """What the client keeps of a successful response while it waits to be decoded: its body,
    and what an error about it names (only the start of the body, not the whole page as text).
    """

    content: bytes
    status: int
    url: str
    encoding: str | None

    @classmethod
    def of(cls, response: httpx.Response) -> _Answer:
        return cls(response.content, response.status_code, str(response.request.url), response.encoding)

    def text_start(self, chars: int = 200) -> str | None:
        """The start of the body as text, for an error message; None if it is empty."""
        head = self.content[: chars * 4]
        try:
            text = head.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = head.decode("utf-8", errors="replace")
        return text[:chars] or None


def _decoded(answer: _Answer, decode: Callable[[bytes], _T], context: dict) -> _T:
    """`decode` of the answer's body; an answer that is not JSON, or holds NaN, is an error."""
    try:
        return decode(answer.content)
    except NonFiniteNumber as exc:
        raise VismaPayloadError(
            f"Visma answered with the number {exc.literal}, which no amount can be",
            status=answer.status,
            url=answer.url,
            hint="Nothing from this answer was stored. Run the read again; if it persists, report "
            "the record to Visma",
            **context,
        ) from None
    except NotJson:
        raise VismaPayloadError(
            "Visma answered with something that is not JSON",
            status=answer.status,
            url=answer.url,
            visma_message=answer.text_start(),
            hint="This is usually a passing fault of Visma or a proxy: run the read again. If it "
            "persists, check VISMA_API_URL (api_url)",
            **context,
        ) from None


@cache
def _stored_fields(entity: Entity) -> tuple[str, ...]:
    """What a record read `as_stored` must hold: what the store indexes, and the page's metadata."""
    roots = [field.split(".")[0] for field in entity.key]
    return tuple(dict.fromkeys([*roots, entity.modified_field, *PERIOD_FIELDS, "metadata"]))


def _fill_path(path: str, path_params: Mapping[str, str]) -> str:
    return path.format(**{name: quote(str(value), safe="") for name, value in path_params.items()})


def _noting_totals(pages: Iterator[Page], totals: set[int]) -> Iterator[Page]:
    """Pass pages on, collecting every `totalCount` they announce (a change means rows moved)."""
    for page in pages:
        if page.total_count is not None:
            totals.add(page.total_count)
        yield page


def _admitted(records: list[dict], dedupe: Deduplicator) -> RecordBatch:
    """The records `dedupe` lets through, without metadata, with their texts and keys."""
    if isinstance(records, RecordBatch):
        texts, keys = records.texts, records.keys
    else:  # journal batches merged from pieces: no item's text, keys not yet worked out
        texts, keys = None, [key_string(record_key(dedupe.entity, record)) for record in records]
    admitted = list(map(dedupe.admit, records, keys))
    return RecordBatch(
        map(_without_metadata, compress(records, admitted)),
        None if texts is None else compress(texts, admitted),
        compress(keys, admitted),
    )


def _without_metadata(record: dict) -> dict:
    copy = record.copy()  # a copy: the page's own items keep the metadata the stop rule reads
    copy.pop("metadata", None)
    return copy


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018  # the property raises when the error has no request
    except RuntimeError:
        return False
    return True
