"""A census of what generated records break: which field, which value, which exception, where.

    .venv/bin/python -m visma_tableau_pipeline_tests.contract.census [examples per entity]

The tests say that the promise breaks; this says how, for the person writing conversion rules.
It draws records for every entity that feeds a table (contract records and records with one
field outside the contract), runs each batch through the harness, and for each exception finds
the record and the field that raise it: the record alone, then with one leaf at a time set to
null, until the exception goes (for a build, in memory first, then the Hyper write one column at
a time). Value classes repeat, so each (entity, stage, exception, field) is shown once, with the
first value met.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from visma_tableau_pipeline.marts.hyper import write_hyper
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.registry import MartTable, build_with
from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Entity
from visma_tableau_pipeline_tests.conftest import OPENAPI_PATH
from visma_tableau_pipeline_tests.contract.harness import (
    AS_OF,
    COMPANY_ID,
    FLAT_TABLES,
    run_pipeline,
    sync_records,
    tables_fed_by,
)
from visma_tableau_pipeline_tests.contract.openapi_records import OpenApiRecords, malformed_records


@dataclass(frozen=True)
class CrashClass:
    entity: str
    stage: str  # sync, a table, or a table's Hyper write
    error: str  # exception type and message with values taken out
    field: str


def _pattern(error: BaseException) -> str:
    message = re.sub(r"'[^']*'|\"[^\"]*\"|-?\d[\d.eE+-]*", "…", str(error).splitlines()[0] if str(error) else "")
    return f"{type(error).__name__}: {message[:160]}"


def _node_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths of every value in a record, objects and lists before what they hold."""
    if path and value is not None:
        yield path
    if isinstance(value, dict):
        for name, child in value.items():
            yield from _node_paths(child, (*path, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _node_paths(child, (*path, index))


def _with_null(record: dict, path: tuple) -> dict:
    copy = deepcopy(record)
    target: Any = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = None
    return copy


def _value(record: dict, path: tuple) -> Any:
    for step in path:
        record = record[step]
    return record


def _dotted(path: tuple) -> str:
    return ".".join(str(step) for step in path if isinstance(step, str))


def _culprit_field(record: dict, error: BaseException, fails: Callable[[dict], bool], keys: set[str],
                   table: MartTable | None) -> tuple[str, Any]:
    """The field that raises `error`, and its value.

    Named by the error where it can be: the column a MartError names (its source path), else the
    value quoted in the message. Otherwise the first value whose null lets the record through.
    """
    message = str(error)
    paths = [path for path in _node_paths(record) if path[0] not in keys]
    column = re.search(r"column (\w+)", message)
    flat = FLAT_TABLES.get((column and re.search(r"table (\w+)", message)[1]) or "") if column else None
    if flat is not None:
        source = next((source for name, _, source in flat.fields if name == column[1]), None)
        if isinstance(source, str):
            wanted = source.split(".", 1)[1] if source.split(".")[0] in {"header", "line", "batch", "card"} else source
            for path in paths:
                if _dotted(path).endswith(wanted):
                    return _dotted(path), _value(record, path)
            return f"{source} (column {column[1]})", None
    for path in paths:
        value = _value(record, path)
        if isinstance(value, (str, Decimal, int)) and not isinstance(value, bool) and str(value) and (
            repr(str(value)) in message or repr(value) in message
        ):
            return _dotted(path), value
    for path in paths:
        if not fails(_with_null(record, path)):
            return _dotted(path), _value(record, path)
    return "(no single field)", None


def _raises(action: Callable[[], Any]) -> BaseException | None:
    try:
        action()
    except Exception as error:
        return error
    return None


def _sync_fails(entity: Entity) -> Callable[[dict], BaseException | None]:
    def attempt(record: dict) -> BaseException | None:
        with tempfile.TemporaryDirectory() as scratch:
            db = StateDB(f"sqlite:///{Path(scratch) / 'state.db'}")
            try:
                return _raises(lambda: sync_records(db, entity, [record]))
            finally:
                db.dispose()
    return attempt


def _build_fails(entity: Entity, table: MartTable) -> Callable[[dict], BaseException | None]:
    def attempt(record: dict) -> BaseException | None:
        inputs = MartInputs({entity.name: [{**record, "company_id": COMPANY_ID}]}, AS_OF)
        try:
            frame = build_with(table, inputs)
        except Exception as error:
            return error
        with tempfile.TemporaryDirectory() as scratch:
            return _raises(lambda: write_hyper(frame, Path(scratch), table.name))
    return attempt


def _hyper_column(entity: Entity, table: MartTable, record: dict) -> tuple[str, Any] | None:
    """The column whose Hyper write fails, when the record builds in memory."""
    try:
        frame = build_with(table, MartInputs({entity.name: [{**record, "company_id": COMPANY_ID}]}, AS_OF))
    except Exception:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        for column in frame.columns:
            if _raises(partial(write_hyper, frame[[column]], Path(scratch), "column")) is not None:
                return f"column {column}", frame[column].iloc[0] if len(frame) else None
    return None


def census(examples: int) -> dict[CrashClass, tuple[Any, str]]:
    """Crash classes met in `examples` batches of each kind per entity, with one value and message each."""
    source = OpenApiRecords(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))
    found: dict[CrashClass, tuple[Any, str]] = {}

    for entity in (e for e in ENTITIES if tables_fed_by(e.name)):
        keys = {field.split(".")[0] for field in entity.key}

        def examine(records: list[dict], entity: Entity = entity, keys: set[str] = keys) -> None:
            run = run_pipeline(entity, records)
            for crash in run.crashes:
                if crash.stage == "quarantine":
                    continue
                table = next((t for t in tables_fed_by(entity.name) if t.name == crash.stage), None)
                attempt = _sync_fails(entity) if table is None else _build_fails(entity, table)
                for record in records:
                    error = attempt(record)
                    if error is None:
                        continue
                    field, value = _culprit_field(record, error, lambda r, attempt=attempt: attempt(r) is not None, keys, table)
                    stage = crash.stage
                    if table is not None and field == "(no single field)":
                        located = _hyper_column(entity, table, record)
                        if located:
                            field, value = located
                            stage = f"{table.name} (Hyper write)"
                    found.setdefault(CrashClass(entity.name, stage, _pattern(error), field), (value, str(error)[:300]))
            for miss in run.misses:
                sent_kind = type(miss.sent).__name__
                found.setdefault(
                    CrashClass(entity.name, miss.table, f"value lands changed ({sent_kind} -> {type(miss.landed).__name__})",
                               f"{miss.path} -> {miss.column}"),
                    (miss.sent, f"read back {miss.landed!r}"),
                )

        quiet = settings(max_examples=examples, deadline=None, database=None, phases=(Phase.generate,),
                         suppress_health_check=list(HealthCheck))
        quiet(given(records=source.records(entity, max_size=5))(examine))()
        quiet(given(records=malformed_records(source, entity).map(lambda drawn: drawn[0]))(examine))()
        print(f"{entity.name}: {sum(1 for c in found if c.entity == entity.name)} classes", file=sys.stderr, flush=True)
    return found


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for crash, (value, message) in sorted(census(examples).items(), key=lambda item: (item[0].entity, item[0].stage, item[0].field)):
        shown = repr(value)
        shown = shown if len(shown) <= 90 else shown[:90] + f"... ({len(shown)} chars)"
        print(f"{crash.entity} | {crash.stage} | {crash.field} | {shown} | {crash.error} | {message[:200]!r}")


if __name__ == "__main__":
    main()
