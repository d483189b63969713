"""The dashboard tables as data: name → builder, source entities, key, partition column.

The Dagster layer iterates over `MART_TABLES` to make one asset per table (its upstream assets
are `sources`), and the publisher uses `key` to upsert and delete rows in Tableau and
`partition_column` to replace one period (or one aging snapshot) at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from visma_tableau_pipeline.marts import aging, ap, ar, cash_flow, gl, people, period_close, statements
from visma_tableau_pipeline.marts.inputs import MartInputs


@dataclass(frozen=True)
class ExtractRead:
    """The rows a derived table needs of another table's extract (see `FromExtracts`)."""

    table: str
    # (as_of, condition leaving out the changed records' rows) -> SELECT over `{extract}` (alias t)
    query: Callable[[date, str], str]
    # the changed records' rows of `table` -> rows like the query's (None: as they are)
    changed: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass(frozen=True)
class FromExtracts:
    """How a table is derived from other tables' extracts rather than from every record.

    An aging snapshot needs the open documents, vendor spend sums of invoice lines, cash flow the
    payments and the documents due, the close the documents, the payment lines and the GL
    balances; the document, line, payment and balance tables' extracts hold them,
    kept current by the records that changed. Hyper reads those rows (or sums the lines) there,
    leaving out the rows of records written since that extract was built, which come from the
    records instead. The cost follows what is read, not the whole ledger; the result equals a
    build from the records (`visma_tableau_pipeline_tests/delivery/test_tables_follow_changes.py`).
    """

    reads: tuple[ExtractRead, ...]
    build: Callable[[Mapping[str, pd.DataFrame], MartInputs], pd.DataFrame]  # rows by table, lookups -> table
    lookups: tuple[str, ...] = ()  # entities read whole from the store (small ones: financial periods)


@dataclass(frozen=True)
class MartTable:
    """One dashboard table (one Tableau data source)."""

    name: str
    build: Callable[[MartInputs], pd.DataFrame]
    sources: tuple[str, ...]  # catalogue entity names it reads
    key: tuple[str, ...]  # columns that identify a row; text key columns are never null
    partition_column: str | None  # the column a partition replaces (YYYYPP period, snapshot)
    description: str
    # Entities each of whose records makes some rows, and nothing else does: the key starts with
    # company_id and that record's catalogue key (its group), so the rows of changed records can
    # be rebuilt alone. The other sources are lookups (accounts, dimensions): when one of them
    # changes, the whole table is compared. Empty for tables that aggregate (aging, spend).
    rows_from: tuple[str, ...] = ()
    # For tables without `rows_from`: entities a whole build may take a chunk of records at a
    # time. Each record makes its rows alone (an aging snapshot's rows are per document, keyed
    # by the snapshot day first), or the chunks' rows are merged by `combine` (spend sums).
    per_record: tuple[str, ...] = ()
    combine: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    reads_as_of: bool = False  # its rows depend on the as-of day (aging, expected cash), not only on records
    from_extracts: FromExtracts | None = None

    @property
    def lookups(self) -> tuple[str, ...]:
        """Sources read whole to build any row (names, segment descriptions)."""
        return tuple(source for source in self.sources if source not in self.rows_from)

    @property
    def chunked_sources(self) -> tuple[str, ...]:
        """Sources a whole build may take a chunk of records at a time (the rest whole)."""
        return self.rows_from or self.per_record


_PERIOD = "financial_period"
_DOC_KEY = ("company_id", "document_type", "reference_number")
_PAYMENT_LINE_KEY = ("company_id", "payment_type", "reference_number", "line_number")
_SNAPSHOT_KEY = ("company_id", "snapshot_date", "snapshot_kind", "document_type", "reference_number")

MART_TABLES: tuple[MartTable, ...] = (
    MartTable("ap_invoices", ap.build_ap_invoices, ("supplier_invoices",), _DOC_KEY, _PERIOD,
              "AP invoices and adjustments with amounts and balances in document and base "
              "currency; supplier credit notes negative.",
              rows_from=("supplier_invoices",)),
    MartTable("ap_invoice_lines", ap.build_ap_invoice_lines, ("supplier_invoices",),
              (*_DOC_KEY, "line_number"), _PERIOD,
              "AP document lines with account, subaccount, project and signed amounts.",
              rows_from=("supplier_invoices",)),
    MartTable("ar_invoices", ar.build_ar_invoices,
              ("customer_invoices", "customer_credit_notes"), _DOC_KEY, _PERIOD,
              "AR invoices and credit notes; credit notes negative.",
              rows_from=("customer_invoices", "customer_credit_notes")),
    MartTable("ap_aging", aging.build_ap_aging, ("supplier_invoices",), _SNAPSHOT_KEY, "snapshot_date",
              "Open AP documents per snapshot (daily, and as of the last day of each closed "
              "period), bucketed by days past due.",
              per_record=("supplier_invoices",), reads_as_of=True,
              from_extracts=FromExtracts((ExtractRead("ap_invoices", aging.open_documents_query),),
                                         aging.ap_aging_from)),
    MartTable("ar_aging", aging.build_ar_aging, ("customer_invoices", "customer_credit_notes"),
              _SNAPSHOT_KEY, "snapshot_date",
              "Open AR documents per snapshot (daily, and as of the last day of each closed "
              "period), bucketed by days past due.",
              per_record=("customer_invoices", "customer_credit_notes"), reads_as_of=True,
              from_extracts=FromExtracts((ExtractRead("ar_invoices", aging.open_documents_query),),
                                         aging.ar_aging_from)),
    MartTable("gl_transactions", gl.build_gl_transactions,
              ("journal_transactions", "gl_accounts", "dimensions", "subaccounts"),
              ("company_id", "module", "batch_number", "line_number"), _PERIOD,
              "GL journal lines with account, one column per subaccount segment, and debit, "
              "credit and net amounts in document and base currency.",
              rows_from=("journal_transactions",)),
    MartTable("gl_balances", gl.build_gl_balances, ("gl_balances", "dimensions", "subaccounts"),
              ("company_id", "branch_number", "ledger_id", "balance_type", "financial_period",
               "account_number", "subaccount_number"), _PERIOD,
              "GL balances per period, account and subaccount, in document and base currency.",
              rows_from=("gl_balances",)),
    MartTable("gl_accounts", gl.GL_ACCOUNTS.build, ("gl_accounts",),
              ("company_id", "account_number"), None, "The chart of accounts.",
              rows_from=("gl_accounts",)),
    MartTable("dimensions", gl.build_dimensions, ("dimensions",),
              ("company_id", "dimension_id", "segment_id", "segment_value"), None,
              "Dimension segment values with descriptions.",
              rows_from=("dimensions",)),
    MartTable("suppliers", ap.SUPPLIERS.build, ("suppliers",),
              ("company_id", "supplier_number"), None, "Suppliers.",
              rows_from=("suppliers",)),
    MartTable("customers", ar.CUSTOMERS.build, ("customers",),
              ("company_id", "customer_number"), None, "Customers.",
              rows_from=("customers",)),
    MartTable("purchase_orders", ap.PURCHASE_ORDERS.build, ("purchase_orders",),
              ("company_id", "order_type", "order_number"), None,
              "Purchase orders with totals in document and base currency.",
              rows_from=("purchase_orders",)),
    MartTable("purchase_receipts", ap.PURCHASE_RECEIPTS.build, ("purchase_receipts",),
              ("company_id", "receipt_type", "receipt_number"), _PERIOD, "Purchase receipts.",
              rows_from=("purchase_receipts",)),
    MartTable("supplier_payments", ap.SUPPLIER_PAYMENTS.build, ("supplier_payments",),
              ("company_id", "payment_type", "reference_number"), _PERIOD,
              "Payments to suppliers.",
              rows_from=("supplier_payments",)),
    MartTable("customer_payments", ar.CUSTOMER_PAYMENTS.build, ("customer_payments",),
              ("company_id", "payment_type", "reference_number"), _PERIOD,
              "Payments from customers.",
              rows_from=("customer_payments",)),
    MartTable("supplier_payment_lines", ap.SUPPLIER_PAYMENT_LINES.build, ("supplier_payments",),
              _PAYMENT_LINE_KEY, _PERIOD,
              "Which documents each supplier payment settled: one row per payment line, with the "
              "payment (type, number, application date and period, supplier) and the document it paid "
              "(type and reference number as in ap_invoices, its date, due date and currency), the "
              "amount paid, cash discount taken and withholding tax in the document's currency "
              "(unsigned, as Visma shows them), and the document's balance after the payment. "
              "financial_period is the payment's application period.",
              rows_from=("supplier_payments",)),
    MartTable("customer_payment_lines", ar.CUSTOMER_PAYMENT_LINES.build, ("customer_payments",),
              _PAYMENT_LINE_KEY, _PERIOD,
              "Which invoices and notes each customer payment settled: one row per payment line, with "
              "the payment (type, number, application date and period, customer) and the document it "
              "paid (type and reference number as in ar_invoices, its date, due date and currency), the "
              "amount paid, cash discount taken and balance written off in the document's currency "
              "(unsigned, as Visma shows them), and the document's balance after the payment. "
              "financial_period is the payment's application period.",
              rows_from=("customer_payments",)),
    MartTable("employees", people.EMPLOYEES.build, ("employees",),
              ("company_id", "employee_number"), None, "Employees.",
              rows_from=("employees",)),
    MartTable("timecards", people.build_timecards, ("time_cards",),
              ("company_id", "reference_number", "line_number"), None,
              "Time card lines: minutes per employee, week, earning type and project.",
              rows_from=("time_cards",)),
    MartTable("vendor_spend", ap.build_vendor_spend, ("supplier_invoices",), ap.VENDOR_SPEND_KEY,
              _PERIOD, "AP spend per company, period, supplier, account and currency, in "
              "document and base currency.",
              per_record=("supplier_invoices",), combine=ap.combine_vendor_spend,
              from_extracts=FromExtracts(
                  (ExtractRead("ap_invoice_lines", ap.vendor_spend_query, ap.vendor_spend_of_lines),),
                  ap.vendor_spend_from)),
    MartTable("period_close", period_close.build_period_close,
              ("gl_balances", "gl_accounts", "financial_periods", "supplier_invoices", "supplier_payments",
               "customer_invoices", "customer_credit_notes", "customer_payments"),
              ("company_id", "financial_period", "account_number"), _PERIOD,
              "The month-end close per company, period and account, in base currency: the trial "
              "balance (opening balance, debits, credits, closing balance) and, on the AP and AR "
              "control accounts, the subledger's open balance at the period end, the control "
              "account's balance and their difference.",
              from_extracts=FromExtracts(
                  (ExtractRead("gl_balances", period_close.actual_balances_query, period_close.actual_balances),
                   ExtractRead("ap_invoices", period_close.documents_query, period_close.document_columns),
                   ExtractRead("ar_invoices", period_close.documents_query, period_close.document_columns),
                   ExtractRead("supplier_payment_lines", period_close.payment_lines_query,
                               period_close.payment_line_columns),
                   ExtractRead("customer_payment_lines", period_close.payment_lines_query,
                               period_close.payment_line_columns)),
                  period_close.period_close_of, lookups=("gl_accounts", "financial_periods"))),
    MartTable("cash_flow", cash_flow.build_cash_flow,
              ("customer_payments", "supplier_payments", "customer_invoices", "customer_credit_notes",
               "supplier_invoices", "financial_periods"),
              cash_flow.KEY, _PERIOD,
              "Cash per company, day and currency (document and base): actual cash received (customer "
              "payments) and paid (supplier payments) with bank account and payment method, and cash "
              "expected from open invoices by due date for the next 13 weeks (cash_kind expected; "
              "overdue ones on the as-of day). Cash in positive, cash out negative: a running balance "
              "is a plain sum.",
              reads_as_of=True, from_extracts=FromExtracts(
                  (ExtractRead("customer_payments", cash_flow.payments_query),
                   ExtractRead("supplier_payments", cash_flow.payments_query),
                   ExtractRead("ar_invoices", cash_flow.documents_due_query),
                   ExtractRead("ap_invoices", cash_flow.documents_due_query)),
                  cash_flow.cash_flow_of, lookups=("financial_periods",))),
    MartTable("profit_and_loss", statements.build_profit_and_loss, ("gl_balances", "gl_accounts"),
              ("company_id", "financial_period", "account_number"), _PERIOD,
              "Profit and loss per company, financial period and income or expense account, in base "
              "currency: the period's amount, year to date and the same period last year, with the "
              "account's type and class. Sign rule: every amount is credits minus debits, so income is "
              "positive, costs are negative, and a period's rows add up to its result."),
    MartTable("balance_sheet", statements.build_balance_sheet,
              ("gl_balances", "gl_accounts", "financial_periods"),
              ("company_id", "financial_period", "line_type", "account_number"), _PERIOD,
              "Balance sheet per company, period end and asset or liability account (Visma types "
              "equity as Liability; its class says equity): the closing balance in base currency, "
              "assets debit positive, liabilities and equity credit positive, and the year's result "
              "to date as a line of its own, so that assets = liabilities + equity + result."),
)

BY_NAME: dict[str, MartTable] = {table.name: table for table in MART_TABLES}


def mart_table(name: str) -> MartTable:
    """The registry entry for `name`, or a KeyError that lists the known names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown dashboard table {name!r}; known: {', '.join(BY_NAME)}") from None


def tables_read(table: MartTable) -> tuple[str, ...]:
    """The tables whose extracts `table` is derived from (`FromExtracts`): built before it, by
    `vtp sync` (`MART_TABLES` lists them first) and in the asset graph (its deps)."""
    return tuple(read.table for read in table.from_extracts.reads) if table.from_extracts else ()


def build_mart(name: str, records: Mapping[str, Iterable[dict[str, Any]]],
               as_of: date) -> pd.DataFrame:
    """Build one dashboard table from raw records by entity name (see `MartInputs`)."""
    return build_with(mart_table(name), MartInputs(records, as_of))


def build_with(table: MartTable, inputs: MartInputs) -> pd.DataFrame:
    """Build `table` (see `with_keys_filled`)."""
    return with_keys_filled(table, table.build(inputs))


def with_keys_filled(table: MartTable, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of `table` with null text keys as "", so that Tableau's key conditions can match them."""
    for column in table.key:
        if isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = frame[column].fillna("")
    return frame


def duplicate_keys(table: MartTable, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of `frame` whose key occurs more than once (empty when the key holds)."""
    return frame[frame.duplicated(list(table.key), keep=False)]
