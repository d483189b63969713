"""AP and AR aging: open documents on an as-of date, bucketed by days past their due date.

A snapshot is what was open on `as_of` according to the balances Visma reports now, so it is
meant to be taken daily and kept (one `snapshot_date` per run), not rebuilt for past days.

Beside the daily snapshots a table keeps close snapshots: when a company closes a period, the
close run takes its snapshot as of the period's last day (`snapshot_kind` "close"), from the
balances at the moment of the close. It never replaces the daily snapshot of that day (taken
with that day's balances), so both stay, told apart by `snapshot_kind`, which is part of the
key: a dashboard shows the month-end aging a controller signed off with
`snapshot_kind = 'close'`, and the daily trend with `snapshot_kind = 'daily'`.
A document with no due date (credit notes often have none) ages from its document date. Days
past due are never negative: a document not yet due is 0 days past due and `current`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import date
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.ap import build_ap_invoices
from visma_tableau_pipeline.marts.ar import build_ar_invoices
from visma_tableau_pipeline.marts.decimals import EXACT
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.schema import (
    DATE,
    INT,
    MONEY,
    TEXT,
    TableSchema,
    columns,
)

# (largest days past due in the bucket, label); None is unbounded. Order is the display order.
AGING_BUCKETS: tuple[tuple[int | None, str], ...] = (
    (0, "current"),
    (30, "1-30"),
    (60, "31-60"),
    (90, "61-90"),
    (None, "over 90"),
)
DAILY, CLOSE = "daily", "close"  # the values of `snapshot_kind`
OPEN_STATUSES = frozenset({"Open"})
DOCUMENT_KEY = ("company_id", "document_type", "reference_number")


def _schema(name: str, party: str) -> TableSchema:
    return TableSchema(name, columns(
        ("company_id", TEXT), ("snapshot_date", DATE), ("snapshot_kind", TEXT), ("document_type", TEXT),
        ("reference_number", TEXT), (f"{party}_number", TEXT),
        (f"{party}_name", TEXT), ("financial_period", TEXT),
        ("document_date", DATE), ("due_date", DATE), ("currency", TEXT),
        ("open_balance_doc_currency", MONEY), ("open_balance_base_currency", MONEY),
        ("days_past_due", INT), ("aging_bucket", TEXT),
        ("aging_bucket_order", INT),
    ))


AP_AGING = _schema("ap_aging", "supplier")
AR_AGING = _schema("ar_aging", "customer")


def open_on(documents: pd.DataFrame, as_of: date) -> pd.Series:
    """Which rows of a subledger document table are open on `as_of`: an open status, a balance,
    and not dated after `as_of` (a document without a date counts as open)."""
    return (
        documents["status"].isin(OPEN_STATUSES)
        & documents["balance_doc_currency"].fillna(0).ne(0)
        & ~(documents["document_date"] > as_of).fillna(False).astype(bool)
    )


def open_documents_query(as_of: date, unchanged: str) -> str:
    """The rows of a document extract `open_on` as of a day (and `unchanged`), as SQL."""
    statuses = ", ".join(f"'{status}'" for status in sorted(OPEN_STATUSES))
    return (f"SELECT * FROM {{extract}} WHERE t.status IN ({statuses}) AND t.balance_doc_currency <> 0 "
            f"AND (t.document_date IS NULL OR t.document_date <= DATE '{as_of.isoformat()}') AND {unchanged}")


def aging(documents: pd.DataFrame, schema: TableSchema, as_of: date, kind: str = DAILY) -> pd.DataFrame:
    """The aging snapshot (of `kind`) of a subledger document table (`ap_invoices` or `ar_invoices`).

    Column-wise: a nightly snapshot ages every open document of every company.
    """
    open_documents = documents[open_on(documents, as_of)].reset_index(drop=True)
    due = pa.Array.from_pandas(open_documents["due_date"].astype(DATE.dtype))
    dated = pa.Array.from_pandas(open_documents["document_date"].astype(DATE.dtype))
    days_between = pc.days_between(pc.coalesce(due, dated), pa.scalar(as_of, pa.date32()))
    days = np.maximum(np.asarray(pc.fill_null(days_between, 0), dtype="int64"), 0)
    uppers = [upper for upper, _ in AGING_BUCKETS if upper is not None]
    position = np.searchsorted(uppers, days, side="left")  # index of the first bucket that holds it
    labels = np.array([label for _, label in AGING_BUCKETS], dtype=object)
    snapshot = open_documents.assign(
        snapshot_date=as_of,
        snapshot_kind=kind,
        open_balance_doc_currency=open_documents["balance_doc_currency"],
        open_balance_base_currency=open_documents["balance_base_currency"],
        days_past_due=days,
        aging_bucket=labels[position] if len(days) else [],
        aging_bucket_order=position + 1,
    )
    return schema.conform(snapshot)


def build_ap_aging(inputs: MartInputs) -> pd.DataFrame:
    """Open AP documents on `inputs.as_of`, signed (supplier credit notes negative)."""
    return ap_aging_of(build_ap_invoices(inputs), inputs.as_of, inputs.snapshot_kind)


def build_ar_aging(inputs: MartInputs) -> pd.DataFrame:
    """Open AR documents on `inputs.as_of`, signed (credit notes negative)."""
    return ar_aging_of(build_ar_invoices(inputs), inputs.as_of, inputs.snapshot_kind)


def ap_aging_of(documents: pd.DataFrame, as_of: date, kind: str = DAILY) -> pd.DataFrame:
    """The AP aging snapshot of `ap_invoices` rows."""
    return aging(documents, AP_AGING, as_of, kind)


def ar_aging_of(documents: pd.DataFrame, as_of: date, kind: str = DAILY) -> pd.DataFrame:
    """The AR aging snapshot of `ar_invoices` rows."""
    return aging(documents, AR_AGING, as_of, kind)


def ap_aging_from(tables: Mapping[str, pd.DataFrame], inputs: MartInputs) -> pd.DataFrame:
    """The AP aging snapshot of the open rows of the `ap_invoices` extract."""
    return ap_aging_of(tables["ap_invoices"], inputs.as_of, inputs.snapshot_kind)


def ar_aging_from(tables: Mapping[str, pd.DataFrame], inputs: MartInputs) -> pd.DataFrame:
    """The AR aging snapshot of the open rows of the `ar_invoices` extract."""
    return ar_aging_of(tables["ar_invoices"], inputs.as_of, inputs.snapshot_kind)


def aging_bucket_totals(snapshot: pd.DataFrame) -> dict[str, Decimal]:
    """Open balance in base currency per bucket, every bucket present (for run metadata)."""
    totals = {label: Decimal("0.00") for _, label in AGING_BUCKETS}
    for label, total in snapshot.groupby("aging_bucket")["open_balance_base_currency"].sum().items():
        totals[str(label)] = Decimal("0.00") if pd.isna(total) else total
    return totals


def _by_document(frame: pd.DataFrame, amount_column: str) -> dict[tuple[Hashable, ...], Decimal]:
    """Amount per document key, exactly (a null amount counts as 0; a repeated key adds up)."""
    amounts: dict[tuple[Hashable, ...], Decimal] = {}
    keys = zip(*(frame[column].tolist() for column in DOCUMENT_KEY), strict=True)
    with localcontext(EXACT):
        for key, value in zip(keys, frame[amount_column].tolist(), strict=True):
            amounts[key] = amounts.get(key, Decimal(0)) + (Decimal(0) if pd.isna(value) else value)
    return amounts


def aging_differences(snapshot: pd.DataFrame, documents: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Documents whose open balance in base currency differs between the aging snapshot of
    `as_of` and the document table it was built from, as open on that day.

    Base currency, because a company's documents come in several currencies and only their
    base-currency balances add up to what the subledger owes. A document on one side only
    counts as 0 on the other. Columns: the document key, `aged_base_currency`,
    `open_base_currency`, `difference_base_currency` (aged minus open); empty when it reconciles.
    """
    aged = _by_document(snapshot[snapshot["snapshot_date"] == as_of], "open_balance_base_currency")
    still_open = _by_document(documents[open_on(documents, as_of)], "balance_base_currency")
    rows = []
    with localcontext(EXACT):
        for key in sorted(aged.keys() | still_open.keys(), key=str):
            aged_amount, open_amount = aged.get(key, Decimal(0)), still_open.get(key, Decimal(0))
            if aged_amount != open_amount:
                rows.append({**dict(zip(DOCUMENT_KEY, key, strict=True)),
                             "aged_base_currency": aged_amount, "open_base_currency": open_amount,
                             "difference_base_currency": aged_amount - open_amount})
    return pd.DataFrame(rows, columns=[*DOCUMENT_KEY, "aged_base_currency", "open_base_currency",
                                       "difference_base_currency"])
