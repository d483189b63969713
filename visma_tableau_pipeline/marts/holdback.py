"""Building a table while holding back the records it cannot convert.

One bad record must never stop the others of its company. A build that fails is searched for the
records that make it fail: for each source entity in turn, with the other sources as they are,
the entity's records are split in halves and each half built alone, down to single records. A
record that fails alone is held back with the error it raised (the field, value and reason when
the error is a `RejectedValue`), and the table is built without it. The search costs a few builds
per bad record (about twice the log of the record count), paid only by the build that meets one:
a clean build runs once, as before, and a held record is left out of later builds by the store
(`state/quarantine.py`) until Visma sends another version of it.

A failure that no single record explains (two records that only clash together) is not guessed
at: the build fails with the table's error, as it did before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from visma_tableau_pipeline.marts.inputs import MartInputs, Record
from visma_tableau_pipeline.marts.registry import MartTable, build_with
from visma_tableau_pipeline.marts.schema import MartError, RejectedValue
from visma_tableau_pipeline.state.keys import key_string
from visma_tableau_pipeline.state.quarantine import HeldRecord
from visma_tableau_pipeline.visma.catalogue import entity as catalogue_entity
from visma_tableau_pipeline.visma.catalogue import record_key

log = logging.getLogger(__name__)

# What converting a record's values can raise; anything else (out of memory, a bug in a
# builder's own logic that no record explains) is not a bad record and still stops the build.
RECORD_ERRORS = (MartError, ValueError, TypeError, KeyError, AttributeError, ArithmeticError,
                 IndexError, pa.ArrowException)


def build_holding_back(table: MartTable, inputs: MartInputs) -> tuple[pd.DataFrame, list[HeldRecord]]:
    """The table built from `inputs`, and the records left out because they cannot be converted."""
    try:
        return build_with(table, inputs), []
    except RECORD_ERRORS as error:
        failure = error
    log.warning("table %s: a build failed (%s); looking for the records that cause it", table.name, failure)
    records = {name: inputs.of(name) for name in table.sources}
    held: list[HeldRecord] = []
    while True:  # again while a pass finds some: one source's culprits can hide another's
        found = _search_pass(table, records, inputs)
        for hidden in table.sources if not found else ():
            # a bad record of another source fails every build of this one's records, even of
            # none (a document of AP and one of AR that each fail alone): look without it
            if found := _search_pass(table, records, inputs, hidden):
                break
        held.extend(_held(table, name, record, error) for name, record, error in found)
        for name in {name for name, _, _ in found}:
            ids = {id(record) for source, record, _ in found if source == name}
            records[name] = [record for record in records[name] if id(record) not in ids]
        try:
            frame = build_with(table, MartInputs(records, inputs.as_of, inputs.snapshot_kind))
            break
        except RECORD_ERRORS as error:
            if not found:
                raise MartError(f"table {table.name}: {error} (no single record causes it, so "
                                f"none was held back; the table was not built)") from failure
    for item in held:
        log.warning("held back %s", item.describe())
    return frame, held


def _search_pass(table: MartTable, records: dict[str, list[Record]], inputs: MartInputs,
                 hidden: str | None = None) -> list[tuple[str, Record, Exception]]:
    """Records of each source in turn (but `hidden`, whose records are left out of these builds)
    that make the build fail alone, with their errors; each source is searched without the
    culprits already found in the sources before it."""
    searched = {**records, hidden: []} if hidden else dict(records)
    found: list[tuple[str, Record, Exception]] = []
    for name in dict.fromkeys((*table.chunked_sources, *table.sources)):
        if name == hidden:
            continue
        bad = _culprits(table, searched, name, inputs)
        ids = {id(record) for record, _ in bad}
        searched[name] = [record for record in searched[name] if id(record) not in ids]
        found.extend((name, record, error) for record, error in bad)
    return found


def _culprits(table: MartTable, records: dict[str, list[Record]], name: str,
              inputs: MartInputs) -> list[tuple[Record, Exception]]:
    """The records of entity `name` that make the build fail alone, with their errors."""

    def failure(subset: Sequence[Record]) -> Exception | None:
        try:
            build_with(table, MartInputs({**records, name: list(subset)}, inputs.as_of,
                                              inputs.snapshot_kind))
        except RECORD_ERRORS as error:
            return error
        return None

    found: list[tuple[Record, Exception]] = []

    def search(subset: Sequence[Record], error: Exception) -> None:
        if len(subset) == 1:
            found.append((subset[0], error))
            return
        middle = len(subset) // 2
        for half in (subset[:middle], subset[middle:]):
            if (half_error := failure(half)) is not None:
                search(half, half_error)

    everything = records[name]
    if not everything or failure([]) is not None:
        return []  # the fault is not in this entity's records (or not in records at all)
    if (error := failure(everything)) is not None:
        search(everything, error)
    return found


def _held(table: MartTable, name: str, record: Record, error: Exception) -> HeldRecord:
    """The quarantine note for one record that failed alone."""
    key = key_string(record_key(catalogue_entity(name), record))  # the store keyed it so
    if isinstance(error, RejectedValue):
        field, value, reason = error.field, repr(error.value), error.reason
    else:
        field, value, reason = "", "", f"{type(error).__name__}: {error}"
    return HeldRecord(str(record.get("company_id", "")), name, key, field, value, reason, table.name)
