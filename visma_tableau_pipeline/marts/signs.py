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

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from visma_tableau_pipeline.marts.fields import amount, text
from visma_tableau_pipeline.marts.flat import Derived
from visma_tableau_pipeline.marts.inputs import Record
from visma_tableau_pipeline.marts.schema import MONEY, TEXT, Kind

AP_NEGATIVE_DOCUMENT_TYPES = frozenset({"DebitAdj", "Prepayment"})
AR_NEGATIVE_DOCUMENT_TYPES = frozenset({"CreditNote"})


def document_sign(document_type: str | None, negative_types: frozenset[str]) -> int:
    """-1 for document types that lower the balance, else +1."""
    return -1 if document_type in negative_types else 1


class Signed(Derived):
    """An amount field with the document's sign applied."""

    def __init__(self, path: str, negative_types: frozenset[str], type_path: str = "documentType") -> None:
        def get(record: Record) -> Decimal | None:
            value = amount(record, path)
            if value is None:
                return None
            return value * document_sign(text(record, type_path), negative_types)

        super().__init__(get, (path, MONEY), (type_path, TEXT))
        self.negative_types = pa.array(sorted(negative_types), pa.string())

    def column(self, values: Sequence[pa.Array], kind: Kind, context: Mapping[str, Any]) -> pa.Array:
        value, document_type = values
        negative = pc.fill_null(pc.is_in(document_type, value_set=self.negative_types), False)
        return pc.if_else(negative, pc.negate(value), value)


def signed(path: str, negative_types: frozenset[str], type_path: str = "documentType") -> Signed:
    """The source of an amount column with the document's sign applied."""
    return Signed(path, negative_types, type_path)


def sign_of(negative_types: frozenset[str], type_path: str = "documentType") -> Derived:
    """The source of the `sign` column."""
    return Derived(lambda record: document_sign(text(record, type_path), negative_types), (type_path, TEXT))
