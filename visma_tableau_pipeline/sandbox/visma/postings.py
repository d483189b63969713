"""How the subledgers post to the general ledger: one balanced journal batch per document and
per payment, on the company's control accounts, in base currency.

The rules read the records the API serves (never a second copy of how their amounts were
drawn), so a document and its GL posting agree by construction:

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
from visma_tableau_pipeline.sandbox.visma.documents import cents
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

    def supplier_document(self, document: dict, day: int) -> Posting:
        reference, party = document["referenceNumber"], document["supplier"]["number"]
        text = f"{self.words['invoice']} {reference}"
        lines = [self._entry(line["account"]["number"], self.subs[line["subaccount"]["subaccountNumber"]],
                             cents(line["costInCurrency"]), text, reference, party)
                 for line in document["invoiceLines"]]
        vat = cents(document["vatTotalInCurrency"])
        if vat:
            lines.append(self._entry(self.roles["vat_in"], self.default_sub, vat, text, reference, party))
        lines.append(self._entry(self.roles["ap"], self.default_sub, -supplier_base_total(document), text,
                                 reference, party))
        return Posting("ModuleAP", day, text, self._balanced(lines, "rounding"))

    def customer_document(self, document: dict, day: int) -> Posting:
        reference, party = document["referenceNumber"], document["customer"]["number"]
        sign = -1 if document["documentType"] == "CreditNote" else 1
        word = self.words["credit"] if sign < 0 else self.words["invoice"]
        text = f"{word} {reference}"
        lines = [self._entry(self.roles["ar"], self.default_sub, sign * cents(document["amountInCurrency"]), text,
                             reference, party)]
        lines_key = "invoiceLines" if "invoiceLines" in document else "lines"
        lines += [self._entry(line["account"]["number"], self.subs[line["subaccount"]["subaccountNumber"]],
                              -sign * cents(line["amountInCurrency"]), text, reference, party)
                  for line in document[lines_key]]
        vat = cents(document["vatTotalInCurrency"])
        if vat:
            lines.append(self._entry(self.roles["vat_out"], self.default_sub, -sign * vat, text, reference, party))
        return Posting("ModuleAR", day, text, self._balanced(lines, "rounding"))

    def supplier_payment(self, payment: dict, cleared_base: int, bank_base: int, day: int) -> Posting:
        """A supplier payment clearing `cleared_base` of AP, `bank_base` out of the bank."""
        reference, party = payment["refNbr"], payment["supplier"]["number"]
        text = f"{self.words['payment']} {reference}"
        lines = [self._entry(self.roles["ap"], self.default_sub, cleared_base, text, reference, party),
                 self._entry(self.roles["bank"], self.default_sub, -bank_base, text, reference, party)]
        return Posting("ModuleAP", day, text, self._balanced(lines, "fx"))

    def customer_payment(self, payment: dict, cleared_base: int, bank_base: int, day: int) -> Posting:
        """A customer payment (or refund, `cleared_base` negative) and its bank movement."""
        reference, party = payment["refNbr"], payment["customer"]["number"]
        text = f"{self.words['payment']} {reference}"
        lines = [self._entry(self.roles["bank"], self.default_sub, bank_base, text, reference, party),
                 self._entry(self.roles["ar"], self.default_sub, -cleared_base, text, reference, party)]
        return Posting("ModuleAR", day, text, self._balanced(lines, "fx"))


def reversal(posting: Posting) -> Posting:
    """The batch that takes `posting` back out of the GL, in the same period."""
    lines = [line._replace(debit=line.credit, credit=line.debit) for line in posting.lines]
    return posting._replace(description=f"{posting.description} (reversed)", lines=lines)


def supplier_base_total(document: dict) -> int:
    """A supplier document's total in base currency (SupplierInvoiceDto has no amountInCurrency)."""
    return cents(document["detailTotalInCurrency"]) + cents(document["vatTotalInCurrency"])


def base_total(document: dict) -> int:
    """A subledger document's total in base currency, unsigned."""
    if "amountInCurrency" in document:
        return cents(document["amountInCurrency"])
    return supplier_base_total(document)


def cleared_by_payment(document: dict) -> int:
    """The base part of a document's total that its payments cleared: the base total less the
    base balance Visma reports, so that what the control account keeps is that balance."""
    return base_total(document) - cents(document["balanceInCurrency"])
