"""Contract test: every endpoint the Visma sandbox serves answers with JSON that Visma's own
OpenAPI document accepts.

Stricter than the document in two ways, so that the sandbox stays faithful: no object may carry
a field its schema does not name (a misspelt field would otherwise pass), and amounts carry at
most two decimals. date-time accepts Visma's zone-less form ("2025-03-14T00:00:00"), which is
what the real API writes; RFC 3339 would demand a zone.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from datetime import datetime

import pytest
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator

from visma_tableau_pipeline.sandbox.visma import DemoSize, VismaSandbox
from visma_tableau_pipeline.visma.catalogue import entity, key_values
from visma_tableau_pipeline_tests.conftest import OPENAPI_PATH as SPEC_PATH
from visma_tableau_pipeline_tests.sandbox.visma_support import SandboxClient, decimals

_VISMA_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _VISMA_DATE_TIME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Visma date-time")
    datetime.fromisoformat(value[:19])
    return True


@FORMATS.checks("byte", raises=(ValueError, binascii.Error))
def _byte(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    import uuid

    if isinstance(value, str):
        uuid.UUID(value)
    return True


def _closed(schema: object) -> object:
    """Every object schema that lists properties accepts no others."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in schema:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def spec() -> dict:
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return {"paths": document["paths"], "components": _closed(copy.deepcopy(document["components"]))}


@pytest.fixture(scope="module")
def sandbox():
    # two generated client companies too (`vtp sandbox --companies`): one of each template
    with VismaSandbox(DemoSize(supplier_invoices=120), seed=3, client_companies=2) as running:
        # overlay records (modified, created) are rendered by another path: cover them too
        running.modify("nordic-no", "supplier_invoices", ("Invoice", "000002"))
        running.create("nordic-no", "supplier_invoices")
        running.create("nordic-no", "journal_transactions")
        running.modify("nordic-se", "customers", ("10003",))
        yield running


def _validator(spec: dict, path: str) -> OAS30Validator:
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return OAS30Validator({**schema, "components": spec["components"]}, format_checker=FORMATS)


def _calls(sandbox: VismaSandbox, company_id: str) -> list[tuple[str, str, dict]]:
    """(spec path, request path, params) for every served endpoint."""
    calls = []
    for endpoint in sandbox.endpoints:
        if endpoint.by_key:  # the company's last record: a modified or created one where there are
            *_, record = sandbox.records(company_id, endpoint.entity_name)
            key = list(key_values(entity(endpoint.entity_name).key, record))
            calls.append((endpoint.path, re.sub(r"\{\w+\}", lambda _, key=key: key.pop(0), endpoint.path), {}))
            continue
        params: dict = {"pageNumber": 1, "pageSize": 150} if endpoint.paged else {}
        if endpoint.path == "/v1/timeCard":
            params["lastModifiedDateTime"] = "2026-09-01"
            params["lastModifiedDateTimeCondition"] = ">="
        if endpoint.path == "/v1/dimension/{dimensionId}":
            calls += [(endpoint.path, f"/v1/dimension/{dim}", params) for dim in ("ACCOUNT", "SUBACCOUNT")]
        elif endpoint.path == "/v1/employee/{employeeCd}/timecards":
            calls.append((endpoint.path, "/v1/employee/1002/timecards", params))
        else:
            calls.append((endpoint.path, endpoint.path, params))
    return calls


@pytest.mark.parametrize("company_id", ["nordic-no", "nordic-se", "client-001", "client-002"])
def test_every_endpoint_answers_what_the_openapi_document_describes(sandbox, spec, company_id):
    client = SandboxClient(sandbox, company_id)
    checked = set()
    try:
        for spec_path, path, params in _calls(sandbox, company_id):
            body = client.json(path, **params)
            errors = sorted(_validator(spec, spec_path).iter_errors(body), key=str)
            assert not errors, f"{path}: {errors[0].message} at {list(errors[0].absolute_path)}"
            items = body if isinstance(body, list) else [body]
            assert items, f"{path} answered an empty list: nothing was checked"
            too_precise = [(k, v) for k, v in decimals(body) if "rate" not in k.lower() and v.as_tuple().exponent < -2]
            assert not too_precise, f"{path}: amounts with more than two decimals: {too_precise[:3]}"
            checked.add(spec_path)
    finally:
        client.close()
    assert checked == {e.path for e in sandbox.endpoints}


def test_overlay_records_are_served_and_valid(sandbox, spec):
    client = SandboxClient(sandbox, "nordic-no")
    try:
        last_page = list(client.pages("/v1/supplierInvoice", 100))[-1]
        validator = _validator(spec, "/v1/supplierInvoice")
        assert not list(validator.iter_errors(last_page))
        assert last_page[-1]["referenceNumber"] == "000121"  # the created one, at the end
        assert last_page[-2]["referenceNumber"] == "000002"  # the modified one, before it
    finally:
        client.close()
