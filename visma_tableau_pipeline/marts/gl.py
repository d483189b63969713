"""General ledger tables: journal lines, balances, accounts, dimensions.

`gl_transactions` and `gl_balances` carry one text column per subaccount segment
(`segment_department`, ...), derived from the company's SUBACCOUNT dimension; see
`marts.segments`. Their column list is therefore the declared one plus those segment columns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.columnar import Declined, by_distinct
from visma_tableau_pipeline.marts.decimals import EXACT, decimal_totals
from visma_tableau_pipeline.marts.fields import amount, field, text
from visma_tableau_pipeline.marts.flat import Derived, FlatTable, Lines
from visma_tableau_pipeline.marts.inputs import MartInputs, Record
from visma_tableau_pipeline.marts.schema import (
    BOOL,
    DATE,
    INT,
    MONEY,
    MONEY_TYPE,
    QUANTITY,
    RATE,
    TEXT,
    TIMESTAMP,
    Kind,
    TableSchema,
)
from visma_tableau_pipeline.marts.segments import (
    SEGMENTS_TYPE,
    SUBACCOUNT_DIMENSION_ID,
    SegmentLayout,
    segment_column_name,
    segment_columns,
)
from visma_tableau_pipeline.marts.sources import FirstText, period_of

log = logging.getLogger(__name__)


class _Net(Derived):
    """Debit minus credit, the sign convention of the GL (credits negative)."""

    def __init__(self, debit: str, credit: str) -> None:
        def get(record: Record) -> Decimal | None:
            debit_value, credit_value = amount(record, debit), amount(record, credit)
            if debit_value is None and credit_value is None:
                return None
            return (debit_value or Decimal(0)) - (credit_value or Decimal(0))

        super().__init__(get, (debit, MONEY), (credit, MONEY))

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        debit, credit = values
        zero = pa.scalar(Decimal(0), MONEY_TYPE)
        net = pc.subtract(pc.fill_null(debit, zero), pc.fill_null(credit, zero))
        net = pc.if_else(pc.and_(pc.is_null(debit), pc.is_null(credit)), pa.scalar(None, net.type), net)
        try:
            return pc.cast(net, MONEY_TYPE)
        except pa.ArrowInvalid:
            raise Declined("a net amount beyond NUMERIC(18,2)") from None


class _AccountField(Derived):
    """A field of a journal line's account, found by (company, account number) in the
    builder's `accounts` (`_account_lookup`), as `_journal_lines` finds it for each line."""

    def __init__(self, name: str) -> None:
        super().__init__(lambda r: text(r, "account." + name), ("company_id", TEXT), ("line.accountNumber", TEXT))
        self.name = name

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        accounts: Mapping[tuple[str, str], Record] = context["accounts"]

        def found(row: tuple[Any, ...]) -> str | None:
            company, number = row
            if number is None and ((company, "") in accounts or (company, "None") in accounts):
                raise Declined("a line without an account number, and an account keyed as one")
            return text(accounts.get((company, number)) or {}, self.name)

        return by_distinct(values, found, pa.string())


def _account_lookup(inputs: MartInputs) -> dict[tuple[str, str], Record]:
    return {(str(a.get("company_id", "")), str(a.get("accountCD", ""))): a
            for a in inputs.of("gl_accounts")}


def _journal_lines(inputs: MartInputs) -> Iterator[Record]:
    """Each journal line with its batch and account, as {company_id, batch, line, account}."""
    accounts = _account_lookup(inputs)
    for batch in inputs.of("journal_transactions"):
        company = str(batch.get("company_id", ""))
        for line in batch.get("journalTransactionLines") or []:
            account = accounts.get((company, str(line.get("accountNumber", "")))) or {}
            yield {"company_id": company, "batch": batch, "line": line, "account": account}


_SUBACCOUNT_NUMBER, _SEGMENTS = "line.subaccount.subaccountNumber", "line.subaccount.segments"


GL_TRANSACTIONS = FlatTable("gl_transactions", "journal_transactions", (
    ("module", TEXT, "batch.module"),
    ("batch_number", TEXT, "batch.batchNumber"),
    ("line_number", INT, "line.lineNumber"),
    ("financial_period", TEXT, period_of("batch")),
    ("transaction_date", DATE, "batch.transactionDate"),
    ("batch_status", TEXT, "batch.status"),
    ("ledger", TEXT, "batch.ledger"),
    ("branch", TEXT, FirstText("line.branch", "batch.branch")),
    ("account_number", TEXT, "line.accountNumber"),
    ("account_description", TEXT, _AccountField("description")),
    ("account_type", TEXT, _AccountField("type")),
    ("subaccount_number", TEXT, "line.subaccount.subaccountNumber"),
    ("description", TEXT, FirstText("line.transactionDescription", "line.description")),
    ("reference_number", TEXT, "line.referenceNumber"),
    ("customer_supplier", TEXT, "line.customerSupplier"),
    ("currency", TEXT, "batch.currencyId"),
    ("exchange_rate", RATE, "batch.exchangeRate"),
    ("debit_amount_doc_currency", MONEY, "line.debitAmount"),
    ("credit_amount_doc_currency", MONEY, "line.creditAmount"),
    ("amount_doc_currency", MONEY, _Net("line.debitAmount", "line.creditAmount")),
    ("debit_amount_base_currency", MONEY, "line.debitAmountInCurrency"),
    ("credit_amount_base_currency", MONEY, "line.creditAmountInCurrency"),
    ("amount_base_currency", MONEY, _Net("line.debitAmountInCurrency", "line.creditAmountInCurrency")),
    ("quantity", QUANTITY, "line.quantity"),
    ("project_id", TEXT, "line.project.id"),
    ("project_task_id", TEXT, "line.projectTask.id"),
    ("vat_code", TEXT, "line.vatCode.id"),
    ("batch_description", TEXT, "batch.description"),
    ("last_modified_at", TIMESTAMP, "batch.lastModifiedDateTime"),
), lines=Lines("journalTransactionLines", record="batch"),
    also_reads=((_SUBACCOUNT_NUMBER, TEXT), (_SEGMENTS, SEGMENTS_TYPE)))


def _with_segments(table: FlatTable, records: list[Record], layout: SegmentLayout,
                   subaccount_path: str) -> pd.DataFrame:
    """Rows of `table` plus one column per subaccount segment."""
    for record in records:
        layout.observe(record["company_id"], field(record, subaccount_path))
    schema: TableSchema = table.schema.with_text_columns(layout.column_names)
    rows = []
    for record, row in zip(records, table.rows(records), strict=True):
        row.update(layout.values(record["company_id"], field(record, subaccount_path)))
        rows.append(row)
    return schema.frame(rows)


def _with_segments_columnwise(table: FlatTable, inputs: MartInputs, layout: SegmentLayout,
                              number: str, segments: str | None = None,
                              context: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """`_with_segments` column-wise (`Declined` as `FlatTable.columnwise_arrays` is): the
    subaccount is an object whose number and segments are read at `number` and `segments`, or
    without `segments` a subaccount number at `number`."""
    arrays, size = table.columnwise_arrays(inputs, table.entity, context)
    if size:
        arrays.update(segment_columns(layout, arrays["company_id"], arrays[number],
                                      arrays[segments] if segments else None))
    return table.schema.with_text_columns(layout.column_names).frame_from_arrays(arrays, size)


def build_gl_transactions(inputs: MartInputs) -> pd.DataFrame:
    """Journal lines with account, subaccount segments, and debit/credit in both currencies."""
    layout = SegmentLayout.from_records(inputs.of("dimensions"), inputs.of("subaccounts"))
    try:
        return _with_segments_columnwise(GL_TRANSACTIONS, inputs, layout, _SUBACCOUNT_NUMBER, _SEGMENTS,
                                         {"accounts": _account_lookup(inputs)})
    except Declined as reason:
        log.info("table gl_transactions: built record by record, because: %s", reason)
        return build_gl_transactions_record_by_record(inputs)


def build_gl_transactions_record_by_record(inputs: MartInputs) -> pd.DataFrame:
    """`build_gl_transactions` by the per-record getters, the reference of the column-wise build."""
    layout = SegmentLayout.from_records(inputs.of("dimensions"), inputs.of("subaccounts"))
    return _with_segments(GL_TRANSACTIONS, list(_journal_lines(inputs)), layout, "line.subaccount")


GL_BALANCES = FlatTable("gl_balances", "gl_balances", (
    ("branch_number", TEXT, "branch.number"),
    ("ledger_id", TEXT, "ledger.id"),
    ("balance_type", TEXT, "balanceType"),
    ("financial_period", TEXT, "financialPeriod"),
    ("account_number", TEXT, "account.number"),
    ("account_description", TEXT, "account.description"),
    ("account_type", TEXT, "account.type"),
    ("subaccount_number", TEXT, "subAccountCd"),
    ("currency", TEXT, "currencyId"),
    ("beginning_balance_doc_currency", MONEY, "beginningBalance"),
    ("period_debit_doc_currency", MONEY, "periodToDateDebit"),
    ("period_credit_doc_currency", MONEY, "periodToDateCredit"),
    ("ending_balance_doc_currency", MONEY, "yearToDateBalance"),
    ("beginning_balance_base_currency", MONEY, "beginningBalanceInCurrency"),
    ("period_debit_base_currency", MONEY, "periodToDateDebitInCurrency"),
    ("period_credit_base_currency", MONEY, "periodToDateCreditInCurrency"),
    ("ending_balance_base_currency", MONEY, "yearToDateBalanceInCurrency"),
    ("year_closed", BOOL, "yearClosed"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
), also_reads=(("subAccountCd", TEXT),))


def build_gl_balances(inputs: MartInputs) -> pd.DataFrame:
    """GL balances per branch, ledger, balance type, period, account and subaccount."""
    layout = SegmentLayout.from_records(inputs.of("dimensions"), inputs.of("subaccounts"))
    try:
        return _with_segments_columnwise(GL_BALANCES, inputs, layout, "subAccountCd")
    except Declined as reason:
        log.info("table gl_balances: built record by record, because: %s", reason)
        return build_gl_balances_record_by_record(inputs)


def build_gl_balances_record_by_record(inputs: MartInputs) -> pd.DataFrame:
    """`build_gl_balances` by the per-record getters, the reference of the column-wise build."""
    layout = SegmentLayout.from_records(inputs.of("dimensions"), inputs.of("subaccounts"))
    return _with_segments(GL_BALANCES, inputs.of("gl_balances"), layout, "subAccountCd")


GL_ACCOUNTS = FlatTable("gl_accounts", "gl_accounts", (
    ("account_number", TEXT, "accountCD"),
    ("account_id", INT, "accountID"),
    ("account_description", TEXT, "description"),
    ("account_type", TEXT, "type"),
    ("account_class", TEXT, "accountClass"),
    ("account_class_description", TEXT, "accountClassDescription"),
    ("account_group", TEXT, "accountGroupCD"),
    ("active", BOOL, "active"),
    ("currency", TEXT, "currency"),
    ("cash_account", BOOL, "cashAccount"),
    ("control_account_module", TEXT, "controlAccountModule"),
    ("external_code_1", TEXT, "externalCode1Info.number"),
    ("external_code_2", TEXT, "externalCode2Info.number"),
    ("analysis_code", TEXT, "analisysCodeInfo.number"),  # sic: the API's own spelling
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))


def _segment_values(inputs: MartInputs) -> Iterator[Record]:
    """Each segment value with its segment and dimension, as {company_id, dimension, segment, value}."""
    for dimension in inputs.of("dimensions"):
        for segment in dimension.get("segments") or []:
            for value in segment.get("segmentValues") or []:
                yield {"company_id": dimension.get("company_id"), "dimension": dimension,
                       "segment": segment, "value": value}


def _segment_column(record: Record) -> str | None:
    """The gl_transactions column that holds this segment, for SUBACCOUNT segments."""
    if str(text(record, "dimension.id") or "").upper() != SUBACCOUNT_DIMENSION_ID:
        return None
    return segment_column_name(text(record, "segment.description"),
                               int(record["segment"].get("segmentId") or 0))


DIMENSIONS = FlatTable("dimensions", "dimensions", (
    ("dimension_id", TEXT, "dimension.id"),
    ("dimension_description", TEXT, "dimension.description"),
    ("segment_id", INT, "segment.segmentId"),
    ("segment_description", TEXT, "segment.description"),
    ("segment_length", INT, "segment.length"),
    ("segment_value", TEXT, "value.valueId"),
    ("segment_value_description", TEXT, "value.description"),
    ("active", BOOL, "value.active"),
    ("segment_column", TEXT, _segment_column),
    ("last_modified_at", TIMESTAMP, "value.lastModified"),
))


def build_dimensions(inputs: MartInputs) -> pd.DataFrame:
    """Dimension segment values with descriptions, one row per value."""
    return DIMENSIONS.schema.frame(DIMENSIONS.rows(_segment_values(inputs)))


def unbalanced_journal_batches(transactions: pd.DataFrame) -> pd.DataFrame:
    """Batches of `gl_transactions` whose debits and credits differ, in either currency.

    An accountant's first check: an empty result means every batch balances. Per batch, the
    debit and credit totals and `difference_doc_currency` / `difference_base_currency` (debits
    minus credits), as exact Python Decimals (see `marts.decimals`).
    """
    totals = decimal_totals(transactions, ["company_id", "module", "batch_number"], [
        "debit_amount_doc_currency", "credit_amount_doc_currency",
        "debit_amount_base_currency", "credit_amount_base_currency",
    ]).rename(columns=lambda column: column.replace("_amount", ""))
    with localcontext(EXACT):
        for currency in ("doc_currency", "base_currency"):
            totals[f"difference_{currency}"] = totals[f"debit_{currency}"] - totals[f"credit_{currency}"]
    unbalanced = (totals["difference_doc_currency"] != 0) | (totals["difference_base_currency"] != 0)
    return totals[unbalanced].reset_index(drop=True)
