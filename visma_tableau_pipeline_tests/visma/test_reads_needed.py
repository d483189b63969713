"""The sensors' decisions without Dagster: which reads cover a tick's changes, merged per company,
and where a probe starts once a read was requested."""

from __future__ import annotations

from datetime import date

from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.change_probe import EntityChanges
from visma_tableau_pipeline.visma.periods import FinancialPeriod
from visma_tableau_pipeline.visma.reads_needed import (
    ReadNeeded,
    merge_reads,
    newest_versions,
    probe_from,
    reads_for_changes,
    reads_for_deletion,
)

FIRST_MONTH, TODAY = date(2025, 1, 1), date(2026, 12, 3)
PERIODS = [FinancialPeriod(f"{y}{m:02}", date(y, m, 1), date(y, m, 28)) for y in (2025, 2026) for m in range(1, 13)]
OLDER, NEWER = "2026-11-01T08:00:01.013", "2026-11-01T08:00:02"


def changed(name: str, periods: set[str], newest: str) -> list[ReadNeeded]:
    return reads_for_changes("acme", entity(name), EntityChanges(name, records=len(periods) or 1, periods=periods,
                                                                 newest=newest), PERIODS, FIRST_MONTH, TODAY)


def test_one_entity_s_changed_months_are_one_read_over_their_range():
    [read] = changed("supplier_invoices", {"202503", "202610", "202606"}, NEWER)
    assert read.months == (date(2025, 3, 1), date(2026, 10, 1))
    assert read.versions == (("supplier_invoices", NEWER),)


def test_a_tick_s_changes_merge_into_one_read_per_company_and_kind_naming_every_newest_change():
    reads = [*changed("supplier_invoices", {"202610"}, OLDER), *changed("supplier_invoices", {"202611"}, NEWER),
             *changed("supplier_payments", {"202605"}, OLDER), *changed("suppliers", set(), NEWER),
             *changed("customers", set(), OLDER)]
    period_read, master_read = merge_reads(reads)
    assert [e.name for e in period_read.entities] == ["supplier_invoices", "supplier_payments"]
    assert period_read.months == (date(2026, 5, 1), date(2026, 11, 1))
    assert dict(period_read.versions) == {"supplier_invoices": NEWER, "supplier_payments": OLDER}
    assert period_read.key == (f"acme:supplier_invoices@{NEWER}+supplier_payments@{OLDER}"
                               ":2026-05-01..2026-11-01")
    assert [e.name for e in master_read.entities] == ["suppliers", "customers"] and master_read.months is None
    assert master_read.key == f"acme:customers@{OLDER}+suppliers@{NEWER}"
    assert {r.key for r in merge_reads(reversed(reads))} == {period_read.key, master_read.key}


def test_companies_are_never_merged_and_reconciling_reads_stay_apart():
    other = reads_for_changes("beta", entity("supplier_invoices"),
                              EntityChanges("supplier_invoices", records=1, periods={"202610"}, newest=NEWER),
                              PERIODS, FIRST_MONTH, TODAY)
    deletions = reads_for_deletion("acme", entity("supplier_invoices"), {"Invoice|1": "202503", "Invoice|2": "202611"},
                                   "n-1", PERIODS, FIRST_MONTH, TODAY)
    merged = merge_reads([*changed("supplier_invoices", {"202610"}, NEWER), *other, *deletions])
    assert sorted((r.company_id, r.full, r.months) for r in merged) == [
        ("acme", False, (date(2026, 10, 1), date(2026, 10, 1))),
        ("acme", True, (date(2025, 3, 1), date(2025, 3, 1))),
        ("acme", True, (date(2026, 11, 1), date(2026, 11, 1))),
        ("beta", False, (date(2026, 10, 1), date(2026, 10, 1))),
    ]


def test_a_probe_starts_after_the_newer_of_its_cursor_and_what_was_requested():
    assert probe_from(OLDER, NEWER) == NEWER
    assert probe_from(NEWER, OLDER) == NEWER
    assert probe_from(None, OLDER) == OLDER and probe_from(OLDER, None) == OLDER
    assert probe_from(None, None) is None
    # compared as timestamps, not as text (Visma writes a space or a 'T')
    assert probe_from("2026-11-01 08:00:01", "2026-11-01T08:00:00.500") == "2026-11-01 08:00:01"


def test_the_newest_version_per_entity_wins_as_a_timestamp():
    assert newest_versions([("a", "2026-11-01T08:00:01.9"), ("a", "2026-11-01 08:00:03"), ("b", OLDER),
                            ("a", "2026-11-01T08:00:02")]) == {"a": "2026-11-01 08:00:03", "b": OLDER}
