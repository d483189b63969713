"""How big the demo data set is, from one number: the supplier invoices of company 1."""

from __future__ import annotations

from dataclasses import dataclass


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@dataclass(frozen=True)
class DemoSize:
    """Record counts for every entity, derived from `supplier_invoices`.

    A few hundred suits tests; 1,000,000 suits benchmarks (records are generated on demand, so
    memory does not grow with the size). Each company gets its `volume` percent of the counts.
    Payments are not counted: there is one for each paid document (documents.Settlements).
    """

    supplier_invoices: int = 240

    def counts(self, volume_percent: int) -> dict[str, int]:
        invoices = max(1, self.supplier_invoices * volume_percent // 100)
        return {
            "supplier_invoices": invoices,
            "suppliers": _clamp(invoices // 20, 12, 5000),
            "customers": _clamp(invoices // 15, 15, 8000),
            "customer_invoices": max(20, invoices * 3 // 4),
            "customer_credit_notes": max(6, invoices // 12),
            "purchase_orders": max(6, invoices // 5),
            "purchase_receipts": max(6, invoices // 5),
            "journal_transactions": max(40, invoices // 3),  # manual batches; the subledgers post more
            "employees": _clamp(invoices // 100, 5, 400),
        }


# An accounting office's client: a few dozen supplier invoices over the sandbox's two years.
CLIENT_COMPANY_SIZE = DemoSize(supplier_invoices=40)
