"""Asset checks on the Visma entities: records held back from the dashboard tables.

A record a table cannot convert is held back rather than stopping its company's run
(`marts/holdback.py`). The check is a warning, not a failure: everything else was delivered,
and the record comes back by itself once Visma sends a version that converts. It shows the
finance user which document is missing from Tableau and why.
"""

import dagster as dg

from visma_tableau_pipeline.defs.resources import StateResource
from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
from visma_tableau_pipeline.state.quarantine import HeldRecord, held_records
from visma_tableau_pipeline.visma.catalogue import ENTITIES, Entity

SHOWN = 20  # held records listed in the check's metadata


def held_back_table(held: list[HeldRecord]) -> dg.MetadataValue:
    """Held records as a markdown table: company, key, field, value, reason, table."""
    lines = ["| company | key | field | value | reason | table |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in (
        h.company_id, h.key, h.field, f"`{h.value}`", h.reason, h.table)) + " |" for h in held[:SHOWN]]
    return dg.MetadataValue.md("\n".join(lines))


def _held_back_check(entity: Entity) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=entity_asset_key(entity), name="no_records_held_back", blocking=False,
        description=f"No {entity.name} record is held back from the dashboard tables "
        "(a value outside Visma's contract); `vtp quarantine list` shows them all.",
    )
    def _check(state: StateResource) -> dg.AssetCheckResult:
        with state.db().connect() as conn:
            held = held_records(conn, entities=[entity.name])
        return dg.AssetCheckResult(
            passed=not held,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{len(held)} records held back" if held else "every record converts",
            metadata={"held_back": len(held), "records": held_back_table(held)},
        )

    return _check


held_back_checks = [_held_back_check(entity) for entity in ENTITIES]
