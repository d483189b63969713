"""Hyper extracts: exact decimals (through pantab 5.3.0's small-negative bug), atomic replace."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from tableauhyperapi import Connection, HyperProcess, SqlType, Telemetry

from visma_tableau_pipeline.marts.hyper import (
    EXTRACT_TABLE,
    ExtractSchemaChanged,
    HyperWriteError,
    frame_from_hyper,
    replace_groups,
    write_hyper,
)
from visma_tableau_pipeline.marts.registry import build_mart

SMALL_NEGATIVES = ["-0.05", "-0.01", "-0.10", "-0.5", "0", "0.05", "-1234567890123456.78", "-0.99"]


def money(values: list[str | None], scale: int = 2) -> pd.Series:
    decimals = [None if value is None else Decimal(value) for value in values]
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(decimals, pa.decimal128(18, scale))))


def test_small_negative_decimals_round_trip_exactly(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "company_id": pd.Series(["c1"] * 9, dtype="string"),
        "row": pd.Series(range(9), dtype="Int64"),
        "amount_doc_currency": money([*SMALL_NEGATIVES, None]),
        "quantity": money(["-0.000001", "-0.5", "0", "1", "-0.01", "2.5", "-3", "0.000001", None],
                          scale=6),
    })
    path = write_hyper(frame, tmp_path, "ap_invoices")
    back = frame_from_hyper(path).sort_values("row").reset_index(drop=True)
    assert back["amount_doc_currency"].tolist()[:8] == [Decimal(v).quantize(Decimal("0.01"))
                                                        for v in SMALL_NEGATIVES]
    assert back["amount_doc_currency"].isna().tolist() == [False] * 8 + [True]
    assert back["quantity"].tolist()[:8] == [Decimal(v) for v in
                                             ["-0.000001", "-0.5", "0", "1", "-0.01", "2.5", "-3",
                                              "0.000001"]]
    assert _column_types(path) == {
        "company_id": SqlType.text(), "row": SqlType.big_int(),
        "amount_doc_currency": SqlType.numeric(18, 2), "quantity": SqlType.numeric(18, 6),
    }


def test_every_column_kind_survives_the_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "company_id": pd.Series(["c1", None], dtype="string"),
        "due_date": pd.Series(pd.arrays.ArrowExtensionArray(pa.array([date(2025, 3, 14), None]))),
        "last_modified_at": pd.Series([datetime(2025, 3, 14, 10, 30), None], dtype="datetime64[us]"),
        "active": pd.Series([True, None], dtype="boolean"),
        "line_number": pd.Series([7, None], dtype="Int64"),
    })
    back = frame_from_hyper(write_hyper(frame, tmp_path, "t")).sort_values("line_number")
    assert back["company_id"].tolist()[0] == "c1"
    assert back["due_date"].tolist()[0] == date(2025, 3, 14)
    assert back["last_modified_at"].tolist()[0] == pd.Timestamp("2025-03-14 10:30")
    assert back["active"].tolist()[0] is True
    assert back.isna().sum().tolist() == [1, 1, 1, 1, 1]


def test_a_built_table_writes_and_reads_back(tmp_path: Path) -> None:
    batch = {
        "company_id": "c1", "module": "ModuleGL", "batchNumber": "1", "financialPeriod": "202503",
        "currencyId": "NOK", "journalTransactionLines": [
            {"lineNumber": 1, "accountNumber": "3740", "debitAmount": Decimal("0.04"),
             "debitAmountInCurrency": Decimal("0.04")},
            {"lineNumber": 2, "accountNumber": "1920", "creditAmount": Decimal("0.04"),
             "creditAmountInCurrency": Decimal("0.04")},
        ],
    }
    frame = build_mart("gl_transactions", {"journal_transactions": [batch]}, date(2025, 4, 1))
    back = frame_from_hyper(write_hyper(frame, tmp_path, "gl_transactions"))
    assert list(back.columns) == list(frame.columns)
    assert sorted(back["amount_base_currency"].tolist()) == [Decimal("-0.04"), Decimal("0.04")]


def test_empty_table_writes_its_declared_columns(tmp_path: Path) -> None:
    frame = build_mart("ap_aging", {}, date(2025, 4, 1))
    back = frame_from_hyper(write_hyper(frame, tmp_path, "ap_aging"))
    assert back.empty
    assert list(back.columns) == list(frame.columns)
    assert _column_types(tmp_path / "ap_aging.hyper")["open_balance_doc_currency"] == SqlType.numeric(18, 2)


def test_rewrite_replaces_atomically_and_failure_keeps_the_old_file(tmp_path: Path) -> None:
    first = pd.DataFrame({"amount": money(["1.00"])})
    write_hyper(first, tmp_path, "t")
    write_hyper(pd.DataFrame({"amount": money(["-0.05", "2.00"])}), tmp_path, "t")
    assert sorted(frame_from_hyper(tmp_path / "t.hyper")["amount"].tolist()) == [Decimal("-0.05"),
                                                                                  Decimal("2.00")]
    too_wide = pd.DataFrame({"amount": pd.Series(pd.arrays.ArrowExtensionArray(
        pa.array([Decimal("1")], pa.decimal128(38, 2))))})
    with pytest.raises(HyperWriteError, match="at most 18 digits"):
        write_hyper(too_wide, tmp_path, "t")
    assert sorted(frame_from_hyper(tmp_path / "t.hyper")["amount"].tolist()) == [Decimal("-0.05"),
                                                                                  Decimal("2.00")]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["t.hyper"]


def _column_types(path: Path) -> dict[str, SqlType]:
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                      parameters={"log_config": ""}) as hyper, \
            Connection(hyper.endpoint, path) as connection:
        definition = connection.catalog.get_table_definition(EXTRACT_TABLE)
        return {column.name.unescaped: column.type for column in definition.columns}


def _ledger_rows(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame({
        "company_id": pd.Series([r[0] for r in rows], dtype="string"),
        "line": pd.Series([r[1] for r in rows], dtype="Int64"),
        "amount": money([r[2] for r in rows]),
    })


def test_replacing_groups_keeps_other_rows_and_exact_small_negatives(tmp_path: Path) -> None:
    path = write_hyper(_ledger_rows([("c1", 1, "1.00"), ("c1", 2, "2.00"), ("c2", 1, "3.00"), ("c3", 1, "4.00")]),
                       tmp_path, "lines")
    groups = pd.DataFrame({"company_id": pd.Series(["c1", "c3"], dtype="string")})
    new_rows = _ledger_rows([("c1", 1, "-0.05"), ("c1", 3, "-0.01")])  # c1 line 2 gone, c3 gone

    assert replace_groups(path, new_rows, groups) == 3
    back = frame_from_hyper(path).sort_values(["company_id", "line"]).reset_index(drop=True)
    assert list(zip(back["company_id"], back["line"], back["amount"])) == [
        ("c1", 1, Decimal("-0.05")), ("c1", 3, Decimal("-0.01")), ("c2", 1, Decimal("3.00"))]


def test_replacing_groups_with_other_columns_leaves_the_extract_alone(tmp_path: Path) -> None:
    path = write_hyper(_ledger_rows([("c1", 1, "1.00")]), tmp_path, "lines")
    before = path.read_bytes()
    wider = _ledger_rows([("c1", 1, "2.00")]).assign(note=pd.Series(["new column"], dtype="string"))
    groups = pd.DataFrame({"company_id": pd.Series(["c1"], dtype="string")})

    with pytest.raises(ExtractSchemaChanged, match="columns or types changed"):
        replace_groups(path, wider, groups)
    assert path.read_bytes() == before


def test_characters_pantab_would_mangle_arrive_exactly(tmp_path):
    """pantab 5.3.0 writes U+2D800 (CJK Extension F) and U+1D800 as U+FFFD; Hyper keeps them."""
    texts = ["\U0002D800 Ext F", "plain", None, "\U0001D800\x00\U0001F600\U0010DFFF", "Ø"]
    frame = pd.DataFrame({"key": pd.array(["a", "b", "c", "d", "e"], dtype="string"),
                          "name": pd.array(texts, dtype="string"),
                          "amount": money(["-0.05", "1.00", None, "2.50", "3"])})
    path = write_hyper(frame, tmp_path, "texts")
    back = frame_from_hyper(path).sort_values("key")
    assert back["name"].tolist()[:2] == texts[:2] and back["name"].tolist()[3:] == texts[3:]
    assert pd.isna(back["name"].tolist()[2])

    rows = pd.DataFrame({"key": pd.array(["\U0002DFFF"], dtype="string"),
                         "name": pd.array(["\U0002D801"], dtype="string"), "amount": money(["-0.01"])})
    replace_groups(path, rows, pd.DataFrame({"key": pd.array(["a", "\U0002DFFF"], dtype="string")}))
    again = replace_groups(path, rows, rows[["key"]])  # the new key matches itself: no duplicate
    back = frame_from_hyper(path)
    assert again == 5 and set(back["key"]) == {"b", "c", "d", "e", "\U0002DFFF"}
    assert back.loc[back["key"] == "\U0002DFFF", "name"].tolist() == ["\U0002D801"]
    assert back.loc[back["key"] == "\U0002DFFF", "amount"].tolist() == [Decimal("-0.01")]
