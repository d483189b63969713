"""Asset checks an accountant trusts, run on the extracts as written.

Every table: no duplicate keys (Tableau upserts by key, so a duplicate would double a row).
GL: every journal batch balances, in document and base currency. Aging: the snapshot reconciles
to the open balances of the invoice table it was built from. (Freshness of the Visma
entities is their FreshnessPolicy, in defs/visma/assets.py.)
"""

import dagster as dg
import pandas as pd

from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.marts.gl import unbalanced_journal_batches
from visma_tableau_pipeline.marts.hyper import frame_from_hyper, hyper_path
from visma_tableau_pipeline.marts.registry import MART_TABLES, MartTable, duplicate_keys, mart_table
from visma_tableau_pipeline.settings import get_settings


def read_extract(name: str) -> pd.DataFrame | None:
    """The extract `name` as last written, or None before its first materialization."""
    path = hyper_path(get_settings().extracts_dir, name)
    return frame_from_hyper(path) if path.exists() else None


def _missing(name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description=f"{name}.hyper has not been written yet")


def _unique_keys_check(table: MartTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=mart_asset_key(table), name="unique_keys", blocking=True,
        description=f"No two rows share the key ({', '.join(table.key)}).",
    )
    def _check() -> dg.AssetCheckResult:
        frame = read_extract(table.name)
        if frame is None:
            return _missing(table.name)
        duplicates = duplicate_keys(table, frame)
        return dg.AssetCheckResult(
            passed=duplicates.empty,
            metadata={
                "duplicate_rows": len(duplicates),
                "examples": dg.MetadataValue.md(duplicates.head(10).to_markdown(index=False)),
            },
        )

    return _check


@dg.asset_check(
    asset=mart_asset_key(mart_table("gl_transactions")), blocking=True,
    description="Every journal batch balances: debits equal credits, in both currencies.",
)
def journal_batches_balance() -> dg.AssetCheckResult:
    frame = read_extract("gl_transactions")
    if frame is None:
        return _missing("gl_transactions")
    unbalanced = unbalanced_journal_batches(frame)
    return dg.AssetCheckResult(
        passed=unbalanced.empty,
        metadata={
            "unbalanced_batches": len(unbalanced),
            "examples": dg.MetadataValue.md(unbalanced.head(10).astype(str).to_markdown(index=False)),
        },
    )


def _aging_reconciles(aging_name: str, invoices_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=mart_asset_key(mart_table(aging_name)), name="reconciles_to_open_invoices",
        additional_deps=[mart_asset_key(mart_table(invoices_name))],
        description=f"The latest {aging_name} snapshot totals the open balances in {invoices_name}, "
        "per company, to the cent (base currency).",
    )
    def _check() -> dg.AssetCheckResult:
        aging, invoices = read_extract(aging_name), read_extract(invoices_name)
        if aging is None or invoices is None:
            return _missing(aging_name if aging is None else invoices_name)
        latest = aging[aging["snapshot_date"] == aging["snapshot_date"].max()]
        as_of = latest["snapshot_date"].max()
        open_docs = invoices[
            (invoices["status"] == "Open") & (invoices["balance_doc_currency"] != 0)
            & (invoices["document_date"] <= as_of)
        ]
        aged = latest.groupby("company_id")["open_balance_doc_currency"].sum()
        expected = (open_docs["balance_doc_currency"] * open_docs["sign"]).groupby(open_docs["company_id"]).sum()
        differences = {
            str(company): str(aged.get(company, 0) - expected.get(company, 0))
            for company in set(aged.index) | set(expected.index)
        }
        return dg.AssetCheckResult(
            passed=all(pd.Series(aged).sub(pd.Series(expected), fill_value=0) == 0),
            metadata={"snapshot_date": str(as_of), "difference_by_company": differences},
        )

    return _check


mart_checks = [
    *(_unique_keys_check(table) for table in MART_TABLES),
    journal_batches_balance,
    _aging_reconciles("ap_aging", "ap_invoices"),
    _aging_reconciles("ar_aging", "ar_invoices"),
]
