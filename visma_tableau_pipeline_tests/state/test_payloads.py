"""Canonical JSON: the exact text the store keeps and hashes, and the values it refuses by path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from visma_tableau_pipeline.state import PayloadError
from visma_tableau_pipeline.state.payloads import canonical_json, load_payload


def test_text_is_sorted_compact_exact_and_without_volatile_fields_at_any_depth() -> None:
    payload = {
        "referenceNumber": "000042",
        "amount": Decimal("1250.50"),
        "quantity": 3,
        "hold": False,
        "note": None,
        "timeStamp": "AAAAAAE=",
        "metadata": {"totalCount": 10},
        "supplier": {"name": "Grønli AS", "metadata": {"x": 1}, "number": "50440"},
        "lines": [{"lineNumber": 1, "cost": Decimal("100")}, [], {}],
    }
    assert canonical_json(payload) == (
        '{"amount":1250.50,"hold":false,"lines":[{"cost":100,"lineNumber":1},[],{}],"note":null,'
        '"quantity":3,"referenceNumber":"000042","supplier":{"name":"Gr\\u00f8nli AS","number":"50440"}}'
    )
    assert load_payload(canonical_json(payload))["amount"] == Decimal("1250.50")


def test_a_string_that_reads_nan_or_infinity_is_kept_as_text() -> None:
    payload = {"description": "NaN-coated Infinity mirror", "amount": Decimal("1.00")}
    assert canonical_json(payload) == '{"amount":1.00,"description":"NaN-coated Infinity mirror"}'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"lines": [{"cost": Decimal("NaN")}]}, r"NaN at \$\.lines\[0\]\.cost is not a number"),
        ({"lines": [{"cost": Decimal("-Infinity")}]}, r"-Infinity at \$\.lines\[0\]\.cost"),
        ({"supplier": {1: "x"}}, r"non-string field name 1 at \$\.supplier"),
        ({"a": Decimal("1"), "b": [1.5]}, r"float at \$\.b\[0\]"),
        ({"a": ("x", "y")}, r"tuple at \$\.a is not a JSON value"),
    ],
)
def test_values_json_cannot_hold_exactly_are_refused_by_path(payload: dict, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        canonical_json(payload)


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError, match="must be a JSON object, not list"):
        canonical_json([{"a": 1}])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": Decimal("0.10"), "rate": Decimal("1.0000"), "n": 100, "big": 10**30, "neg": Decimal("-0.01")},
        {"name": "Ørsta \"Data\" AS", "lines": [{"amount": Decimal("1E+2")}], "none": None, "flag": False},
        {"odd": "\ud800 a lone surrogate"},  # canonical JSON escapes it; only json.loads reads that back
    ],
)
def test_stored_texts_read_back_to_the_same_values_with_decimals_exact(payload: dict) -> None:
    back = load_payload(canonical_json(payload))
    assert back == payload
    assert {k: str(v) for k, v in back.items() if isinstance(v, Decimal)} == {
        k: str(v) for k, v in payload.items() if isinstance(v, Decimal)
    }
