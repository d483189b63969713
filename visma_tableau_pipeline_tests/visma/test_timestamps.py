"""Every timestamp form Visma emits, the filter format, and the watermark."""

from __future__ import annotations

from datetime import datetime

import pytest

from visma_tableau_pipeline.visma.timestamps import format_for_query, max_modified, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", datetime(2024, 3, 1)),
        ("2024-03-01 13:04:05", datetime(2024, 3, 1, 13, 4, 5)),
        ("2024-03-01T13:04:05", datetime(2024, 3, 1, 13, 4, 5)),
        ("2024-03-01T13:04:05.1", datetime(2024, 3, 1, 13, 4, 5, 100000)),
        ("2024-03-01T13:04:05.123", datetime(2024, 3, 1, 13, 4, 5, 123000)),
        ("2024-03-01T13:04:05.1234567", datetime(2024, 3, 1, 13, 4, 5, 123456)),
        ("2024-03-01T13:04:05.123Z", datetime(2024, 3, 1, 13, 4, 5, 123000)),
        ("2024-03-01T13:04:05+01:00", datetime(2024, 3, 1, 13, 4, 5)),
        ("2024-03-01T13:04:05.5-0500", datetime(2024, 3, 1, 13, 4, 5, 500000)),
    ],
)
def test_every_visma_form_parses_to_the_wall_clock_visma_wrote(text, expected):
    assert parse_timestamp(text) == expected


def test_garbage_is_refused_with_the_value():
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_timestamp("yesterday")


def test_query_format_cuts_to_milliseconds_so_no_record_is_skipped():
    assert format_for_query(datetime(2024, 3, 1, 13, 4, 5)) == "2024-03-01 13:04:05"
    assert format_for_query(datetime(2024, 3, 1, 13, 4, 5, 123999)) == "2024-03-01 13:04:05.123"


def test_watermark_is_the_largest_value_returned_not_the_last_or_the_clock():
    records = [
        {"lastModifiedDateTime": "2024-03-02T08:00:00.5"},
        {"lastModifiedDateTime": None},
        {"lastModifiedDateTime": "2024-03-02 09:00:00"},
        {"lastModifiedDateTime": "2024-03-01T23:00:00"},
        {},
    ]
    assert max_modified(records) == "2024-03-02 09:00:00"  # verbatim, as Visma wrote it
    assert max_modified([{}]) is None
    assert max_modified([{"lastModified": "2024-01-01"}], "lastModified") == "2024-01-01"


def test_watermark_never_moves_back_from_the_current_one():
    records = [{"lastModifiedDateTime": "2024-03-01T10:00:00.1234567"}]
    assert max_modified(records, current="2024-03-02T00:00:00") == "2024-03-02T00:00:00"
    assert max_modified(records, current="2024-02-01") == "2024-03-01T10:00:00.1234567"
    assert max_modified([], current="2024-02-01") == "2024-02-01"
