"""Every timestamp form Visma emits, the filter format, and the watermark."""

from __future__ import annotations

import random
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


def _newest_by_parsing_each(records: list[dict], current: str | None) -> str | None:
    """The definition: the largest parsed value, the earliest of equal ones, `current` first."""
    latest, latest_time = current, parse_timestamp(current) if current else None
    for record in records:
        raw = record.get("lastModifiedDateTime")
        if raw and (latest_time is None or parse_timestamp(raw) > latest_time):
            latest, latest_time = raw, parse_timestamp(raw)
    return latest


def test_the_watermark_of_mixed_forms_is_the_one_parsing_every_value_gives():
    # max_modified parses only the largest value of each fixed-width form; equal times written
    # differently (".000" and "", 7 fraction digits cut to 6) must still pick the earliest.
    forms = ["2024-03-01T10:00:0{s}", "2024-03-01T10:00:0{s}.{f:03d}", "2024-03-01 10:00:0{s}",
             "2024-03-01T10:00:0{s}.{f:07d}", "2024-03-01T10:00:0{s}Z", "2024-03-01T10:00:0{s}+01:00",
             "2024-03-01", "2024-03-01T10:00:0{s}.{f}", "2024-03-01T10:00:0{s}.{f:06d}"]
    rnd = random.Random(7)
    for _ in range(5000):
        records = [
            {"lastModifiedDateTime": rnd.choice(forms).format(s=rnd.randint(0, 3), f=rnd.choice([0, 5, 50, 500]))}
            if rnd.random() > 0.1 else {}
            for _ in range(rnd.randint(0, 6))
        ]
        current = rnd.choice([None, "2024-03-01T10:00:02", "2024-03-01T10:00:02.000"])
        assert max_modified(records, current=current) == _newest_by_parsing_each(records, current), records


def test_a_value_that_is_no_timestamp_is_left_out_of_the_watermark():
    records = [{"lastModifiedDateTime": "2025-03-01T10:00:00"}, {"lastModifiedDateTime": "yesterday"},
               {"lastModifiedDateTime": 123}, {"lastModifiedDateTime": {"id": "x"}},
               {"lastModifiedDateTime": "2025-02-30T00:00:00"}]
    assert max_modified(records) == "2025-03-01T10:00:00"


def test_a_time_in_the_future_does_not_move_the_watermark_past_changes_still_to_come():
    records = [{"lastModifiedDateTime": "2025-03-01T10:00:00"},
               {"lastModifiedDateTime": "9999-12-31T23:59:59.999-03:30"},
               {"lastModifiedDateTime": "9999-12-31T23:59:59"}]
    assert max_modified(records, latest_allowed=datetime(2026, 12, 4)) == "2025-03-01T10:00:00"
    assert max_modified(records[:1], current="2025-04-01T00:00:00",
                        latest_allowed=datetime(2026, 12, 4)) == "2025-04-01T00:00:00"
