"""How the subledgers post to the general ledger: one balanced journal batch per document and
per payment, on the company's control accounts, in base currency.

The rules read a document's figures (documents.DocumentFigures: the amounts of the record the
API serves, worked out without writing it, or read from a mutated record), so a document and its
GL posting agree by construction:

- supplier invoice or credit adjustment (ModuleAP): each line's base cost debited to its expense
  account, the base VAT to input VAT, the document's base total credited to the AP control
  account; the cents by which the lines' own roundings miss the total go to the rounding account.
  The base total is detailTotalInCurrency + vatTotalInCurrency, the total the AP tables use.
- customer invoice (ModuleAR): amountInCurrency debited to the AR control account, the lines'
  base amounts credited to their income accounts (a rounding line is a line), the base VAT to
  output VAT; a credit note is the mirror image.
- payment of a document (supplier payment, customer payment or refund): the part of the
  document's base balance it clears, at the document's own rate, against the control account;
  the bank at the payment's rate; the difference is realised exchange gain or loss (`fx`).

With every document and payment posted, a control account's balance at a period end is the
open balance of the documents of its subledger then, in base currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from visma_tableau_pipeline.sandbox.visma.companies import CompanyProfile
from visma_tableau_pipeline.sandbox.visma.documents import DocumentFigures
from visma_tableau_pipeline.sandbox.visma.masters import Subaccount


class Line(NamedTuple):
    account: str
    sub: Subaccount
    debit: int  # minor units, base currency
    credit: int
    text: str
    reference: str = ""  # the document or payment the line posts
    party: str = ""  # its supplier or customer number


class Posting(NamedTuple):
    """One journal batch before it is written: module, date ordinal, description, lines."""

    module: str
    day: int
    description: str
    lines: list[Line]


class PostingRules:
    """The posting rules of one company: its control, VAT, bank, rounding and exchange accounts."""

    def __init__(self, profile: CompanyProfile, subaccounts: Iterable[Subaccount]) -> None:
        self.roles = profile.roles
        self.words = profile.words
        self.subs = {sub.number: sub for sub in subaccounts}
        self.default_sub = next(iter(self.subs.values()))

    @staticmethod
    def _entry(account: str, sub: Subaccount, amount: int, text: str, reference: str, party: str) -> Line:
        """A line of `amount` (debit when positive, credit when negative)."""
        return Line(account, sub, max(amount, 0), max(-amount, 0), text, reference, party)

    def _balanced(self, lines: list[Line], residual_role: str) -> list[Line]:
        """`lines`, and a line on the `residual_role` account for whatever they miss by."""
        residual = sum(line.credit - line.debit for line in lines)
        if residual:
            first = lines[0]
            lines.append(self._entry(self.roles[residual_role], self.default_sub, residual,
                                     self.words["rounding"], first.reference, first.party))
        return lines

    def supplier_document(self, document: DocumentFigures, day: int) -> Posting:
        reference, party = document.reference, document.party
        text = f"{self.words['invoice']} {reference}"
        lines = [self._entry(account, self.subs[sub], base, text, reference, party)
                 for account, sub, base in document.lines]
        if document.vat_base:
            lines.append(self._entry(self.roles["vat_in"], self.default_sub, document.vat_base, text, reference, party))
        lines.append(self._entry(self.roles["ap"], self.default_sub, -document.total_base, text, reference, party))
        return Posting("ModuleAP", day, text, self._balanced(lines, "rounding"))

    def customer_document(self, document: DocumentFigures, day: int) -> Posting:
        reference, party = document.reference, document.party
        sign = -1 if document.document_type == "CreditNote" else 1
        word = self.words["credit"] if sign < 0 else self.words["invoice"]
        text = f"{word} {reference}"
        lines = [self._entry(self.roles["ar"], self.default_sub, sign * document.total_base, text, reference, party)]
        lines += [self._entry(account, self.subs[sub], -sign * base, text, reference, party)
                  for account, sub, base in document.lines]
        if document.vat_base:
            lines.append(self._entry(self.roles["vat_out"], self.default_sub, -sign * document.vat_base, text,
                                     reference, party))
        return Posting("ModuleAR", day, text, self._balanced(lines, "rounding"))

    def supplier_payment(self, reference: str, party: str, cleared_base: int, bank_base: int, day: int) -> Posting:
        """Supplier payment `reference` clearing `cleared_base` of AP, `bank_base` out of the bank."""
        text = f"{self.words['payment']} {reference}"
        lines = [self._entry(self.roles["ap"], self.default_sub, cleared_base, text, reference, party),
                 self._entry(self.roles["bank"], self.default_sub, -bank_base, text, reference, party)]
        return Posting("ModuleAP", day, text, self._balanced(lines, "fx"))

    def customer_payment(self, reference: str, party: str, cleared_base: int, bank_base: int, day: int) -> Posting:
        """A customer payment (or refund, `cleared_base` negative) and its bank movement."""
        text = f"{self.words['payment']} {reference}"
        lines = [self._entry(self.roles["bank"], self.default_sub, bank_base, text, reference, party),
                 self._entry(self.roles["ar"], self.default_sub, -cleared_base, text, reference, party)]
        return Posting("ModuleAR", day, text, self._balanced(lines, "fx"))


def reversal(posting: Posting) -> Posting:
    """The batch that takes `posting` back out of the GL, in the same period."""
    lines = [line._replace(debit=line.credit, credit=line.debit) for line in posting.lines]
    return posting._replace(description=f"{posting.description} (reversed)", lines=lines)
