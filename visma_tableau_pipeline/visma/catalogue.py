"""The one catalogue of Visma.net ERP entities this project reads.

The client, the sandbox, the Dagster assets and the tests all take their facts from here: the
endpoint, the record key, how the endpoint pages, how it takes a delta and a period filter, and
which OpenAPI schema its items follow. Facts are from Visma's OpenAPI document (2025-04-24) and
../shared/reference/API-FACTS.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Paging(str, Enum):
    """How an endpoint splits its list."""

    PAGED = "paged"  # pageNumber + pageSize, metadata {totalCount, maxPageSize} on every item
    NONE = "none"  # one response holds the whole list


class Delta(str, Enum):
    """How an endpoint takes `lastModifiedDateTime`."""

    WITH_CONDITION = "with_condition"  # lastModifiedDateTime + lastModifiedDateTimeCondition
    ALONE = "alone"  # lastModifiedDateTime only (means ">=" on /v2 GL endpoints)
    NONE = "none"  # no delta filter at all


@dataclass(frozen=True)
class Entity:
    """One Visma list endpoint and how to read it completely."""

    name: str  # asset and table name, lower snake case
    path: str  # path under the API base URL, as in the OpenAPI document
    schema: str  # OpenAPI component schema of one item
    key: tuple[str, ...]  # fields that identify a record (dotted for nested fields)
    paging: Paging
    delta: Delta
    period_param: str | None = None  # query parameter taking a YYYYPP financial period
    lines_field: str | None = None  # nested lines; for journal batches lines span pages
    lines_span_pages: bool = False  # /v2/journaltransaction pages by lines, not by batches
    modified_field: str = "lastModifiedDateTime"
    description: str = ""
    webhook_resource: str | None = None  # Visma webhook resource name, when events exist
    # The OpenAPI path that reads one record by its whole key: its placeholders take the key's
    # fields in order. Only where the path names every key field: a path by number alone (purchase
    # orders, customer invoices, payments, journal batches) may look in one document type only, so
    # its 404 could not prove that a record of another type is gone.
    by_key_path: str | None = None

    @property
    def by_period(self) -> bool:
        """Whether the entity belongs to a financial period (and so to a month partition)."""
        return self.period_param is not None


ENTITIES: tuple[Entity, ...] = (
    Entity(
        "financial_periods", "/v1/financialPeriod", "FinancialPeriodDto", ("year", "period"),
        Paging.NONE, Delta.NONE,
        description="The company's financial periods (YYYYPP) with start and end dates.",
    ),
    Entity(
        "gl_accounts", "/v1/account", "AccountDto", ("accountCD",),
        Paging.NONE, Delta.WITH_CONDITION,
        description="The chart of accounts.", webhook_resource="Account",
    ),
    Entity(
        "subaccounts", "/v1/subaccount", "SubAccountDto", ("subaccountNumber",),
        Paging.PAGED, Delta.WITH_CONDITION,
        description="Subaccounts: combinations of dimension segment values.",
        by_key_path="/v1/subaccount/{subAccountNumber}",
    ),
    Entity(
        "dimensions", "/v1/dimension/{dimensionId}", "DtoDimension", ("id",),
        Paging.NONE, Delta.NONE, modified_field="lastModified",
        description="Dimensions with their segments and segment values (department, project).",
        webhook_resource="Dimension",
    ),
    Entity(
        "suppliers", "/v1/supplier", "SupplierDto", ("number",),
        Paging.PAGED, Delta.WITH_CONDITION,
        description="Suppliers (vendors).", webhook_resource="Supplier",
        by_key_path="/v1/supplier/{supplierCd}",
    ),
    Entity(
        "supplier_invoices", "/v1/supplierInvoice", "SupplierInvoiceDto",
        ("documentType", "referenceNumber"), Paging.PAGED, Delta.WITH_CONDITION,
        period_param="financialPeriod", lines_field="invoiceLines",
        description="AP documents: supplier invoices, credit and debit adjustments, with lines.",
        webhook_resource="SupplierInvoice", by_key_path="/v1/supplierInvoice/{documentType}/{invoiceNumber}",
    ),
    Entity(
        "supplier_payments", "/v1/supplierPayment", "SupplierPaymentDto", ("type", "refNbr"),
        Paging.PAGED, Delta.WITH_CONDITION, period_param="financialPeriod",
        description="Payments to suppliers.",
        by_key_path="/v1/supplierPayment/{paymentType}/{paymentNumber}",
    ),
    Entity(
        "purchase_orders", "/v1/purchaseorder", "PurchaseOrderDto", ("orderType", "orderNbr"),
        Paging.PAGED, Delta.WITH_CONDITION, lines_field="lines",
        description="Purchase orders with lines.", webhook_resource="PurchaseOrder",
    ),
    Entity(
        "purchase_receipts", "/v2/PurchaseReceipt", "PurchaseReceiptDto",
        ("receiptType", "receiptNbr"), Paging.PAGED, Delta.WITH_CONDITION,
        period_param="finPeriod", lines_field="lines",
        description="Purchase receipts with lines.",
    ),
    Entity(
        "customers", "/v1/customer", "CustomerDto", ("number",),
        Paging.PAGED, Delta.WITH_CONDITION,
        description="Customers.", webhook_resource="Customer",
        by_key_path="/v1/customer/{customerCd}",
    ),
    Entity(
        "customer_invoices", "/v1/customerinvoice", "CustomerInvoiceDto",
        ("documentType", "referenceNumber"), Paging.PAGED, Delta.WITH_CONDITION,
        period_param="financialPeriod", lines_field="invoiceLines",
        description="AR invoices with lines.", webhook_resource="CustomerInvoice",
    ),
    Entity(
        "customer_credit_notes", "/v1/customerCreditNote", "CustomerCreditNoteDto",
        ("documentType", "referenceNumber"), Paging.PAGED, Delta.WITH_CONDITION,
        period_param="financialPeriod", lines_field="lines",
        description="AR credit notes with lines.",
    ),
    Entity(
        "customer_payments", "/v1/customerPayment", "PaymentDto", ("type", "refNbr"),
        Paging.PAGED, Delta.WITH_CONDITION, period_param="financialPeriod",
        description="Payments from customers.",
    ),
    Entity(
        "journal_transactions", "/v2/journaltransaction", "JournalTransactionDto",
        ("module", "batchNumber"), Paging.PAGED, Delta.ALONE, period_param="periodId",
        lines_field="journalTransactionLines", lines_span_pages=True,
        description="GL journal batches with their lines; paged by lines, merged by batch.",
    ),
    Entity(
        "gl_balances", "/v2/generalLedgerBalance", "GeneralLedgerBalanceDto",
        ("branch.number", "ledger.id", "balanceType", "financialPeriod", "account.number", "subAccountCd"),
        Paging.PAGED, Delta.ALONE, period_param="periodId",
        description="GL balances per branch, ledger, period, account and subaccount.",
    ),
    Entity(
        "employees", "/v1/employee", "EmployeeDto", ("employeeNumber",),
        Paging.PAGED, Delta.WITH_CONDITION,
        description="Employees.", webhook_resource="Employee",
        by_key_path="/v1/employee/{employeeCd}",
    ),
    Entity(
        "time_cards", "/v1/timeCard", "TimeCardDto", ("refNbr",),
        Paging.NONE, Delta.WITH_CONDITION,
        description="Employee time cards (the endpoint needs a filter: read by lastModifiedDateTime).",
    ),
)

BY_NAME: dict[str, Entity] = {entity.name: entity for entity in ENTITIES}

# Read once per company to learn which dimensions exist; each id is then read from
# /v1/dimension/{dimensionId}.
DIMENSION_IDS_PATH = "/v1/dimension"


def entity(name: str) -> Entity:
    """The catalogue entry for `name`, or a KeyError that lists the known names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown Visma entity {name!r}; known: {', '.join(BY_NAME)}") from None


def key_values(fields: Sequence[str], record: dict) -> tuple[str, ...]:
    """The values of `fields` as strings ("" when absent), following dotted paths into objects."""
    values: list[str] = []
    for field in fields:
        value: object = record
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append("" if value is None else str(value))
    return tuple(values)


def record_key(entity: Entity, record: dict) -> tuple[str, ...]:
    """The key of a record as a tuple of strings, following dotted paths into nested objects."""
    return key_values(entity.key, record)
