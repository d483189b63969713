"""The close sensor's decision: which changes of close flags a read of financial periods shows."""

from __future__ import annotations

from visma_tableau_pipeline.visma.closing import close_changes
from visma_tableau_pipeline.visma.periods import CLOSE_FLAGS


def period(period_id: str, *closed: str) -> dict:
    return {"year": int(period_id[:4]), "period": period_id, "startDate": f"{period_id[:4]}-01-01T00:00:00",
            "endDate": f"{period_id[:4]}-01-31T00:00:00",
            **{flag: module in closed for module, flag in CLOSE_FLAGS.items()}}


EVERY = tuple(CLOSE_FLAGS)


def test_the_first_read_is_the_baseline_and_launches_nothing():
    changes, seen = close_changes("acme", [period("202609", *EVERY), period("202610")], None)
    assert changes == []
    assert seen == {"202609": {"closed": sorted(EVERY), "changes": 0}, "202610": {"closed": [], "changes": 0}}


def test_the_same_flags_again_are_no_change():
    _, seen = close_changes("acme", [period("202610", "AP")], None)
    changes, again = close_changes("acme", [period("202610", "AP")], seen)
    assert changes == [] and again == seen


def test_a_close_a_reopening_and_a_second_close_are_three_numbered_changes():
    _, seen = close_changes("acme", [period("202610")], None)
    closed, seen = close_changes("acme", [period("202610", "AP", "GL")], seen)
    reopened, seen = close_changes("acme", [period("202610", "AP")], seen)
    closed_again, seen = close_changes("acme", [period("202610", "AP", "GL")], seen)
    assert [(c.change, c.closed, c.reopened) for c in closed + reopened + closed_again] == [
        (1, {"AP", "GL"}, set()), (2, set(), {"GL"}), (3, {"GL"}, set())]
    assert closed[0].describe() == "acme 202610: closed in AP, GL (now closed in AP, GL)"
    assert reopened[0].describe() == "acme 202610: reopened in GL (now closed in AP)"
    assert seen["202610"] == {"closed": ["AP", "GL"], "changes": 3}


def test_only_the_period_that_changed_is_a_change_and_a_new_period_starts_open():
    _, seen = close_changes("acme", [period("202609", *EVERY), period("202610")], None)
    changes, _ = close_changes(
        "acme", [period("202609", *EVERY), period("202610", "AR"), period("202611"), period("202612", "GL")], seen)
    assert [(c.period_id, c.change, c.closed) for c in changes] == [("202610", 1, {"AR"}), ("202612", 1, {"GL"})]


def test_a_missing_flag_counts_as_open():
    _, seen = close_changes("acme", [period("202610", "GL")], None)
    record = period("202610", "GL")
    del record["closedInGeneralLedger"]
    [change] = close_changes("acme", [record], seen)[0]
    assert change.reopened == {"GL"}
