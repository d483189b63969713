"""Tableau's incremental-update actions (`update_hyper_data`) as Hyper SQL.

An action names a target table, usually a source table in the uploaded payload, and for row
actions a condition, for example `{"op": "eq", "target-col": "k", "source-col": "k"}`. In SQL the
target row is `t` and the source row `s`:

- insert:  INSERT INTO target SELECT <shared columns> FROM source
- replace: DELETE FROM target, then insert
- update:  UPDATE target AS t SET <shared columns> = s.<column> FROM source AS s WHERE <cond>
- upsert:  update, then insert the source rows that match no target row
- delete:  DELETE FROM target AS t WHERE EXISTS (source row s with <cond>), or WHERE <cond>
           when the action names no source table

A comparison takes its operands in the order the JSON object lists them (`{"op": "lt",
"target-col": "d", "const": ...}` is `t.d < const`) or from an `args` list of operand objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from tableauhyperapi import escape_name, escape_string_literal

_COMPARISONS = {"eq": "=", "neq": "<>", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_OPERAND_KEYS = ("target-col", "source-col", "const")
ACTIONS = ("insert", "replace", "update", "upsert", "delete")


class HyperActionError(ValueError):
    """An action or condition that cannot be applied; the message names the offending part."""


def condition_sql(condition: Mapping[str, Any]) -> str:
    op = condition.get("op")
    if op in ("and", "or"):
        args = condition.get("args")
        if not isinstance(args, list) or not args:
            raise HyperActionError(f"condition '{op}' needs a non-empty 'args' list")
        return "(" + f" {op.upper()} ".join(condition_sql(arg) for arg in args) + ")"
    if op == "not":
        inner = condition.get("arg") or (condition.get("args") or [None])[0]
        if not isinstance(inner, Mapping):
            raise HyperActionError("condition 'not' needs one condition in 'arg'")
        return f"(NOT {condition_sql(inner)})"
    operands = _operands(condition)
    if op in ("is-null", "is-not-null"):
        if len(operands) != 1:
            raise HyperActionError(f"condition '{op}' takes one operand")
        return f"({operands[0]} IS {'NOT ' if op == 'is-not-null' else ''}NULL)"
    if op in _COMPARISONS:
        if len(operands) != 2:
            raise HyperActionError(f"condition '{op}' takes two operands; got {len(operands)}")
        return f"({operands[0]} {_COMPARISONS[op]} {operands[1]})"
    raise HyperActionError(f"unknown condition operator {op!r}")


def uses_source(condition: Mapping[str, Any]) -> bool:
    if "source-col" in condition:
        return True
    nested = list(condition.get("args") or [])
    if isinstance(condition.get("arg"), Mapping):
        nested.append(condition["arg"])
    return any(isinstance(n, Mapping) and uses_source(n) for n in nested)


def _operands(condition: Mapping[str, Any]) -> list[str]:
    if "args" in condition:
        return [_operand_of(arg) for arg in condition["args"]]
    return [_operand(key, value) for key, value in condition.items() if key in _OPERAND_KEYS]


def _operand_of(arg: Any) -> str:
    if not isinstance(arg, Mapping) or len(arg) != 1 or next(iter(arg)) not in _OPERAND_KEYS:
        raise HyperActionError(f"an operand must be one of {_OPERAND_KEYS}; got {arg!r}")
    key, value = next(iter(arg.items()))
    return _operand(key, value)


def _operand(key: str, value: Any) -> str:
    if key == "target-col":
        return f"t.{escape_name(str(value))}"
    if key == "source-col":
        return f"s.{escape_name(str(value))}"
    return const_sql(value)


def const_sql(const: Any) -> str:
    """A typed constant `{"type": ..., "v": ...}` as a SQL literal; values are never spliced raw."""
    if not isinstance(const, Mapping) or "v" not in const:
        raise HyperActionError(f"a constant must be {{'type': ..., 'v': ...}}; got {const!r}")
    kind, value = str(const.get("type", "string")).lower(), const["v"]
    if value is None:
        return "NULL"
    if kind in ("string", "text"):
        return escape_string_literal(str(value))
    if kind in ("integer", "int", "bigint", "smallint", "numeric", "decimal", "double", "float", "real"):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise HyperActionError(f"constant {value!r} is not a number") from None
        if not number.is_finite():
            raise HyperActionError(f"constant {value!r} is not a finite number")
        return str(number)
    if kind in ("boolean", "bool"):
        return "TRUE" if str(value).lower() in ("true", "1") else "FALSE"
    if kind == "date":
        return f"CAST({escape_string_literal(str(value))} AS DATE)"
    if kind in ("datetime", "timestamp"):
        return f"CAST({escape_string_literal(str(value))} AS TIMESTAMP)"
    raise HyperActionError(f"unknown constant type {kind!r}")


def action_statements(
    action: Mapping[str, Any], target: str, source: str | None, shared_columns: Sequence[str]
) -> list[str]:
    """The SQL statements of one action, given resolved table names and the shared columns."""
    kind = action.get("action")
    condition = action.get("condition")
    columns = ", ".join(escape_name(c) for c in shared_columns)
    source_columns = ", ".join(f"s.{escape_name(c)}" for c in shared_columns)
    if kind in ("insert", "replace", "update", "upsert") and source is None:
        raise HyperActionError(f"action '{kind}' needs a source table from the payload")
    if kind in ("update", "upsert", "delete") and not isinstance(condition, Mapping):
        raise HyperActionError(f"action '{kind}' needs a condition")
    insert_all = f"INSERT INTO {target} ({columns}) SELECT {source_columns} FROM {source} AS s"
    if kind == "insert":
        return [insert_all]
    if kind == "replace":
        return [f"DELETE FROM {target}", insert_all]
    assert isinstance(condition, Mapping)
    where = condition_sql(condition)
    if kind == "delete":
        if source is None:
            if uses_source(condition):
                raise HyperActionError("a delete condition on source columns needs a source table")
            return [f"DELETE FROM {target} AS t WHERE {where}"]
        return [f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM {source} AS s WHERE {where})"]
    assignments = ", ".join(f"{escape_name(c)} = s.{escape_name(c)}" for c in shared_columns)
    update = f"UPDATE {target} AS t SET {assignments} FROM {source} AS s WHERE {where}"
    if kind == "update":
        return [update]
    if kind == "upsert":
        return [
            update,
            f"{insert_all} WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {where})",
        ]
    raise HyperActionError(f"unknown action {kind!r}; known: {', '.join(ACTIONS)}")
