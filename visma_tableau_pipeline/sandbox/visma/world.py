"""One company's generated world: its context, master data and a source for every entity."""

from __future__ import annotations

from datetime import datetime

from visma_tableau_pipeline.sandbox.visma.calendar import DATA_END
from visma_tableau_pipeline.sandbox.visma.companies import CompanyProfile
from visma_tableau_pipeline.sandbox.visma.documents import (
    CustomerDocumentSource,
    CustomerPaymentSource,
    PurchaseOrderSource,
    PurchaseReceiptSource,
    Settlements,
    SupplierPaymentSource,
)
from visma_tableau_pipeline.sandbox.visma.ledger import (
    CalendarBatches,
    DocumentPostings,
    JournalSource,
    ManualBatches,
    PaymentPostings,
)
from visma_tableau_pipeline.sandbox.visma.masters import (
    CustomerSource,
    EmployeeSource,
    Masters,
    SupplierSource,
    account_source,
    branch_source,
    currency_source,
    dimension_source,
    financial_period_source,
    ledger_source,
    subaccount_source,
)
from visma_tableau_pipeline.sandbox.visma.postings import PostingRules
from visma_tableau_pipeline.sandbox.visma.size import DemoSize
from visma_tableau_pipeline.sandbox.visma.sources import CompanyContext, Source
from visma_tableau_pipeline.sandbox.visma.supplier_invoices import SupplierInvoiceSource
from visma_tableau_pipeline.sandbox.visma.timecards import TimeCardSource
from visma_tableau_pipeline.sandbox.visma.wire import ms_of


def build_world(profile: CompanyProfile, size: DemoSize, seed: int) -> tuple[CompanyContext, Masters, dict[str, Source]]:
    """The context, master data and sources (by entity name) of one company.

    `gl_balances` is not among the sources: it is computed from the journal (see ledger.py).
    """
    calendar = profile.calendar()
    first = calendar.first_day
    ctx = CompanyContext(profile, seed, calendar, ms_of(datetime(first.year, first.month, first.day)), ms_of(DATA_END))
    counts = size.counts(profile.volume)
    masters = Masters(ctx, counts)
    supplier_invoices = SupplierInvoiceSource(ctx, masters, counts["supplier_invoices"])
    customer_invoices = CustomerDocumentSource(
        ctx, masters, counts["customer_invoices"],
        entity_name="customer_invoices", document_type="Invoice", lines_key="invoiceLines")
    credit_notes = CustomerDocumentSource(
        ctx, masters, counts["customer_credit_notes"],
        entity_name="customer_credit_notes", document_type="CreditNote", lines_key="lines")
    supplier_payments = SupplierPaymentSource(ctx, masters, Settlements([supplier_invoices]))
    customer_payments = CustomerPaymentSource(ctx, masters, Settlements([customer_invoices, credit_notes]))
    orders = PurchaseOrderSource(ctx, masters, counts["purchase_orders"])
    rules = PostingRules(profile, masters.subaccounts)
    journal = JournalSource(ctx, masters, ManualBatches(ctx, masters, counts["journal_transactions"]), [
        DocumentPostings(supplier_invoices, "supplier_document", rules),
        PaymentPostings(supplier_payments, rules),
        DocumentPostings(customer_invoices, "customer_document", rules),
        DocumentPostings(credit_notes, "customer_document", rules),
        PaymentPostings(customer_payments, rules),
        CalendarBatches(ctx, masters),
    ])
    sources: list[Source] = [
        financial_period_source(ctx),
        account_source(ctx),
        subaccount_source(ctx, masters),
        dimension_source(ctx),
        branch_source(ctx),
        ledger_source(ctx),
        currency_source(ctx),
        SupplierSource(ctx, masters, counts["suppliers"]),
        CustomerSource(ctx, masters, counts["customers"]),
        EmployeeSource(ctx, masters, counts["employees"]),
        supplier_invoices,
        supplier_payments,
        orders,
        PurchaseReceiptSource(ctx, masters, counts["purchase_receipts"], orders),
        customer_invoices,
        credit_notes,
        customer_payments,
        journal,
        TimeCardSource(ctx, masters),
    ]
    return ctx, masters, {source.entity_name: source for source in sources}
