"""Tableau's update-action conditions and constants, translated to Hyper SQL (no server needed)."""

from __future__ import annotations

import pytest

from visma_tableau_pipeline.sandbox.tableau.hs256 import JwtError, encode, verify
from visma_tableau_pipeline.sandbox.tableau.hyper_actions import (
    HyperActionError,
    action_statements,
    condition_sql,
    const_sql,
)


def test_operands_follow_the_order_the_condition_lists_them() -> None:
    assert condition_sql({"op": "lt", "target-col": "due", "const": {"type": "date", "v": "2024-01-31"}}) == (
        "(t.\"due\" < CAST('2024-01-31' AS DATE))"
    )
    assert condition_sql({"op": "gt", "args": [{"source-col": "a"}, {"target-col": "b"}]}) == '(s."a" > t."b")'


def test_nested_and_or_not() -> None:
    condition = {
        "op": "and",
        "args": [
            {"op": "eq", "target-col": "k", "source-col": "k"},
            {"op": "not", "arg": {"op": "is-null", "target-col": "amount"}},
        ],
    }
    assert condition_sql(condition) == '((t."k" = s."k") AND (NOT (t."amount" IS NULL)))'


def test_constants_are_literals_never_raw_sql() -> None:
    assert const_sql({"type": "string", "v": "x'; DROP TABLE t; --"}) == "'x''; DROP TABLE t; --'"
    with pytest.raises(HyperActionError):
        const_sql({"type": "numeric", "v": "1; DELETE"})


def test_delete_on_source_columns_needs_a_source_table() -> None:
    action = {"action": "delete", "condition": {"op": "eq", "target-col": "k", "source-col": "k"}}
    with pytest.raises(HyperActionError, match="needs a source table"):
        action_statements(action, '"target"."Extract"."Extract"', None, [])


def test_jwt_signature_covers_the_claims() -> None:
    token = encode({"sub": "analyst"}, "secret")
    assert verify(token, "secret") == {"sub": "analyst"}
    header, _, signature = token.split(".")
    forged = ".".join([header, encode({"sub": "admin"}, "other").split(".")[1], signature])
    with pytest.raises(JwtError):
        verify(forged, "secret")
