"""Change sets, content hashes, Tableau actions and request ids: pure, no Tableau."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from visma_tableau_pipeline.delivery.row_changes import (
    build_actions,
    compute_changes,
    keys_frame,
    partition_replace_actions,
    request_id,
    row_keys_and_hashes,
    schema_fingerprint,
)
from visma_tableau_pipeline.tableau.errors import ChangeSetError
from visma_tableau_pipeline_tests.tableau.tables import KEY, edited, invoices, money, rows_of


def test_first_delivery_inserts_every_row() -> None:
    frame = invoices(20)
    changes = compute_changes(frame, KEY, {})
    assert [row.action for row in changes.rows] == ["insert"] * 20
    assert len(changes.hashes) == 20 and changes.batch.deleted_keys.empty
    assert rows_of(changes.batch.upserts) == rows_of(frame)
    assert [row.key for row in changes.rows] == sorted(changes.hashes)
    assert "c1|Invoice|000001" in changes.hashes


def test_changed_new_and_deleted_rows_are_found_and_nothing_else() -> None:
    before = invoices(20)
    previous = compute_changes(before, KEY, {}).hashes
    after = edited(before)
    changes = compute_changes(after, KEY, previous)
    actions = {row.key: row.action for row in changes.rows}
    assert actions == {
        "c1|Invoice|000001": "update", "c1|Invoice|000002": "update",
        "c1|Invoice|000003": "update", "c1|Invoice|900001": "insert",
        "c1|Invoice|000004": "delete", "c1|CreditNote|000005": "delete",
    }
    upserted = changes.batch.upserts.set_index("reference_number")
    assert upserted.loc["000001", "amount_base_currency"] == Decimal("999.99")
    assert upserted.loc["000003", "amount_base_currency"] == Decimal("-0.01")
    assert rows_of(changes.batch.deleted_keys) == [
        ("c1", "CreditNote", "000005"), ("c1", "Invoice", "000004")]
    assert changes.hashes == compute_changes(after, KEY, {}).hashes
    deleted = next(row for row in changes.rows if row.key == "c1|Invoice|000004")
    assert deleted.content_hash == previous["c1|Invoice|000004"]


def test_unchanged_table_gives_an_empty_change_set_whatever_the_row_order() -> None:
    frame = invoices(30)
    previous = compute_changes(frame, KEY, {}).hashes
    shuffled = frame.sample(frac=1, random_state=7).reset_index(drop=True)
    assert compute_changes(shuffled, KEY, previous).is_empty


def test_hashes_are_the_same_in_another_process() -> None:
    frame = invoices(5)
    here = dict(zip(*row_keys_and_hashes(frame, KEY)))
    code = (
        "import json; from visma_tableau_pipeline.delivery.row_changes import row_keys_and_hashes;"
        "from visma_tableau_pipeline_tests.tableau.tables import KEY, invoices;"
        "print(json.dumps(dict(zip(*row_keys_and_hashes(invoices(5), KEY)))))"
    )
    there = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True, env={"PYTHONHASHSEED": "123"}).stdout)
    assert here == there


@pytest.mark.parametrize("column, other", [
    ("amount_base_currency", money(["13.02", None, None])),  # one cent
    ("supplier_name", pd.array(["", None, None], dtype="string")),  # empty text is not null
])
def test_content_hash_sees_small_differences(column: str, other: object) -> None:
    frame = invoices(1)
    _, [before] = row_keys_and_hashes(frame, KEY)
    frame[column] = pd.Series(other)[:1]
    _, [after] = row_keys_and_hashes(frame, KEY)
    assert before != after


def test_keys_with_separators_stay_distinct_and_parse_back_exactly() -> None:
    frame = invoices(2)
    frame["company_id"] = pd.array(["a|b", "a"], dtype="string")
    frame["document_type"] = pd.array(["c", "b|c"], dtype="string")
    frame["reference_number"] = pd.array(["x\\", "x\\"], dtype="string")
    keys, _ = row_keys_and_hashes(frame, KEY)
    assert len(set(keys)) == 2
    parsed = keys_frame(keys, frame, KEY)
    assert rows_of(parsed) == rows_of(frame[list(KEY)])


def test_typed_keys_parse_back_to_their_types() -> None:
    frame = invoices(3)
    key = ("company_id", "line_count", "due_date")
    keys, _ = row_keys_and_hashes(frame, key)
    parsed = keys_frame(keys, frame, key)
    assert rows_of(parsed) == rows_of(frame[list(key)])
    assert isinstance(parsed["due_date"][0], date)


def test_duplicate_keys_are_refused() -> None:
    frame = pd.concat([invoices(3), invoices(1)], ignore_index=True)
    with pytest.raises(ChangeSetError, match="not unique"):
        compute_changes(frame, KEY, {})


def test_actions_match_on_every_key_column_and_delete_from_the_keys_table() -> None:
    both = build_actions(KEY, has_upserts=True, has_deletes=True)
    assert [a["action"] for a in both] == ["delete", "upsert"]
    delete, upsert = both
    assert delete["source-table"] == "deleted_keys" and upsert["source-table"] == "Extract"
    assert delete["target-schema"] == "Extract" and delete["target-table"] == "Extract"
    assert upsert["condition"] == {"op": "and", "args": [
        {"op": "eq", "source-col": k, "target-col": k} for k in KEY]}
    single = build_actions(["id"], has_upserts=True, has_deletes=False)
    assert single == [{"action": "upsert", "target-schema": "Extract", "target-table": "Extract",
                       "source-schema": "Extract", "source-table": "Extract",
                       "condition": {"op": "eq", "source-col": "id", "target-col": "id"}}]


def test_partition_replace_deletes_by_constant_then_inserts() -> None:
    delete, insert = partition_replace_actions("snapshot_date", date(2025, 3, 31))
    assert delete["condition"] == {"op": "eq", "target-col": "snapshot_date",
                                   "const": {"type": "date", "v": "2025-03-31"}}
    assert "source-table" not in delete and insert["action"] == "insert"
    assert [a["action"] for a in partition_replace_actions("p", "202503", with_delete=False)] == [
        "insert"]


def test_request_ids_follow_content() -> None:
    before = invoices(10)
    previous = compute_changes(before, KEY, {}).hashes
    changes = compute_changes(edited(before), KEY, previous)
    actions = build_actions(KEY, has_upserts=True, has_deletes=True)
    first = request_id("ap_invoices", changes.rows, actions)
    assert first == request_id("ap_invoices", tuple(reversed(changes.rows)), actions)
    assert first != request_id("ar_invoices", changes.rows, actions)
    assert first != request_id("ap_invoices", changes.rows, actions, scope="run-2")
    assert first != request_id("ap_invoices", changes.rows[1:], actions)
    assert first != request_id("ap_invoices", changes.rows, actions[1:])
    # Going back to an earlier version is a new request: the id names the version left behind.
    back = compute_changes(before, KEY, changes.hashes)
    upserts = build_actions(KEY, has_upserts=True, has_deletes=False)
    restored = [r for r in back.rows if r.action == "update"]
    originally = [r for r in compute_changes(before, KEY, {}).rows
                  if r.key in {row.key for row in restored}]
    assert [r.content_hash for r in restored] == [r.content_hash for r in originally]
    assert request_id("ap_invoices", restored, upserts) != request_id(
        "ap_invoices", originally, upserts)
    # An exact repeat of a transition (A→B, B→A, A→B) is told apart only by the scope (run id).
    forth = compute_changes(edited(before), KEY, back.hashes)
    assert request_id("ap_invoices", forth.rows, actions) == first
    assert request_id("ap_invoices", forth.rows, actions, scope="run-3") != first


def test_split_shares_out_every_row_exactly_once() -> None:
    before = invoices(20)
    changes = compute_changes(edited(before), KEY, compute_changes(before, KEY, {}).hashes)
    parts = changes.batch.split(3)
    assert len(parts) == 3
    assert sorted(r.key for p in parts for r in p.rows) == sorted(r.key for r in changes.rows)
    for part in parts:
        assert [r.key for r in part.upsert_rows] == [
            "|".join(row) for row in part.upserts[list(KEY)].itertuples(index=False)]


def test_schema_fingerprint_follows_columns_and_types_not_values() -> None:
    frame = invoices(5)
    fingerprint = schema_fingerprint(frame)
    assert schema_fingerprint(invoices(8)) == fingerprint
    assert schema_fingerprint(frame.assign(extra=pd.array([1] * 5, dtype="Int64"))) != fingerprint
    retyped = frame.assign(line_count=frame["line_count"].astype("string"))
    assert schema_fingerprint(retyped) != fingerprint
