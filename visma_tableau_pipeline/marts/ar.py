"""Accounts receivable tables: invoices with credit notes, customers, customer payments."""

from __future__ import annotations

import logging
from itertools import chain

import numpy as np
import pandas as pd

from visma_tableau_pipeline.marts.columnar import Declined
from visma_tableau_pipeline.marts.flat import FlatTable, Lines
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.schema import DATE, INT, MONEY, RATE, TEXT, TIMESTAMP
from visma_tableau_pipeline.marts.signs import AR_NEGATIVE_DOCUMENT_TYPES as AR_NEG
from visma_tableau_pipeline.marts.signs import sign_of, signed
from visma_tableau_pipeline.marts.sources import lenient_period_of, period_of

log = logging.getLogger(__name__)

AR_INVOICES = FlatTable("ar_invoices", "customer_invoices", (
    ("document_type", TEXT, "documentType"),
    ("reference_number", TEXT, "referenceNumber"),
    ("financial_period", TEXT, period_of()),
    ("customer_number", TEXT, "customer.number"),
    ("customer_name", TEXT, "customer.name"),
    ("document_date", DATE, "documentDate"),
    ("due_date", DATE, "documentDueDate"),
    ("status", TEXT, "status"),
    ("currency", TEXT, "currencyId"),
    ("exchange_rate", RATE, "exchangeRate"),
    ("sign", INT, sign_of(AR_NEG)),
    ("amount_doc_currency", MONEY, signed("amount", AR_NEG)),
    ("amount_base_currency", MONEY, signed("amountInCurrency", AR_NEG)),
    ("vat_amount_doc_currency", MONEY, signed("vatTotal", AR_NEG)),
    ("vat_amount_base_currency", MONEY, signed("vatTotalInCurrency", AR_NEG)),
    ("balance_doc_currency", MONEY, signed("balance", AR_NEG)),
    ("balance_base_currency", MONEY, signed("balanceInCurrency", AR_NEG)),
    ("customer_reference", TEXT, "customerRefNumber"),
    ("description", TEXT, "invoiceText"),
    ("branch_number", TEXT, "branchNumber.number"),
    ("payment_method", TEXT, "paymentMethod.id"),
    ("credit_terms", TEXT, "creditTerms.id"),
    ("created_at", TIMESTAMP, "createdDateTime"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))


def build_ar_invoices(inputs: MartInputs) -> pd.DataFrame:
    """AR invoices and credit notes in one table; credit notes carry negative amounts.

    `/v1/customerinvoice` and `/v1/customerCreditNote` may both list a credit note; a document
    appears once per (company_id, document_type, reference_number), the credit-note read winning.
    """
    try:
        frame = pd.concat([AR_INVOICES.schema.frame_from_arrays(*AR_INVOICES.columnwise_arrays(inputs, name))
                           for name in _AR_SOURCES], ignore_index=True)
    except Declined as reason:  # record by record: a duplicate's values may be what that path refuses
        log.info("table ar_invoices: built record by record, because: %s", reason)
        return build_ar_invoices_record_by_record(inputs)
    return _last_per_document(frame)


def build_ar_invoices_record_by_record(inputs: MartInputs) -> pd.DataFrame:
    """`build_ar_invoices` by the per-record getters, the reference of the column-wise build."""
    rows = AR_INVOICES.rows(chain.from_iterable(inputs.of(name) for name in _AR_SOURCES))
    unique = {(r["company_id"], r["document_type"], r["reference_number"]): r for r in rows}
    return AR_INVOICES.schema.frame(unique.values())


_AR_SOURCES = ("customer_invoices", "customer_credit_notes")
_DOCUMENT = ["company_id", "document_type", "reference_number"]


def _last_per_document(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per document: the last one read, where the document was first read (as a dict
    keyed by document keeps it)."""
    documents = frame.groupby(_DOCUMENT, dropna=False, sort=False).ngroup().to_numpy()  # numbered as first seen
    last = np.zeros(documents.max() + 1 if len(documents) else 0, dtype=np.int64)
    np.maximum.at(last, documents, np.arange(len(documents)))
    return frame.take(last).reset_index(drop=True)


CUSTOMER_PAYMENTS = FlatTable("customer_payments", "customer_payments", (
    ("payment_type", TEXT, "type"),
    ("reference_number", TEXT, "refNbr"),
    ("financial_period", TEXT, lenient_period_of("applicationPeriod")),
    ("application_date", DATE, "applicationDate"),
    ("status", TEXT, "status"),
    ("customer_number", TEXT, "customer.number"),
    ("customer_name", TEXT, "customer.name"),
    ("payment_method", TEXT, "paymentMethod.id"),
    ("cash_account", TEXT, "cashAccount"),
    ("currency", TEXT, "currency"),
    ("amount_doc_currency", MONEY, "paymentAmount"),
    ("amount_base_currency", MONEY, "paymentAmountInCurrency"),
    ("available_balance_doc_currency", MONEY, "availableBalance"),
    ("available_balance_base_currency", MONEY, "availableBalanceInCurrency"),
    ("applied_to_documents_doc_currency", MONEY, "appliedToDocuments"),
    ("write_off_amount_doc_currency", MONEY, "writeOffAmount"),
    ("payment_reference", TEXT, "paymentRef"),
    ("description", TEXT, "invoiceText"),
    ("branch", TEXT, "branch"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))

# One row per line of a customer payment (see `ap.SUPPLIER_PAYMENT_LINES`): which invoice or note
# it settled and how much, in the document's currency, unsigned, in the payment's application period.
CUSTOMER_PAYMENT_LINES = FlatTable("customer_payment_lines", "customer_payments", (
    ("payment_type", TEXT, "payment.type"),
    ("reference_number", TEXT, "payment.refNbr"),
    ("line_number", INT, "position"),
    ("financial_period", TEXT, lenient_period_of("payment.applicationPeriod")),
    ("application_date", DATE, "payment.applicationDate"),
    ("payment_status", TEXT, "payment.status"),
    ("customer_number", TEXT, "payment.customer.number"),
    ("customer_name", TEXT, "payment.customer.name"),
    ("payment_currency", TEXT, "payment.currency"),
    ("document_type", TEXT, "line.documentType"),
    ("document_reference_number", TEXT, "line.refNbr"),
    ("customer_order", TEXT, "line.customerOrder"),
    ("document_date", DATE, "line.date"),
    ("document_due_date", DATE, "line.dueDate"),
    ("document_currency", TEXT, "line.currency"),
    ("cross_rate", RATE, "line.crossRate"),
    ("amount_paid_doc_currency", MONEY, "line.amountPaid"),
    ("cash_discount_taken_doc_currency", MONEY, "line.cashDiscountTaken"),
    ("balance_write_off_doc_currency", MONEY, "line.balanceWriteOff"),
    ("write_off_reason_code", TEXT, "line.writeOffReasonCode.id"),
    ("document_balance_doc_currency", MONEY, "line.balance"),
    ("description", TEXT, "line.description"),
    ("last_modified_at", TIMESTAMP, "payment.lastModifiedDateTime"),
), lines=Lines("paymentLines", record="payment", item="line", position="position"))

CUSTOMERS = FlatTable("customers", "customers", (
    ("customer_number", TEXT, "number"),
    ("customer_name", TEXT, "name"),
    ("status", TEXT, "status"),
    ("customer_class", TEXT, "customerClass.id"),
    ("customer_class_description", TEXT, "customerClass.description"),
    ("parent_customer_number", TEXT, "parentRecord.number"),
    ("credit_terms", TEXT, "creditTerms.id"),
    ("currency", TEXT, "currencyId"),
    ("credit_limit_doc_currency", MONEY, "creditLimit"),
    ("credit_days_past_due", INT, "creditDaysPastDue"),
    ("country", TEXT, "mainAddress.country.id"),
    ("city", TEXT, "mainAddress.city"),
    ("vat_registration_id", TEXT, "vatRegistrationId"),
    ("corporate_id", TEXT, "corporateId"),
    ("created_at", TIMESTAMP, "createdDateTime"),
    ("last_modified_at", TIMESTAMP, "lastModifiedDateTime"),
))
