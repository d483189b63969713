"""What every table builder receives: the raw records of each entity, and the as-of date."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from visma_tableau_pipeline.marts.fields import unique_by_key
from visma_tableau_pipeline.state.errors import PayloadError
from visma_tableau_pipeline.state.payloads import canonical_json, load_payload
from visma_tableau_pipeline.visma.catalogue import entity

Record = dict[str, Any]


class StoredRecord(NamedTuple):
    """A record as the store keeps it: its company and its JSON text (UTF-8), not yet decoded.

    A build holds these instead of decoded dicts (a tenth of the memory): a table built
    column-wise reads its fields from the texts (`marts/columnar.py`) and never decodes them; any
    other builder gets them decoded by `MartInputs.of`.
    """

    company_id: str
    text: bytes

    def record(self) -> Record:
        """The decoded record with the `company_id` every table builder reads."""
        return {**load_payload(self.text), "company_id": self.company_id}


@dataclass(frozen=True)
class MartInputs:
    """Raw Visma records by catalogue entity name, each carrying its `company_id`.

    Records are dicts, or `StoredRecord`s as read from the store (the store holds each
    (company, key) once, so those are taken as unique). `as_of` is the day an aging snapshot
    describes (the builders never read the clock, so a rebuild of yesterday's snapshot gives
    yesterday's answer); `snapshot_kind` says whether it is the daily snapshot or a period's
    close snapshot (`marts/aging.py`).
    """

    records: Mapping[str, Iterable[Record | StoredRecord]]
    as_of: date
    snapshot_kind: str = "daily"
    _given: dict[str, list[Record | StoredRecord]] = field(default_factory=dict, repr=False, compare=False)
    _cache: dict[str, list[Record]] = field(default_factory=dict, repr=False, compare=False)

    def _items(self, entity_name: str) -> list[Record | StoredRecord]:
        if entity_name not in self._given:
            self._given[entity_name] = list(self.records.get(entity_name, ()))
        return self._given[entity_name]

    def _from_store(self, entity_name: str) -> bool:
        return all(isinstance(item, StoredRecord) for item in self._items(entity_name))

    def of(self, entity_name: str) -> list[Record]:
        """The records of one entity, once each by (company_id, key); empty when none were given."""
        if entity_name not in self._cache:
            decoded = (item.record() if isinstance(item, StoredRecord) else item for item in self._items(entity_name))
            self._cache[entity_name] = list(unique_by_key(entity(entity_name), decoded))
        return self._cache[entity_name]

    def stored(self, entity_name: str) -> list[StoredRecord] | None:
        """The records of `of`, in its order, as `StoredRecord`s: for a build that reads JSON texts.

        Records given as dicts (tests, a group's records read again) are written as canonical
        JSON; None when one cannot be (a float, a company_id that is not text): such records are
        built from the dicts.
        """
        if self._from_store(entity_name):
            return self._items(entity_name)  # type: ignore[return-value]  # all StoredRecords
        stored = []
        for record in self.of(entity_name):
            company_id = record.get("company_id")
            if type(company_id) is not str:
                return None
            try:
                stored.append(StoredRecord(company_id, canonical_json(record).encode()))
            except PayloadError:
                return None
        return stored

    def decoded(self, entity_name: str, start: int, end: int) -> list[Record]:
        """`of(entity_name)[start:end]`, decoding only those records when they are stored texts."""
        if self._from_store(entity_name):
            return [item.record() for item in self._items(entity_name)[start:end]]  # type: ignore[union-attr]
        return self.of(entity_name)[start:end]
