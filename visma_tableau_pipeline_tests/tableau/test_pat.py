"""PAT expiry tracking: the recorded last use and what it means on Cloud and on Server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from visma_tableau_pipeline.tableau.pat import PatUsageFile, pat_status

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def test_last_use_is_kept_per_pat_and_never_moves_back(tmp_path: Path) -> None:
    usage = PatUsageFile.under(tmp_path / "home")
    assert usage.last_used("ci") is None
    usage.record_use("ci", NOW)
    usage.record_use("other", NOW - timedelta(days=3))
    usage.record_use("ci", NOW - timedelta(days=1))  # a late writer with an older time
    reopened = PatUsageFile(tmp_path / "home" / "tableau-pat-usage.json")
    assert reopened.last_used("ci") == NOW
    assert reopened.last_used("other") == NOW - timedelta(days=3)


def test_an_unreadable_usage_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.write_text("{not json", encoding="utf-8")
    usage = PatUsageFile(path)
    assert usage.last_used("ci") is None
    usage.record_use("ci", NOW)
    assert usage.last_used("ci") == NOW


@pytest.mark.parametrize("days_unused, state", [(1, "ok"), (11, "ok"), (12.5, "warn"),
                                                (15, "expired"), (40, "expired")])
def test_cloud_pat_expires_after_15_days_unused(days_unused: float, state: str) -> None:
    status = pat_status("ci", "cloud", now=NOW, last_used=NOW - timedelta(days=days_unused))
    assert status.state == state
    assert status.expires_at == NOW - timedelta(days=days_unused) + timedelta(days=15)
    assert "'ci'" in status.message and "15 days unused" in status.message


def test_cloud_pat_without_recorded_use_is_unknown() -> None:
    assert pat_status("ci", "cloud", now=NOW, last_used=None).state == "unknown"


def test_server_pat_follows_its_lifetime_from_creation() -> None:
    created = date(2024, 6, 20)
    status = pat_status("ci", "server", now=NOW, last_used=NOW, created_on=created, warn_days=7)
    assert status.state == "warn" and status.days_left == pytest.approx(4.5)
    assert "2025-06-20" in status.message
    assert pat_status("ci", "server", now=NOW, last_used=None, created_on=created).state == "ok"
    assert pat_status("ci", "server", now=NOW, last_used=NOW, created_on=created,
                      lifetime_days=300).state == "expired"
    assert pat_status("ci", "server", now=NOW, last_used=NOW).state == "unknown"
