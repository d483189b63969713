"""Records drawn from Visma's OpenAPI schemas, through sync, store, tables and Hyper files.

The sandbox produces only the values its author thought of; these records carry what Visma's
contract admits (see `openapi_records`). For every entity of the catalogue, each value must land
in every table the entity feeds as it was sent, or its record be held back with a reason; no
exception may stop a sync or a build (`harness`).

Hypothesis profiles: `ci` (default) draws a few examples per entity, without shrinking, so the
folder runs in about a minute and a half; `HYPOTHESIS_PROFILE=long` explores (200 examples each).
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator

from visma_tableau_pipeline.visma.catalogue import ENTITIES, Entity, record_key
from visma_tableau_pipeline_tests.conftest import OPENAPI_PATH
from visma_tableau_pipeline_tests.contract.harness import run_pipeline, tables_fed_by
from visma_tableau_pipeline_tests.contract.openapi_records import Mutation, OpenApiRecords, malformed_records

_QUIET = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture)
settings.register_profile("ci", max_examples=2, deadline=None, database=None, derandomize=True,
                          phases=(Phase.explicit, Phase.generate), suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=200, deadline=None, suppress_health_check=_QUIET)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SOURCE = OpenApiRecords(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))
FEEDING = [entity for entity in ENTITIES if tables_fed_by(entity.name)]


def _ids(entity: Entity) -> str:
    return entity.name


@pytest.mark.parametrize("entity", ENTITIES, ids=_ids)
def test_each_entity_s_items_are_drawn_from_the_schema_its_endpoint_answers_with(entity: Entity) -> None:
    assert SOURCE.item_schema_name(entity) == entity.schema


@pytest.mark.parametrize("entity", ENTITIES, ids=_ids)
@settings(PROFILE, max_examples=2 * PROFILE.max_examples)
@given(data=st.data())
def test_drawn_records_keep_the_contract_and_carry_unique_keys(entity: Entity, data: st.DataObject) -> None:
    """The document refuses nothing drawn but nulls (Visma writes them for unset fields although
    no field is declared nullable) and enum values it does not list (Visma adds them)."""
    records = data.draw(SOURCE.records(entity))
    document = SOURCE.document
    validator = OAS30Validator({**document["components"]["schemas"][entity.schema],
                                "components": document["components"]})
    for record in records:
        errors = [e for e in validator.iter_errors(record) if e.validator != "enum" and e.instance is not None]
        assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:120]}" for e in errors]
    keys = [record_key(entity, record) for record in records]
    assert len(set(keys)) == len(keys)
    assert all(all(part.strip() for part in key) for key in keys)


@pytest.mark.parametrize("entity", FEEDING, ids=_ids)
@settings(PROFILE)
@given(data=st.data())
def test_every_value_visma_may_send_lands_as_sent_or_its_record_is_held(entity: Entity, data: st.DataObject) -> None:
    records = data.draw(SOURCE.records(entity, max_size=5))
    run = run_pipeline(entity, records)
    assert not run.problems(), "\n".join(run.problems())


@pytest.mark.parametrize("entity", FEEDING, ids=_ids)
@settings(PROFILE)
@given(data=st.data())
def test_a_record_outside_the_contract_is_held_and_never_stops_the_others(entity: Entity, data: st.DataObject) -> None:
    records, mutation = data.draw(malformed_records(SOURCE, entity))
    run = run_pipeline(entity, records)
    assert not run.problems(), f"{_described(mutation)}\n" + "\n".join(run.problems())


def _described(mutation: Mutation) -> str:
    return f"record {mutation.path[0]} field {mutation.dotted} set to {mutation.value!r}"
