"""Generated records through the whole path the pipeline takes, and what became of each value.

A page of records is served over HTTP the way Visma serves it (httpx `MockTransport`, the real
`VismaClient`), read and stored by `sync_window` into a SQLite state store, then every dashboard
table the entity feeds is built by `build_extract` into its Hyper file and read back with
`frame_from_hyper`. For the tables declared as (column, kind, source path) (`marts/flat.py`),
each value read back is compared with the value the record holds at that path, under the
column kind's conversion: decimals exact, dates and timestamps as the wall clock Visma wrote,
texts exactly (characters outside the BMP included).

The promise held (ARCHITECTURE invariant 8): every value lands as sent, or its record is held
back with a reason (`state.quarantine.held_records`); no exception stops a sync or a build.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import msgspec
import pandas as pd
from sqlalchemy import update

from visma_tableau_pipeline.delivery.extracts import build_extract, build_table
from visma_tableau_pipeline.marts import ap, ar, gl, people
from visma_tableau_pipeline.marts.flat import FlatTable
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable, tables_read
from visma_tableau_pipeline.marts.schema import Kind
from visma_tableau_pipeline.state import schema
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.visma.catalogue import DIMENSION_IDS_PATH, Entity, Paging, record_key
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.pacing import Pacer
from visma_tableau_pipeline.visma.sync import sync_window
from visma_tableau_pipeline_tests.contract.openapi_records import wall_clock
from visma_tableau_pipeline_tests.visma.fake_visma import FakeClock, FakeVisma, company

COMPANY_ID = company().company_id
AS_OF = date(2025, 3, 31)
MAX_PAGE_SIZE = 1000  # more than any generated page holds (journal pages count lines)
_ENCODER = msgspec.json.Encoder(decimal_format="number")  # Decimals as bare JSON numbers

FLAT_TABLES: dict[str, FlatTable] = {
    value.name: value for module in (ap, ar, gl, people) for value in vars(module).values()
    if isinstance(value, FlatTable)
}
# How the row contexts of a flat table come from one record: the record under its name, then
# each item of a list under the next name. Tables not named here are one row per record, the
# record itself the context. Paths rooted elsewhere (`account.` in gl_transactions) read
# lookups, which these runs leave empty, and are not compared.
ROW_CONTEXTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "ap_invoice_lines": (("header", None), ("line", "invoiceLines")),
    "gl_transactions": (("batch", None), ("line", "journalTransactionLines")),
    "timecards": (("card", None), ("line", "summary")),
    "dimensions": (("dimension", None), ("segment", "segments"), ("value", "segmentValues")),
    "supplier_payment_lines": (("payment", None), ("line", "paymentLines")),
    "customer_payment_lines": (("payment", None), ("line", "paymentLines")),
}


def tables_fed_by(entity_name: str) -> list[MartTable]:
    """The dashboard tables that read the entity."""
    return [table for table in MART_TABLES if entity_name in table.sources]


def tables_built_for(entity_name: str) -> list[MartTable]:
    """The tables the entity feeds and the tables those are derived from (of other entities: empty
    here), in `vtp sync`'s order: so that a derived table (the close reads five extracts) is
    derived in these runs rather than built from the records."""
    fed = tables_fed_by(entity_name)
    wanted = {table.name for table in fed} | {name for table in fed for name in tables_read(table)}
    return [table for table in MART_TABLES if table.name in wanted]


# -- Visma over HTTP ---------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_MARK = "\U000F0000"


def _wire(body: Any) -> bytes:
    """JSON as Visma writes it: UTF-8, a lone surrogate (no UTF-8 can hold one) as its escape."""

    def marked(value: Any) -> Any:
        if isinstance(value, str):
            return _SURROGATE.sub(lambda m: f"{_SURROGATE_MARK}{ord(m.group()):04x}", value)
        if isinstance(value, dict):
            return {key: marked(item) for key, item in value.items()}
        if isinstance(value, list):
            return [marked(item) for item in value]
        return value

    return re.sub(_SURROGATE_MARK.encode() + rb"([0-9a-f]{4})", rb"\\u\1", _ENCODER.encode(marked(body)))


def _visma(entity: Entity, records: Sequence[dict]) -> httpx.MockTransport:
    """A Visma answering the entity's list with `records` as one page, as its wire format has it."""
    tokens = FakeVisma()
    lines = sum(max(1, len(r.get(entity.lines_field or "") or [])) for r in records)
    total = lines if entity.lines_span_pages else len(records)
    envelope = {"totalCount": total, "maxPageSize": MAX_PAGE_SIZE}
    items = [{**r, "metadata": envelope} if entity.paging is Paging.PAGED else r for r in records]
    by_id = {str(r.get("id")): r for r in records}

    def handle(request: httpx.Request) -> httpx.Response:
        if "Authorization" not in request.headers:
            return tokens.handle(request)
        path = request.url.path
        if "{" not in entity.path:
            body: Any = items
        elif path == DIMENSION_IDS_PATH:
            body = list(by_id)
        else:
            body = by_id[unquote(request.url.raw_path.decode().split("?")[0].rsplit("/", 1)[-1])]
        return httpx.Response(200, content=_wire(body), headers={"Content-Type": "application/json"})

    return httpx.MockTransport(handle)


def sync_records(db: StateDB, entity: Entity, records: Sequence[dict]) -> None:
    """Read `records` from a Visma serving them and store them, as a full sync does."""
    clock = FakeClock()
    client = VismaClient(company(), transport=_visma(entity, records), pacer=Pacer(clock=clock, sleep=clock.sleep),
                         clock=clock, sleep=clock.sleep, max_concurrency=1)
    with client:
        sync_window(client, db, entity, company_id=COMPANY_ID, run_id="generated", full=True)


# -- what became of the values -------------------------------------------------------------------

@dataclass(frozen=True)
class Crash:
    """An exception that stopped a stage (`sync` or a table's build)."""

    stage: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.stage}: {type(self.error).__name__}: {str(self.error)[:300]}"


@dataclass(frozen=True)
class Miss:
    """A value of a record not held back that did not land as sent."""

    table: str
    column: str
    path: str
    key: str
    sent: Any
    landed: Any

    def __str__(self) -> str:
        return (f"{self.table}.{self.column} <- {self.path} of {self.key!r}: sent {_short(self.sent)}, "
                f"read back {_short(self.landed)}")


@dataclass
class PipelineRun:
    """What one run of the path did with one entity's records."""

    entity: Entity
    records: Sequence[dict] = field(repr=False)
    crashes: list[Crash] = field(default_factory=list)
    held: dict[str, list[Any]] = field(default_factory=dict)  # record key -> HeldRecord notes
    misses: list[Miss] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    # tables derived from other extracts (aging, spend, cash flow) that differ from a build from the records
    derived_differ: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything that breaks the promise, one line each (empty when it holds)."""
        unexplained = [f"held without a reason: {key}" for key, notes in self.held.items()
                       if not all(getattr(note, "reason", "") for note in notes)]
        return ([str(crash) for crash in self.crashes] + [str(miss) for miss in self.misses] + unexplained
                + self.derived_differ)


def _held_records(db: StateDB) -> dict[str, list[Any]]:
    """Records held back, by key; the quarantine API is imported here, as it may not exist yet."""
    from visma_tableau_pipeline.state.quarantine import held_records

    held: dict[str, list[Any]] = {}
    with db.connect() as conn:
        for note in held_records(conn):
            held.setdefault(note.key, []).append(note)
    return held


def run_pipeline(entity: Entity, records: Sequence[dict], workdir: Path | None = None) -> PipelineRun:
    """Sync `records` into a fresh store, build every table they feed, compare what was read back."""
    run = PipelineRun(entity, records)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        db = StateDB(f"sqlite:///{Path(scratch) / 'state.db'}")
        try:
            try:
                sync_records(db, entity, records)
            except Exception as error:
                run.crashes.append(Crash("sync", error))
                return run
            with db.transaction() as conn:  # stored a while ago: derived tables read them from extracts
                conn.execute(update(schema.records).values(updated_at=datetime(2025, 1, 1, tzinfo=UTC)))
            for table in tables_built_for(entity.name):
                try:
                    result = build_extract(db, [COMPANY_ID], table, AS_OF, Path(scratch) / "extracts", "generated",
                                           full=True)
                    run.frames[table.name] = frame_from_hyper(result.path)
                except Exception as error:
                    run.crashes.append(Crash(table.name, error))
            run.derived_differ = [_derived_differs(db, table, run.frames[table.name])
                                  for table in tables_fed_by(entity.name)
                                  if table.from_extracts and table.name in run.frames]
            run.derived_differ = [difference for difference in run.derived_differ if difference]
            try:
                run.held = _held_records(db)
            except ImportError as error:
                run.crashes.append(Crash("quarantine", error))
        finally:
            db.dispose()
    for name, frame in run.frames.items():
        if name in FLAT_TABLES and entity.name in _mart(name).rows_from:
            run.misses.extend(compare_flat(FLAT_TABLES[name], entity, records, frame, set(run.held)))
    return run


def _derived_differs(db: StateDB, table: MartTable, derived: pd.DataFrame) -> str:
    """How the extract of a table derived from other extracts differs from building it from the
    records ("" when it does not): a derivation must hold for whatever Visma sends."""
    whole = build_table(db, [COMPANY_ID], table, AS_OF)
    ordered = list(table.key)
    try:
        pd.testing.assert_frame_equal(
            derived[list(whole.columns)].sort_values(ordered).reset_index(drop=True),
            whole.sort_values(ordered).reset_index(drop=True), check_dtype=False, obj=table.name)
    except AssertionError as error:
        return f"{table.name} derived from extracts differs from a build from the records: {str(error)[:300]}"
    return ""


# -- comparing ---------------------------------------------------------------------------------

_UNCONVERTIBLE = object()  # a sent value the column kind cannot hold: its record must be held


def expected(kind: Kind, sent: Any) -> Any:
    """What a column of `kind` must read back for the JSON value `sent` (None: null)."""
    if sent is None:
        return None
    numeric = isinstance(sent, (int, Decimal)) and not isinstance(sent, bool)
    if kind is Kind.TEXT:
        if isinstance(sent, bool):
            return "true" if sent else "false"
        if isinstance(sent, str) and _SURROGATE.search(sent):
            return _UNCONVERTIBLE  # a lone surrogate is no Unicode text
        return str(sent) if isinstance(sent, str) or numeric else _UNCONVERTIBLE
    if kind is Kind.MONEY:
        return _cents(Decimal(sent)) if numeric else _UNCONVERTIBLE
    if kind in (Kind.QUANTITY, Kind.RATE):
        return Decimal(sent) if numeric else _UNCONVERTIBLE
    if kind in (Kind.DATE, Kind.TIMESTAMP):
        if sent == "":
            return None  # the README's rule: an empty date is no date, as null is
        moment = wall_clock(sent) if isinstance(sent, str) else None
        if moment is None:
            return _UNCONVERTIBLE
        return moment.date() if kind is Kind.DATE else moment
    if kind is Kind.INT:
        return sent if isinstance(sent, int) and not isinstance(sent, bool) else _UNCONVERTIBLE
    return sent if isinstance(sent, bool) else _UNCONVERTIBLE


def _cents(sent: Decimal) -> Any:
    """The README's rule for amounts: exact cents; a double's noise past the cent dropped; a
    real fraction of a cent, or more than 16 integer digits, held back."""
    if abs(sent) >= Decimal("1E16"):
        return _UNCONVERTIBLE
    cents = sent.quantize(Decimal("0.01"))
    if cents == sent or abs(sent - cents) <= abs(sent) * Decimal(2) ** -50:
        return cents
    return _UNCONVERTIBLE


def _plain(value: Any) -> Any:
    """A read-back cell as a plain Python value (None for every kind of missing)."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().replace(tzinfo=None)
    if hasattr(value, "item") and not isinstance(value, (Decimal, date, datetime)):
        return value.item()
    return value


def _same(want: Any, landed: Any) -> bool:
    if want is None or landed is None:
        return want is None and landed is None
    if isinstance(want, Decimal):  # a DOUBLE column holds the double the decimal text names
        return Decimal(landed) == want if isinstance(landed, (int, Decimal)) else landed == float(want)
    return type(want) is type(landed) and want == landed


def _at(value: Any, path: str) -> Any:
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def row_contexts(table: str, record: dict, company_id: str) -> Iterator[dict]:
    """The row contexts a flat table builds its rows from, for one record (see ROW_CONTEXTS)."""
    chain = ROW_CONTEXTS.get(table)
    if chain is None:
        yield {**record, "company_id": company_id}
        return
    lines = FLAT_TABLES[table].lines
    position = lines.position if lines else None  # the item's place in its list, from 1
    contexts = [{"company_id": company_id, chain[0][0]: record}]
    for (parent, _), (name, list_field) in itertools.pairwise(chain):
        contexts = [{**context, name: item, **({position: place} if position else {})} for context in contexts
                    for place, item in enumerate(_at(context[parent], list_field or "") or [], start=1)
                    if isinstance(item, dict)]
    yield from contexts


def compare_flat(table: FlatTable, entity: Entity, records: Sequence[dict], frame: pd.DataFrame,
                 held: set[str]) -> list[Miss]:
    """Every value a record not held sends to `table`, against what was read back from Hyper."""
    key_columns = [name for name in _mart(table.name).key if name != "company_id"]
    getters = dict(table._getters)
    landed_rows = {
        tuple(_plain(row[name]) for name in key_columns): row
        for row in frame.to_dict("records")
    }
    misses: list[Miss] = []
    for record in records:
        key = key_string(record_key(entity, record))
        if key in held:
            continue
        for context in row_contexts(table.name, record, COMPANY_ID):
            row_key = tuple(_plain(getters[name](context)) for name in key_columns)
            row = landed_rows.get(tuple("" if part is None else part for part in row_key))
            if row is None:
                misses.append(Miss(table.name, "(row)", "-", key, row_key, None))
                continue
            for column, kind, source in table.fields:
                if not isinstance(source, str) or source.split(".")[0] not in context:
                    continue
                sent = _at(context, source)
                want = expected(kind, sent)
                landed = _plain(row[column])
                if want is _UNCONVERTIBLE or not _same(want, landed):
                    misses.append(Miss(table.name, column, source, key, sent, landed))
    return misses


def _mart(name: str) -> MartTable:
    return next(table for table in MART_TABLES if table.name == name)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
