"""The raw record store: idempotent upserts, exact decimals, deletions, and crash safety."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from visma_tableau_pipeline.state import (
    PayloadError,
    StateDB,
    UpsertResult,
    advance_watermark,
    content_hashes,
    count,
    get_watermark,
    iter_records,
    key_parts,
    key_string,
    keys_for,
    mark_deleted,
    upsert_records,
)
from visma_tableau_pipeline.state.payloads import canonical_json
from visma_tableau_pipeline.state.record_store import iter_json
from visma_tableau_pipeline.state.schema import records

COMPANY = "acme"
ENTITY = "supplier_invoices"


def invoice(number: str, amount: str = "100.00", **extra: Any) -> dict[str, Any]:
    return {
        "documentType": "Invoice",
        "referenceNumber": number,
        "amount": Decimal(amount),
        "supplier": {"number": "70001", "name": "Nordic Paper AS"},
        "lastModifiedDateTime": "2025-03-02T10:11:12.123",
        **extra,
    }


def row(number: str, period: str | None = "202503", **fields: Any) -> tuple:
    payload = invoice(number, **fields)
    return (key_string(("Invoice", number)), period, payload["lastModifiedDateTime"], payload)


def stored(db: StateDB, number: str) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                select(records).where(records.c.record_key == key_string(("Invoice", number)))
            ).mappings().one()
        )


def upsert(db: StateDB, rows: list[tuple], run_id: str) -> UpsertResult:
    with db.transaction() as conn:
        return upsert_records(conn, COMPANY, ENTITY, rows, run_id)


def test_upserting_the_same_records_twice_writes_no_new_versions(db: StateDB) -> None:
    assert upsert(db, [row("1"), row("2")], "run-1") == UpsertResult(inserted=2)
    before = stored(db, "1")

    assert upsert(db, [row("1"), row("2")], "run-2") == UpsertResult(unchanged=2)

    assert stored(db, "1") == before  # same hash, same run ids, same updated_at


def test_a_changed_field_is_an_update_with_a_new_hash(db: StateDB) -> None:
    upsert(db, [row("1")], "run-1")
    first = stored(db, "1")

    result = upsert(db, [row("1", amount="100.01")], "run-2")

    second = stored(db, "1")
    assert result == UpsertResult(updated=1)
    assert second["content_hash"] != first["content_hash"]
    assert (second["first_seen_run"], second["last_changed_run"]) == ("run-1", "run-2")


def test_volatile_fields_do_not_make_a_new_version(db: StateDB) -> None:
    upsert(db, [row("1", timeStamp="AAAAAAE=", metadata={"totalCount": 10})], "run-1")

    result = upsert(
        db,
        [row("1", timeStamp="AAAAAAI=", metadata={"totalCount": 11},
             supplier={"number": "70001", "name": "Nordic Paper AS", "metadata": {"x": 1}})],
        "run-2",
    )

    assert result == UpsertResult(unchanged=1)
    with db.connect() as conn:
        (payload,) = iter_records(conn, COMPANY, ENTITY)
    assert "timeStamp" not in payload and "metadata" not in payload


def test_a_ready_text_is_stored_as_given_and_hashed_as_utf8(db: StateDB) -> None:
    text = '{"referenceNumber":"1","documentType":"Invoice","supplier":"Ørsta","amount":0.10}'
    payload = {"referenceNumber": "1", "documentType": "Invoice", "supplier": "Ørsta",
               "amount": Decimal("0.10")}
    ascii_row = row("2")

    result = upsert(db, [(key_string(("Invoice", "1")), None, None, payload, text), ascii_row], "run-1")

    assert result == UpsertResult(inserted=2)
    first, second = stored(db, "1"), stored(db, "2")
    assert first["payload"] == text
    assert first["content_hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Without a text: canonical JSON, hashed exactly as before texts were kept (ASCII).
    assert second["payload"] == canonical_json(ascii_row[3])
    assert second["content_hash"] == hashlib.sha256(canonical_json(ascii_row[3]).encode("ascii")).hexdigest()


def test_stored_texts_are_read_back_as_their_utf8_bytes_escapes_and_all(db: StateDB) -> None:
    """What a column-wise build reads: the stored text's own bytes (a bytea cast in PostgreSQL
    would take the JSON escapes for its own)."""
    text = '{"referenceNumber":"1","description":"tab\\t, quote \\", \\\\x41 and \\u00f8 or Ørsta"}'
    payload = json.loads(text)
    upsert(db, [(key_string(("Invoice", "1")), None, None, payload, text), row("2")], "run-1")
    with db.connect() as conn:
        texts = list(iter_json(conn, COMPANY, ENTITY))
    assert texts == [text.encode(), canonical_json(row("2")[3]).encode()]


def test_the_same_content_as_a_ready_text_again_is_unchanged(db: StateDB) -> None:
    text = '{"documentType":"Invoice","referenceNumber":"1","amount":0.10}'
    payload = json.loads(text, parse_float=Decimal)
    upsert(db, [(key_string(("Invoice", "1")), None, None, payload, text)], "run-1")

    again = upsert(db, [(key_string(("Invoice", "1")), None, None, payload, text)], "run-2")
    reordered = '{"referenceNumber":"1","documentType":"Invoice","amount":0.10}'
    moved = upsert(db, [(key_string(("Invoice", "1")), None, None, payload, reordered)], "run-3")

    assert again == UpsertResult(unchanged=1)
    assert moved == UpsertResult(updated=1)  # a new key order is a new text: one update, once


def test_decimals_round_trip_exactly(db: StateDB) -> None:
    amounts = ["-0.05", "12345678901234.56", "0.10", "1E+2", "-0.00"]
    upsert(db, [row(str(i), amount=amount) for i, amount in enumerate(amounts)], "run-1")

    with db.connect() as conn:
        read = [payload["amount"] for payload in iter_records(conn, COMPANY, ENTITY)]

    assert [str(value) for value in read] == amounts
    assert all(type(value) is Decimal for value in read)


def test_a_float_amount_is_refused_with_the_record_named(db: StateDB) -> None:
    with pytest.raises(PayloadError, match=r"float at \$\.amount.*parse_float=Decimal") as caught:
        upsert(db, [("Invoice|9", None, None, {"amount": 0.1})], "run-1")
    assert caught.value.context["record_key"] == "Invoice|9"


def test_a_period_that_is_not_yyyypp_is_refused(db: StateDB) -> None:
    with pytest.raises(PayloadError, match="YYYYPP"):
        upsert(db, [row("1", period="2025-03")], "run-1")


def test_a_key_repeated_in_one_call_counts_once_per_copy(db: StateDB) -> None:
    result = upsert(db, [row("1"), row("1"), row("1", amount="5.00")], "run-1")

    assert result == UpsertResult(inserted=1, unchanged=1, updated=1)
    with db.connect() as conn:
        assert [p["amount"] for p in iter_records(conn, COMPANY, ENTITY)] == [Decimal("5.00")]


def test_batches_larger_than_one_statement_are_stored_and_counted(db: StateDB) -> None:
    rows = [row(f"{i:05d}", amount=f"{i}.{i % 100:02d}") for i in range(2500)]
    assert upsert(db, rows, "run-1") == UpsertResult(inserted=2500)

    rows[1234] = row("01234", amount="0.01")
    assert upsert(db, rows, "run-2") == UpsertResult(updated=1, unchanged=2499)
    with db.connect() as conn:
        assert count(conn, COMPANY, ENTITY) == 2500


def test_reads_filter_by_company_entity_and_period(db: StateDB) -> None:
    upsert(db, [row("1", period="202502"), row("2", period="202503"), row("3", period=None)], "r")
    with db.transaction() as conn:
        upsert_records(conn, "other", ENTITY, [row("4")], "r")

    with db.connect() as conn:
        numbers = [p["referenceNumber"] for p in iter_records(conn, COMPANY, ENTITY)]
        assert numbers == ["1", "2", "3"]
        march = [p["referenceNumber"] for p in iter_records(conn, COMPANY, ENTITY, "202503")]
        assert march == ["2"]
        assert count(conn, COMPANY, ENTITY, period="202502") == 1
        assert keys_for(conn, "other", ENTITY) == {"Invoice|4"}
        assert set(content_hashes(conn, COMPANY, ENTITY)) == {"Invoice|1", "Invoice|2", "Invoice|3"}


def test_deleted_records_leave_the_live_view_and_come_back_as_updates(db: StateDB) -> None:
    upsert(db, [row("1"), row("2")], "run-1")

    with db.transaction() as conn:
        assert mark_deleted(conn, COMPANY, ENTITY, ["Invoice|2", "Invoice|missing"], "run-2") == 1
        assert mark_deleted(conn, COMPANY, ENTITY, ["Invoice|2"], "run-3") == 0  # already gone

    with db.connect() as conn:
        assert keys_for(conn, COMPANY, ENTITY) == {"Invoice|1"}
        assert keys_for(conn, COMPANY, ENTITY, include_deleted=True) == {"Invoice|1", "Invoice|2"}
        assert count(conn, COMPANY, ENTITY, include_deleted=True) == 2
    assert stored(db, "2")["last_changed_run"] == "run-2"

    assert upsert(db, [row("2")], "run-4") == UpsertResult(updated=1)
    assert stored(db, "2")["deleted_at"] is None


def test_a_run_that_fails_after_upserting_leaves_records_and_watermark_unchanged(
    db: StateDB,
) -> None:
    with db.transaction() as conn:
        upsert_records(conn, COMPANY, ENTITY, [row("1")], "run-1")
        advance_watermark(conn, COMPANY, ENTITY, "2025-03-01T00:00:00", "run-1")

    with pytest.raises(RuntimeError, match="crash"):
        with db.transaction() as conn:
            upsert_records(conn, COMPANY, ENTITY, [row("1", amount="1.00"), row("2")], "run-2")
            advance_watermark(conn, COMPANY, ENTITY, "2025-03-05T00:00:00", "run-2")
            raise RuntimeError("crash mid-run")

    with db.connect() as conn:
        assert [p["amount"] for p in iter_records(conn, COMPANY, ENTITY)] == [Decimal("100.00")]
        assert get_watermark(conn, COMPANY, ENTITY) == "2025-03-01T00:00:00"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("Invoice", "000123"), "Invoice|000123"),
        (("GL", 7), "GL|7"),
        (("a|b", "c"), "a\\|b|c"),
        (("a", "b|c"), "a|b\\|c"),
        (("a\\", "b"), "a\\\\|b"),
    ],
)
def test_key_string_is_readable_and_unambiguous(parts: tuple, expected: str) -> None:
    assert key_string(parts) == expected
    assert key_parts(expected) == tuple(str(part) for part in parts)  # and reads back


def test_key_string_refuses_a_missing_part() -> None:
    with pytest.raises(PayloadError):
        key_string(("Invoice", None))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        (("Invoice", "000123"), "Invoice|000123"),
        (("A|B", "C"), "A\\|B|C"),
        (("A", "B|C"), "A|B\\|C"),
        (("A\\", "|B"), "A\\\\|\\|B"),
        (("1", 2), "1|2"),
        (("x",), "x"),
    ],
)
def test_key_strings_tell_every_key_apart(parts, text):
    assert key_string(parts) == text


def test_a_key_part_that_is_no_string_or_integer_is_refused():
    with pytest.raises(PayloadError):
        key_string(("Invoice", None))
    with pytest.raises(PayloadError):
        key_string(())
