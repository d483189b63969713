"""Which periods the nightly run reconciles: those some ledger of Visma has not closed."""

from __future__ import annotations

from visma_tableau_pipeline.visma.periods import open_period_ids
from visma_tableau_pipeline.visma.plan import read_in_full

LEDGERS = ("closedInSupplierLedger", "closedInCustomerLedger", "closedInGeneralLedger")


def period(number: int, **closed: bool) -> dict:
    return {"year": 2026, "period": f"{number:02d}", "startDate": f"2026-{number:02d}-01T00:00:00",
            "endDate": f"2026-{number:02d}-28T00:00:00", **closed}


def test_a_period_is_open_until_every_ledger_this_project_reads_has_closed_it():
    every = dict.fromkeys(LEDGERS, True)
    periods = [
        period(1, **every, closedInFixedAssets=False),  # a module this project does not read
        period(2, **{**every, "closedInGeneralLedger": False}),  # AP and AR closed, the GL not yet
        period(3, **dict.fromkeys(LEDGERS, False)),
        period(4, closedInSupplierLedger=True),  # flags Visma left out count as open
    ]
    assert open_period_ids(periods) == {"202602", "202603", "202604"}


def test_the_nightly_read_is_full_for_master_data_and_open_periods_only():
    nightly = {"full": False, "open_periods_in_full": True, "open_periods": {"202611"}}
    assert read_in_full(None, **nightly)
    assert read_in_full("202611", **nightly)
    assert not read_in_full("202603", **nightly)
    assert read_in_full("202603", **{**nightly, "full": True})  # the weekly read
    assert not read_in_full(None, full=False, open_periods_in_full=False, open_periods={"202611"})
