"""The list endpoints the sandbox serves, with the query parameters Visma's OpenAPI document
gives each (only those the sandbox filters on; every other parameter is accepted and ignored,
as the real API does), the entity behind each, and its maximum page size.

Page-size maxima are not published except /v2/PurchaseReceipt (500); the others are plausible
choices that a client must read from `metadata.maxPageSize` rather than assume.
"""

from __future__ import annotations

from dataclasses import dataclass

from visma_tableau_pipeline.visma.catalogue import ENTITIES, Delta, Paging

DEFAULT_MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Param:
    """A filtering query parameter: records whose `field` equals the value pass."""

    name: str
    field: str
    kind: str = "str"  # "str", "enum", "bool"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    path: str  # as in the OpenAPI document, e.g. /v1/dimension/{dimensionId}
    entity_name: str
    paged: bool
    delta: Delta
    period_param: str | None = None
    params: tuple[Param, ...] = ()
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    requires_filter: bool = False  # /v1/timeCard answers 400 without any filter
    path_field: str | None = None  # record field the path parameter selects on
    ids_only: bool = False  # /v1/dimension lists the dimension ids
    by_key: bool = False  # one record, its key's fields in the path's placeholders (in order)


@dataclass(frozen=True)
class EntityInfo:
    """How the sandbox keys and timestamps one entity (catalogue entities and a few more)."""

    key: tuple[str, ...]
    modified_field: str = "lastModifiedDateTime"
    webhook_resource: str | None = None


_SI_STATUS = ("Hold", "Balanced", "Voided", "Scheduled", "Open", "Closed", "Printed", "Prebooked", "Reserved")
_AR_STATUS = ("Hold", "Balanced", "Voided", "Scheduled", "Open", "Closed", "PendingPrint", "PendingEmail",
              "CreditHold", "CcHold", "Reserved")
_AR_DOC_TYPES = ("Invoice", "DebitNote", "CreditNote", "Payment", "VoidPayment", "Prepayment", "Refund",
                 "FinCharge", "SmallBalanceWo", "SmallCreditWo", "CashSale", "CashReturn", "Undefined", "NoUpdate")
_TIME_CARD_PARAMS = (
    Param("status", "status", "enum", ("Hold", "Open", "Approved", "Rejected", "Released")),
    Param("type", "type", "enum", ("Normal", "Correction", "NormalCorrected")),
    Param("week", "week.number"),
)
_AR_PARAMS = (
    Param("documentType", "documentType", "enum", _AR_DOC_TYPES),
    Param("status", "status", "enum", _AR_STATUS),
    Param("customer", "customer.number"),
    Param("branch", "branchNumber.number"),
)

PARAMS: dict[str, tuple[Param, ...]] = {
    "/v1/supplier": (Param("status", "status", "enum", ("Active", "OnHold", "HoldPayments", "Inactive", "OneTime")),),
    "/v1/supplierInvoice": (
        Param("supplier", "supplier.number"),
        Param("documentType", "documentType", "enum",
              ("Invoice", "CreditAdj", "DebitAdj", "Prepayment", "Refund", "Payment")),
        Param("status", "status", "enum", _SI_STATUS),
        Param("branch", "branchNumber.number"),
    ),
    "/v1/supplierPayment": (
        Param("paymentType", "type", "enum",
              ("Payment", "DebitAdj", "Prepayment", "Refund", "VoidPayment", "VoidRefund")),
        Param("supplier", "supplier.number"),
        Param("branch", "branch"),
        Param("status", "status", "enum", (*_SI_STATUS[:8], "PendingApproval", "Rejected", "Reserved", "PendingPrint")),
    ),
    "/v1/purchaseorder": (
        Param("orderType", "orderType", "enum", ("RegularOrder", "DropShip", "Blanket", "StandardBlanket")),
        Param("orderStatus", "status", "enum", ("Balanced", "Cancelled", "Closed", "Hold", "Open", "PendingEmail",
                                                "PendingPrint", "Printed", "Voided")),
        Param("supplier", "supplier.number"),
        Param("branch", "branch.number"),
    ),
    "/v2/PurchaseReceipt": (
        Param("receiptType", "receiptType", "enum", ("PoReceipt", "PoReturn", "TransferReceipt")),
        Param("status", "status", "enum", ("Hold", "Balanced", "Released")),
        Param("supplier", "supplier.number"),
        Param("branch", "branchNumber.number"),
    ),
    "/v1/customer": (Param("status", "status", "enum", ("Active", "OnHold", "CreditHold", "Inactive", "OneTime")),),
    "/v1/customerinvoice": _AR_PARAMS,
    "/v1/customerCreditNote": _AR_PARAMS,
    "/v1/customerPayment": (
        Param("paymentType", "type", "enum", ("Payment", "CreditNote", "Prepayment", "Refund", "VoidPayment",
                                              "SmallBalanceWo", "VoidRefund", "Undefined")),
        Param("customer", "customer.number"),
        Param("status", "status", "enum", _AR_STATUS),
        Param("branch", "branch"),
    ),
    "/v1/account": (Param("active", "active", "bool"),),
    "/v1/subaccount": (Param("active", "active", "bool"),),
    "/v2/journaltransaction": (
        Param("module", "module", "enum", ("ModuleGL", "ModuleAP", "ModuleAR", "ModuleCA", "ModuleCM", "ModuleIN",
                                           "ModuleSO", "ModulePO", "ModuleDR", "ModuleFA", "ModuleEP", "ModulePM",
                                           "ModuleTX", "ModuleCR")),
        Param("status", "status", "enum", ("Hold", "Balanced", "Unposted", "Posted", "Voided", "Scheduled")),
        Param("branch", "branch"),
    ),
    "/v2/generalLedgerBalance": (
        Param("account", "account.number"),
        Param("ledger", "ledger.id"),
        Param("branch", "branch.number"),
        Param("balanceType", "balanceType", "enum", ("Actual", "Report", "Statistical", "Budget")),
    ),
    "/v1/timeCard": _TIME_CARD_PARAMS,
}

MAX_PAGE_SIZES: dict[str, int] = {"/v2/PurchaseReceipt": 500, "/v2/journaltransaction": 2000}

EXTRA_ENTITIES: dict[str, EntityInfo] = {
    "ledgers": EntityInfo(("number",)),
    "branches": EntityInfo(("number",)),
    "currencies": EntityInfo(("id",), modified_field=""),
}


def entity_infos() -> dict[str, EntityInfo]:
    infos = {e.name: EntityInfo(e.key, e.modified_field if e.delta is not Delta.NONE or e.name == "dimensions"
                                else "", e.webhook_resource)
             for e in ENTITIES}
    return {**infos, **EXTRA_ENTITIES}


def endpoints(max_page_sizes: dict[str, int] | None = None) -> list[Endpoint]:
    """Every endpoint the sandbox serves; `max_page_sizes` overrides maxima by path."""
    sizes = {**MAX_PAGE_SIZES, **(max_page_sizes or {})}
    served = [
        Endpoint(e.path, e.name, e.paging is Paging.PAGED, e.delta, e.period_param, PARAMS.get(e.path, ()),
                 sizes.get(e.path, DEFAULT_MAX_PAGE_SIZE), requires_filter=e.path == "/v1/timeCard",
                 path_field="id" if e.name == "dimensions" else None)
        for e in ENTITIES
    ]
    served += [Endpoint(e.by_key_path, e.name, False, Delta.NONE, by_key=True) for e in ENTITIES if e.by_key_path]
    served += [
        Endpoint("/v1/dimension", "dimensions", False, Delta.NONE, ids_only=True),
        Endpoint("/v1/ledger", "ledgers", False, Delta.WITH_CONDITION),
        Endpoint("/v1/branch", "branches", False, Delta.WITH_CONDITION),
        Endpoint("/v1/currency", "currencies", False, Delta.NONE),
        Endpoint("/v1/employee/{employeeCd}/timecards", "time_cards", False, Delta.WITH_CONDITION,
                 params=_TIME_CARD_PARAMS, path_field="employee.number"),
    ]
    return served
