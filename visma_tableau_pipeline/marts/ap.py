"""Accounts payable tables: invoices, invoice lines, vendor spend, suppliers, payments, purchasing."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.columnar import Declined
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
    columns,
)
from visma_tableau_pipeline.marts.signs import AP_NEGATIVE_DOCUMENT_TYPES as AP_NEG
from visma_tableau_pipeline.marts.signs import sign_of, signed
from visma_tableau_pipeline.marts.sources import lenient_period_of, period_of

log = logging.getLogger(__name__)


# SupplierInvoiceDto has `amount` but no `amountInCurrency`. The base-currency total is rebuilt
# from the totals Visma does give in both currencies: the first of these formulas that reproduces
# `amount` in the document currency is applied to the `...InCurrency` totals. When none does, the
# base amount is left empty rather than guessed.
_TOTAL_FORMULAS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("detailTotal", "vatTotal", "roundingDiff"), ("discountTotal",)),  # VAT on top of net lines
    (("detailTotal", "vatTotal", "roundingDiff"), ()),
    (("detailTotal", "roundingDiff"), ("discountTotal",)),  # lines include VAT (gross)
    (("detailTotal", "roundingDiff"), ()),
)


def _total(record: Record, added: tuple[str, ...], subtracted: tuple[str, ...],
           suffix: str) -> Decimal:
    plus = sum((amount(record, name + suffix) or Decimal(0) for name in added), Decimal(0))
    minus = sum((amount(record, name + suffix) or Decimal(0) for name in subtracted), Decimal(0))
    return plus - minus


def ap_document_total_base(record: Record) -> Decimal | None:
    """The document total in base currency, unsigned (see `_TOTAL_FORMULAS`)."""
    total = amount(record, "amount")
    if total is None:
        return None
    for added, subtracted in _TOTAL_FORMULAS:
        if _total(record, added, subtracted, "") == total:
            return _total(record, added, subtracted, "InCurrency")
    log.debug("AP document %s: totals do not add up to amount; base amount left empty",
              text(record, "referenceNumber"))
    return None


def _signed_total_base(record: Record) -> Decimal | None:
    value = ap_document_total_base(record)
    return None if value is None else value * (-1 if text(record, "documentType") in AP_NEG else 1)


_WIDE = pa.decimal128(30, 2)  # room for a formula's sums of NUMERIC(18,2) amounts (a sum widens by a digit)


class _SignedTotalBase(Derived):
    """`_signed_total_base` as a column: each formula's sums taken for every row at once."""

    def __init__(self) -> None:
        names = dict.fromkeys(name for added, subtracted in _TOTAL_FORMULAS for name in (*added, *subtracted))
        super().__init__(_signed_total_base, ("amount", MONEY), ("documentType", TEXT),
                         *((name + suffix, MONEY) for name in names for suffix in ("", "InCurrency")))

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        by_path = {path: value for (path, _), value in zip(self.reads, values, strict=True)}
        zero = pa.scalar(Decimal(0), MONEY_TYPE)

        def total(added: tuple[str, ...], subtracted: tuple[str, ...], suffix: str) -> pa.Array:
            result = pa.array([Decimal(0)] * len(values[0]), _WIDE)
            for name in added:
                result = pc.cast(pc.add(result, pc.fill_null(by_path[name + suffix], zero)), _WIDE)
            for name in subtracted:
                result = pc.cast(pc.subtract(result, pc.fill_null(by_path[name + suffix], zero)), _WIDE)
            return result

        amount_doc = pc.cast(by_path["amount"], _WIDE)
        base, chosen = pa.nulls(len(amount_doc), _WIDE), pa.array([False] * len(amount_doc))
        for added, subtracted in _TOTAL_FORMULAS:
            adds_up = pc.fill_null(pc.equal(total(added, subtracted, ""), amount_doc), False)
            matches = pc.and_(pc.invert(chosen), adds_up)
            base = pc.if_else(matches, total(added, subtracted, "InCurrency"), base)
            chosen = pc.or_(chosen, matches)
        negative = pc.fill_null(pc.is_in(by_path["documentType"], value_set=pa.array(sorted(AP_NEG))), False)
        try:
            return pc.cast(pc.if_else(negative, pc.negate(base), base), MONEY_TYPE)
        except pa.ArrowInvalid:
            raise Declined("a base amount beyond NUMERIC(18,2)") from None


AP_INVOICES = FlatTable("ap_invoices", "supplier_invoices", (
    ("document_type", TEXT, "documentType"),
    ("reference_number", TEXT, "referenceNumber"),
    ("financial_period", TEXT, period_of()),
    ("supplier_number", TEXT, "supplier.number"),
    ("supplier_name", TEXT, "supplier.name"),
    ("document_date", DATE, "date"),
    ("due_date", DATE, "dueDate"),
    ("status", TEXT, "status"),
    ("approval_status", TEXT, "approvalStatus"),
    ("currency", TEXT, "currencyId"),
    ("exchange_rate", RATE, "exchangeRate"),
    ("sign", INT, sign_of(AP_NEG)),
    ("amount_doc_currency", MONEY, signed("amount", AP_NEG)),
    ("amount_base_currency", MONEY, _SignedTotalBase()),
    ("vat_amount_doc_currency", MONEY, signed("vatTotal", AP_NEG)),
    ("vat_amount_base_currency", MONEY, signed("vatTotalInCurrency", AP_NEG)),
    ("balance_doc_currency", MONEY, signed("balance", AP_NEG)),
    ("balance_base_currency", MONEY, signed("balanceInCurrency", AP_NEG)),
    ("supplier_reference", TEXT, "supplierReference"),
    ("description", TEXT, "description"),
    ("branch_number", TEXT, "branchNumber.number"),
    ("payment_method", TEXT, "paymentMethod.id"),
    ("credit_terms", TEXT, "creditTerms.id"),
    ("created_at", TIMESTAMP, "createdDateTime"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))


_LINE_SIGN = {"type_path": "header.documentType"}

AP_INVOICE_LINES = FlatTable("ap_invoice_lines", "supplier_invoices", (
    ("document_type", TEXT, "header.documentType"),
    ("reference_number", TEXT, "header.referenceNumber"),
    ("line_number", INT, "line.lineNumber"),
    ("financial_period", TEXT, period_of("header")),
    ("supplier_number", TEXT, "header.supplier.number"),
    ("supplier_name", TEXT, "header.supplier.name"),
    ("document_date", DATE, "header.date"),
    ("status", TEXT, "header.status"),
    ("currency", TEXT, "header.currencyId"),
    ("account_number", TEXT, "line.account.number"),
    ("account_description", TEXT, "line.account.description"),
    ("subaccount_number", TEXT, "line.subaccount.subaccountNumber"),
    ("inventory_number", TEXT, "line.inventoryNumber"),
    ("description", TEXT, "line.transactionDescription"),
    ("quantity", QUANTITY, "line.quantity"),
    ("uom", TEXT, "line.uom"),
    ("unit_cost_doc_currency", QUANTITY, "line.unitCost"),
    ("sign", INT, sign_of(AP_NEG, **_LINE_SIGN)),
    ("amount_doc_currency", MONEY, signed("line.cost", AP_NEG, **_LINE_SIGN)),
    ("amount_base_currency", MONEY, signed("line.costInCurrency", AP_NEG, **_LINE_SIGN)),
    ("discount_amount_doc_currency", MONEY, signed("line.discountAmount", AP_NEG, **_LINE_SIGN)),
    ("discount_amount_base_currency", MONEY,
     signed("line.discountAmountInCurrency", AP_NEG, **_LINE_SIGN)),
    ("vat_code", TEXT, "line.vatCode.id"),
    ("project_id", TEXT, "line.project.id"),
    ("project_task_id", TEXT, "line.projectTask.id"),
    ("po_number", TEXT, "line.poNumber"),
    ("po_receipt_number", TEXT, "line.poReceiptNbr"),
    ("branch_number", TEXT, "line.branchNumber.number"),
), lines=Lines("invoiceLines"))  # each invoice line with its invoice beside it, as {company_id, header, line}


def build_ap_invoices(inputs: MartInputs) -> pd.DataFrame:
    """AP documents, one row each, amounts signed (see `marts.signs`)."""
    return AP_INVOICES.build(inputs)


def build_ap_invoice_lines(inputs: MartInputs) -> pd.DataFrame:
    """AP document lines with their document's keys, supplier and period."""
    return AP_INVOICE_LINES.build(inputs)


# Documents that count as spend: released bills and adjustments, not prepayments or drafts.
SPEND_DOCUMENT_TYPES = frozenset({"Invoice", "CreditAdj", "DebitAdj"})
SPEND_STATUSES = frozenset({"Open", "Closed"})

VENDOR_SPEND_KEY = ("company_id", "financial_period", "supplier_number", "account_number", "currency")
VENDOR_SPEND = TableSchema("vendor_spend", columns(
    ("company_id", TEXT), ("financial_period", TEXT), ("supplier_number", TEXT), ("supplier_name", TEXT),
    ("account_number", TEXT), ("account_description", TEXT), ("currency", TEXT),
    ("amount_doc_currency", MONEY), ("amount_base_currency", MONEY), ("invoice_line_count", INT),
))


def build_vendor_spend(inputs: MartInputs) -> pd.DataFrame:
    """Spend per company, financial period (the month), supplier, account and document currency.

    Sums the signed AP lines of released invoices and adjustments, so supplier credit notes
    reduce spend. Document-currency sums are per currency (the currency is part of the key).
    A supplier or account renamed between documents shows its greatest name in the group, the
    same however the lines are split up (chunks, extracts); the `suppliers` table has its
    current name.
    """
    return vendor_spend_of_lines(build_ap_invoice_lines(inputs))


def vendor_spend_of_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Vendor spend of `ap_invoice_lines` rows."""
    spend = lines[lines["document_type"].isin(SPEND_DOCUMENT_TYPES)
                  & lines["status"].isin(SPEND_STATUSES)]
    return _spend_totals(spend, invoice_line_count=("line_number", "size"))


def combine_vendor_spend(partial: pd.DataFrame) -> pd.DataFrame:
    """Vendor spend of several chunks of invoices, their rows one after another, as one table."""
    return _spend_totals(partial, invoice_line_count=("invoice_line_count", "sum"))


def vendor_spend_from(tables: Mapping[str, pd.DataFrame], inputs: MartInputs) -> pd.DataFrame:
    """Vendor spend of the sums of the `ap_invoice_lines` extract and of the changed invoices' lines."""
    return combine_vendor_spend(tables["ap_invoice_lines"])


def vendor_spend_query(as_of: date, unchanged: str) -> str:
    """`vendor_spend_of_lines` as SQL over the `ap_invoice_lines` extract (and `unchanged`)."""
    keys = ", ".join(f"t.{column}" for column in VENDOR_SPEND_KEY)
    types = ", ".join(f"'{value}'" for value in sorted(SPEND_DOCUMENT_TYPES))
    statuses = ", ".join(f"'{value}'" for value in sorted(SPEND_STATUSES))
    return (f"SELECT {keys}, MAX(t.supplier_name) AS supplier_name, MAX(t.account_description) AS "
            "account_description, COALESCE(SUM(t.amount_doc_currency), 0) AS amount_doc_currency, "
            "COALESCE(SUM(t.amount_base_currency), 0) AS amount_base_currency, COUNT(*) AS invoice_line_count "
            f"FROM {{extract}} WHERE t.document_type IN ({types}) AND t.status IN ({statuses}) AND {unchanged} "
            f"GROUP BY {keys}")


def _spend_totals(rows: pd.DataFrame, invoice_line_count: tuple[str, str]) -> pd.DataFrame:
    if rows.empty:
        return VENDOR_SPEND.frame([])
    grouped = rows.groupby(list(VENDOR_SPEND_KEY), dropna=False, sort=True).agg(
        supplier_name=("supplier_name", "max"),
        account_description=("account_description", "max"),
        amount_doc_currency=("amount_doc_currency", "sum"),
        amount_base_currency=("amount_base_currency", "sum"),
        invoice_line_count=invoice_line_count,
    )
    return VENDOR_SPEND.conform(grouped.reset_index())


class _BaseIfBaseCurrency(Derived):
    """Supplier payments carry no base amounts; a base-currency payment's amount is its own."""

    def __init__(self, path: str) -> None:
        super().__init__(lambda r: amount(r, path) if field(r, "currency.isBaseCurrency") else None,
                         (path, MONEY), ("currency.isBaseCurrency", BOOL))

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        value, is_base = values
        return pc.if_else(pc.fill_null(is_base, False), value, pa.scalar(None, value.type))


SUPPLIER_PAYMENTS = FlatTable("supplier_payments", "supplier_payments", (
    ("payment_type", TEXT, "type"),
    ("reference_number", TEXT, "refNbr"),
    ("financial_period", TEXT, lenient_period_of("applicationPeriod")),
    ("application_date", DATE, "applicationDate"),
    ("status", TEXT, "status"),
    ("supplier_number", TEXT, "supplier.number"),
    ("supplier_name", TEXT, "supplier.name"),
    ("payment_method", TEXT, "paymentMethod"),
    ("cash_account", TEXT, "cashAccount"),
    ("currency", TEXT, "currency.id"),
    ("amount_doc_currency", MONEY, "paymentAmount"),
    ("amount_base_currency", MONEY, _BaseIfBaseCurrency("paymentAmount")),
    ("applied_amount_doc_currency", MONEY, "appliedAmount"),
    ("unapplied_balance_doc_currency", MONEY, "unappliedBalance"),
    ("balance_doc_currency", MONEY, "balance"),
    ("payment_reference", TEXT, "paymentRef"),
    ("description", TEXT, "description"),
    ("released", BOOL, "released"),
    ("branch", TEXT, "branch"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))

# One row per line of a supplier payment: which document it paid and how much (in the document's
# currency, as Visma shows it: unsigned), in the payment's application period. What
# `period_close` needs to roll a document's balance back to a period end.
SUPPLIER_PAYMENT_LINES = FlatTable("supplier_payment_lines", "supplier_payments", (
    ("payment_type", TEXT, "payment.type"),
    ("reference_number", TEXT, "payment.refNbr"),
    ("line_number", INT, "position"),
    ("financial_period", TEXT, lenient_period_of("payment.applicationPeriod")),
    ("application_date", DATE, "payment.applicationDate"),
    ("payment_status", TEXT, "payment.status"),
    ("supplier_number", TEXT, "payment.supplier.number"),
    ("supplier_name", TEXT, "payment.supplier.name"),
    ("payment_currency", TEXT, "payment.currency.id"),
    ("document_type", TEXT, "line.docType"),
    ("document_reference_number", TEXT, "line.invoiceRefNbr"),
    ("supplier_reference", TEXT, "line.supplierRef"),
    ("document_date", DATE, "line.date"),
    ("document_due_date", DATE, "line.dueDate"),
    ("document_currency", TEXT, "line.currency"),
    ("amount_paid_doc_currency", MONEY, "line.amountPaid"),
    ("cash_discount_taken_doc_currency", MONEY, "line.cashDiscountTaken"),
    ("withholding_tax_doc_currency", MONEY, "line.withholdingTax"),
    ("document_balance_doc_currency", MONEY, "line.balance"),
    ("batch_number", TEXT, "line.batchNumber"),
    ("branch", TEXT, "line.branch"),
    ("description", TEXT, "line.description"),
    ("last_modified_at", TIMESTAMP, "payment.lastModifiedDateTime"),
), lines=Lines("paymentLines", record="payment", item="line", position="position"))

SUPPLIERS = FlatTable("suppliers", "suppliers", (
    ("supplier_number", TEXT, "number"),
    ("supplier_name", TEXT, "name"),
    ("status", TEXT, "status"),
    ("supplier_class", TEXT, "supplierClass.id"),
    ("supplier_class_description", TEXT, "supplierClass.description"),
    ("parent_supplier_number", TEXT, "parentRecord.number"),
    ("credit_terms", TEXT, "creditTerms.id"),
    ("currency", TEXT, "currencyId"),
    ("payment_method", TEXT, "paymentMethod.id"),
    ("country", TEXT, "mainAddress.country.id"),
    ("city", TEXT, "mainAddress.city"),
    ("vat_registration_id", TEXT, "vatRegistrationId"),
    ("corporate_id", TEXT, "corporateId"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))

PURCHASE_ORDERS = FlatTable("purchase_orders", "purchase_orders", (
    ("order_type", TEXT, "orderType"),
    ("order_number", TEXT, "orderNbr"),
    ("order_date", DATE, "date"),
    ("promised_date", DATE, "promisedOn"),
    ("status", TEXT, "status"),
    ("supplier_number", TEXT, "supplier.number"),
    ("supplier_name", TEXT, "supplier.name"),
    ("currency", TEXT, "currency"),
    ("exchange_rate", RATE, "exchangeRate"),
    ("line_total_doc_currency", MONEY, "lineTotal"),
    ("line_total_base_currency", MONEY, "lineTotalInBaseCurrency"),
    ("tax_total_doc_currency", MONEY, "taxTotal"),
    ("tax_total_base_currency", MONEY, "taxTotalInBaseCurrency"),
    ("order_total_doc_currency", MONEY, "orderTotal"),
    ("order_total_base_currency", MONEY, "orderTotalInBaseCurrency"),
    ("open_balance_doc_currency", MONEY, "openBalance"),
    ("open_quantity", QUANTITY, "openQuantity"),
    ("description", TEXT, "description"),
    ("supplier_reference", TEXT, "supplierRef"),
    ("branch_number", TEXT, "branch.number"),
    ("owner_name", TEXT, "owner.name"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))

PURCHASE_RECEIPTS = FlatTable("purchase_receipts", "purchase_receipts", (
    ("receipt_type", TEXT, "receiptType"),
    ("receipt_number", TEXT, "receiptNbr"),
    ("financial_period", TEXT, period_of()),
    ("receipt_date", DATE, "date"),
    ("status", TEXT, "status"),
    ("supplier_number", TEXT, "supplier.number"),
    ("supplier_name", TEXT, "supplier.name"),
    ("warehouse", TEXT, "warehouse.id"),
    ("currency", TEXT, "currency"),
    ("exchange_rate", RATE, "exchangeRate"),
    ("total_quantity", QUANTITY, "totalQty"),
    ("total_amount_doc_currency", MONEY, "totalAmt"),
    ("vat_taxable_total_doc_currency", MONEY, "vatTaxableTotal"),
    ("vat_exempt_total_doc_currency", MONEY, "vatExemptTotal"),
    ("supplier_reference", TEXT, "supplierRef"),
    ("branch_number", TEXT, "branchNumber.number"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))
