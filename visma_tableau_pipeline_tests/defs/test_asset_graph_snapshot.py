"""The asset graph as a reviewer reads it, kept in `asset_graph.json` beside this test.

A change to the graph (an asset, a dependency, a group, kinds, partitions, a check, an automation
condition, a job, schedule or sensor and whether it starts running) changes the snapshot, so it
shows in review as a diff of that file. After a change made on purpose, write the snapshot anew:

    VTP_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest visma_tableau_pipeline_tests/defs/test_asset_graph_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOT = Path(__file__).with_name("asset_graph.json")


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return "multi(" + ", ".join(d.name for d in partitions_def.partitions_defs) + ")"
    return type(partitions_def).__name__


def _condition(condition: Any) -> str | None:
    """A condition by its outermost labels (`eager & all_deps_blocking_checks_passed`), as the UI
    names it, without the parts each label stands for."""
    if condition is None:
        return None
    if getattr(condition, "label", None):
        return condition.label
    parts = [_condition(child) for child in condition.children]
    operator = {"AndAutomationCondition": " & ", "OrAutomationCondition": " | "}.get(type(condition).__name__)
    if operator is None:
        return f"{type(condition).__name__}({', '.join(p for p in parts if p)})"
    return operator.join(p for p in parts if p)


def graph_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        key = spec.key
        assets[key.to_user_string()] = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "partitions": _partitions(spec.partitions_def),
            "automation": _condition(spec.automation_condition),
            "checks": sorted(
                f"{check.name}{' (blocking)' if check.blocking else ''}"
                for check in map(graph.get_check_spec, graph.get_check_keys_for_assets({key}))
            ),
        }
    repository = defs.get_repository_def()
    return {
        "assets": assets,
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": {s.name: str(s.default_status.value) for s in repository.schedule_defs},
        "sensors": {s.name: str(s.default_status.value) for s in repository.sensor_defs},
    }


def test_the_asset_graph_matches_its_snapshot() -> None:
    from visma_tableau_pipeline.definitions import defs

    current = json.dumps(graph_snapshot(defs()), indent=2, sort_keys=True) + "\n"
    if os.environ.get("VTP_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), f"no snapshot yet: run with VTP_UPDATE_SNAPSHOT=1 to write {SNAPSHOT.name}"
    assert current == SNAPSHOT.read_text(), (
        "the asset graph changed; if on purpose, write the snapshot anew with VTP_UPDATE_SNAPSHOT=1 "
        "and let the diff of asset_graph.json show the change in review"
    )
