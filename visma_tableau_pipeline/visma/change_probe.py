"""What changed in Visma since a point in time, and where: the polling sensor's question.

The probe reads changed records with `lastModifiedDateTime` (webhooks are only hints), and
answers which periods of which entities need a run. It reads at most `max_pages` pages per entity
so that a sensor tick stays short; when more changed, it says so (`truncated`) and the caller
falls back to every month it keeps (`visma/reads_needed.reads_for_changes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from visma_tableau_pipeline.visma.catalogue import Delta, Entity
from visma_tableau_pipeline.visma.client import PageProgress, VismaClient
from visma_tableau_pipeline.visma.periods import period_of_record
from visma_tableau_pipeline.visma.timestamps import max_modified, parse_timestamp

PROBE_PAGE_SIZE = 200


class _Enough(Exception):
    """Raised from the page callback to stop a probe read after `max_pages`."""


@dataclass
class EntityChanges:
    entity: str
    records: int = 0
    periods: set[str] = field(default_factory=set)
    newest: str | None = None
    truncated: bool = False


def probe_changes(
    client: VismaClient, entity: Entity, since: str | None, *, max_pages: int = 5
) -> EntityChanges:
    """Changed records of `entity` since `since` (None: nothing is known, so everything)."""
    changes = EntityChanges(entity.name, newest=since)
    if entity.delta is Delta.NONE:
        changes.truncated = True  # no delta filter: only a full read can tell
        return changes

    def stop_after(page: PageProgress) -> None:
        if page.page >= max_pages and page.total_count and page.total_count > page.page * PROBE_PAGE_SIZE:
            changes.truncated = True
            raise _Enough

    try:
        for batch in client.read_entity(
            entity, modified_since=since, news_only=True, page_size=PROBE_PAGE_SIZE, on_page=stop_after
        ):
            # journal transactions take no `>` condition: a record at `since` itself is not news
            fresh = [r for r in batch if _later(r.get(entity.modified_field), since)]
            changes.records += len(fresh)
            changes.periods.update(p for r in fresh if (p := period_of_record(r)))
            changes.newest = max_modified(fresh, entity.modified_field, changes.newest)
    except _Enough:
        pass
    return changes


def _later(value: str | None, since: str | None) -> bool:
    return since is None or (value is not None and parse_timestamp(value) > parse_timestamp(since))
