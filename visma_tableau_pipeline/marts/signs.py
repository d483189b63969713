"""Sign conventions for subledger documents, in one place.

Visma shows every document amount as a positive magnitude and lets the document type say which
way it moves the balance. The dashboard tables carry signed amounts so that a plain SUM gives the
net payable or receivable:

- AP (`supplier_invoices`): `Invoice` and `CreditAdj` (credit adjustment, raises what is owed)
  are positive; `DebitAdj` (Visma's supplier credit note) and `Prepayment` are negative.
- AR (`customer_invoices`, `customer_credit_notes`): `Invoice`, `DebitNote`, `FinCharge` are
  positive; `CreditNote` is negative.

Each table also has a `sign` column (+1 / -1) so a user can see the convention applied per row.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from visma_tableau_pipeline.marts.fields import amount, text
from visma_tableau_pipeline.marts.inputs import Record

AP_NEGATIVE_DOCUMENT_TYPES = frozenset({"DebitAdj", "Prepayment"})
AR_NEGATIVE_DOCUMENT_TYPES = frozenset({"CreditNote"})


def document_sign(document_type: str | None, negative_types: frozenset[str]) -> int:
    """-1 for document types that lower the balance, else +1."""
    return -1 if document_type in negative_types else 1


def signed(path: str, negative_types: frozenset[str],
           type_path: str = "documentType") -> Callable[[Record], Decimal | None]:
    """A getter for an amount field with the document's sign applied."""

    def get(record: Record) -> Decimal | None:
        value = amount(record, path)
        if value is None:
            return None
        return value * document_sign(text(record, type_path), negative_types)

    return get


def sign_of(negative_types: frozenset[str], type_path: str = "documentType") -> Callable[[Record], int]:
    """A getter for the `sign` column."""
    return lambda record: document_sign(text(record, type_path), negative_types)
