"""What every table builder receives: the raw records of each entity, and the as-of date."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from visma_tableau_pipeline.marts.fields import unique_by_key
from visma_tableau_pipeline.visma.catalogue import entity

Record = dict[str, Any]


@dataclass(frozen=True)
class MartInputs:
    """Raw Visma records by catalogue entity name, each carrying its `company_id`.

    `as_of` is the day an aging snapshot describes (the builders never read the clock, so a
    rebuild of yesterday's snapshot gives yesterday's answer); `snapshot_kind` says whether it is
    the daily snapshot or a period's close snapshot (`marts/aging.py`).
    """

    records: Mapping[str, Iterable[Record]]
    as_of: date
    snapshot_kind: str = "daily"
    _cache: dict[str, list[Record]] = field(default_factory=dict, repr=False, compare=False)

    def of(self, entity_name: str) -> list[Record]:
        """The records of one entity, once each by (company_id, key); empty when none were given."""
        if entity_name not in self._cache:
            self._cache[entity_name] = list(
                unique_by_key(entity(entity_name), self.records.get(entity_name, ()))
            )
        return self._cache[entity_name]
