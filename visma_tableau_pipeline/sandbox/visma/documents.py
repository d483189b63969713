"""AP and AR documents: supplier invoices, payments, purchase orders and receipts, customer
invoices, credit notes and payments.

Amounts are integers in minor units until they are written. `amount`-like fields are in the
document currency; `...InCurrency` (and `...InBaseCurrency`) fields are in the company's base
currency: round_half_up(amount x exchangeRate, 2 decimals), each field on its own, so the base
amounts of lines may differ by a cent from the base amount of their header, as in real ledgers.

A document whose balance is below its amount was paid by one payment (`Settlements`), and
every document and payment posts to the GL (ledger.py), so the subledgers reconcile to their
control accounts.

Open documents cluster in the last four months before the data ends, with due dates spread so
that every aging bucket (current, 1-30, 31-60, 61-90, over 90 days past due) has documents;
older documents are closed (balance 0) but for a few long-overdue ones.
"""

from __future__ import annotations

import heapq
import threading
from array import array
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

from visma_tableau_pipeline.sandbox.visma.calendar import DATA_END, Period
from visma_tableau_pipeline.sandbox.visma.determinism import Draw
from visma_tableau_pipeline.sandbox.visma.masters import CURRENCY_NAMES, Masters, Party, Subaccount, version_stamp
from visma_tableau_pipeline.sandbox.visma.sources import DAY_MS, CompanyContext, SeriesSource, parse_number
from visma_tableau_pipeline.sandbox.visma.wire import (
    day_of_ms,
    day_text,
    half_up,
    money,
    number,
    timestamp,
)

_END_DAY = DATA_END.date().toordinal()
PAYMENT_DELAY_DAYS = 21  # a paid document was paid this long after it was created


class DocumentFigures(NamedTuple):
    """The numbers of a subledger document that its GL postings and its payment follow from.

    The sources that generate many documents (supplier invoices, customer documents) work them
    out from their draws without writing the record, so that the journal's first pass over every
    document costs integer arithmetic, not JSON; `figures_of` reads the same numbers from a
    record (a mutation), and a test holds the two to each other.
    """

    document_type: str
    reference: str
    party: str  # the supplier's or customer's number
    currency: str
    lines: tuple[tuple[str, str, int], ...]  # (account, subaccount number, base amount as on the line)
    vat_base: int
    total_base: int  # unsigned: detailTotalInCurrency + vatTotalInCurrency (AP), amountInCurrency (AR)
    amount: int  # document currency
    balance: int
    balance_base: int

    @property
    def cleared_base(self) -> int:
        """The base part of the total its payments cleared: the base total less the base
        balance Visma reports, so that what the control account keeps is that balance."""
        return self.total_base - self.balance_base


def figures_of(document: dict) -> DocumentFigures:
    """A supplier invoice's, customer invoice's or credit note's figures, read from its record."""
    if "supplier" in document:
        party, lines_key, line_amount = document["supplier"]["number"], "invoiceLines", "costInCurrency"
        total_base = cents(document["detailTotalInCurrency"]) + cents(document["vatTotalInCurrency"])
    else:
        party, line_amount = document["customer"]["number"], "amountInCurrency"
        lines_key = "invoiceLines" if "invoiceLines" in document else "lines"
        total_base = cents(document["amountInCurrency"])
    return DocumentFigures(
        document["documentType"], document["referenceNumber"], party, document["currencyId"],
        tuple((line["account"]["number"], line["subaccount"]["subaccountNumber"], cents(line[line_amount]))
              for line in document[lines_key]),
        cents(document["vatTotalInCurrency"]), total_base, cents(document["amount"]), cents(document["balance"]),
        cents(document["balanceInCurrency"]))


class DocumentSource(SeriesSource):
    """Documents numbered `000001`, `000002`, ... in creation order, dated through the data."""

    period_field: str | None = "financialPeriod"
    key_number_field = 1  # position of the running number in the key

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int) -> None:
        super().__init__(ctx, count, ctx.data_start_ms, ctx.data_end_ms)
        self.masters = masters
        self._period_index = {p.period_id: i for i, p in enumerate(ctx.calendar.periods)}
        self._rates: dict[tuple[str, str], int] = {}

    def index_of(self, key: tuple[str, ...]) -> int | None:
        value = parse_number(key[self.key_number_field])
        return None if value is None else value - 1

    def rate(self, currency: str, period: Period) -> int:
        """Base units per document unit x 10 000 for the period (1.0000 for the base currency)."""
        rate = self._rates.get((currency, period.period_id))
        if rate is None:
            rate = self._rates[(currency, period.period_id)] = self.ctx.profile.monthly_rate(
                currency, self._period_index[period.period_id], self.ctx.seed)
        return rate

    def figures(self, index: int) -> DocumentFigures:
        """The figures of generated document `index` (sources with many documents override
        this with a path that does not write the record)."""
        return figures_of(self.build(index))

    def dated(self, index: int, when_ms: int | None) -> tuple[int, int, int, Period]:
        """(created ms, modified ms, document day ordinal, financial period)."""
        created, modified = self.times(index, when_ms)
        day = day_of_ms(created)
        return created, modified, day, self.ctx.calendar.period_of_day(day)


def rate_double(rate: int) -> str:
    """The rate as Visma writes it: a double (the contract's type), here taken through its
    reciprocal, as a rate entered in the other direction is, so that about a quarter of the rates
    come out with 16 or 17 significant digits (`9.799999999999999` for 9.8). Base amounts use
    the exact rate."""
    return repr(1 / (10_000 / rate))


def rate_text(rate: int) -> str:
    """`rate_double` as a marked JSON number."""
    return number(rate_double(rate))


def to_base(cents: int, rate: int) -> int:
    return half_up(cents * rate, 10_000)


def open_state(roll: int, day: int, terms_days: int, new: bool) -> tuple[bool, int]:
    """(open?, due day) for a document dated `day`, given a roll in [0, 100). Recent documents
    are mostly open; a few old ones stay open too; new ones (mutations) are open."""
    due = day + terms_days
    age = _END_DAY - day
    if new:
        return True, due
    if age <= 120:
        return roll < 85, due
    if age <= 300:
        return roll < 6, due
    return roll < 1, due


def open_balance(amount: int, is_open: bool, partly_paid: bool) -> int:
    """The open balance: the whole amount, or half of it for a partly paid document."""
    if not is_open:
        return 0
    return amount // 2 if partly_paid else amount


class Settled(NamedTuple):
    """What one payment settled: its document's type, party and currency, the amount paid
    (document currency) and the part of the document's base balance it cleared."""

    document_type: str
    party: str
    currency: str
    paid: int
    cleared_base: int


class _Payments(NamedTuple):
    times: array  # payment time, ms
    sources: bytearray  # which of the sources holds the document
    indices: array  # the document's index there
    paid: array
    cleared_base: array
    terms: array  # index into `terms_list`: (document type, party, currency)
    terms_list: list[tuple[str, str, str]]


class Settlements:
    """Which documents of a subledger have been paid, in the order their payments were made.

    A document whose `balance` is below its `amount` was paid that difference by one payment,
    `PAYMENT_DELAY_DAYS` after it was created (at the latest when the data ends), so that the
    payments and the documents' balances agree and both post to the GL (see ledger.py): the
    subledger then reconciles to its control account at every period end.

    Finding them takes one pass over the documents' figures, the first time a payment is asked
    for; the result is compact arrays merged by time from the sources (supplier invoices, or
    customer invoices and credit notes), which keep what each payment settled, so that the
    journal posts a payment without working out its document a second time.
    """

    def __init__(self, sources: Sequence[DocumentSource]) -> None:
        self.sources = tuple(sources)
        self._found: _Payments | None = None
        self._lock = threading.Lock()

    def _paid(self) -> _Payments:
        with self._lock:
            if self._found is None:
                self._found = self._scan()
            return self._found

    def _scan(self) -> _Payments:
        def paid(number: int, source: DocumentSource) -> Iterator[tuple[int, int, int, DocumentFigures]]:
            last_ms = source.ctx.data_end_ms - source.lag_ms
            for index in range(len(source)):
                figures = source.figures(index)
                if figures.balance != figures.amount:
                    yield (min(source.created_ms(index) + PAYMENT_DELAY_DAYS * DAY_MS, last_ms), number, index,
                           figures)

        found = _Payments(array("q"), bytearray(), array("I"), array("q"), array("q"), array("I"), [])
        terms_index: dict[tuple[str, str, str], int] = {}
        merged = heapq.merge(*(paid(n, s) for n, s in enumerate(self.sources)), key=lambda item: item[:3])
        for moment, source_number, index, figures in merged:
            found.times.append(moment)
            found.sources.append(source_number)
            found.indices.append(index)
            found.paid.append(figures.amount - figures.balance)
            found.cleared_base.append(figures.cleared_base)
            terms = (figures.document_type, figures.party, figures.currency)
            if terms not in terms_index:
                terms_index[terms] = len(found.terms_list)
                found.terms_list.append(terms)
            found.terms.append(terms_index[terms])
        return found

    def __len__(self) -> int:
        return len(self._paid().times)

    def paid_ms(self, payment: int) -> int:
        """When payment `payment` (0-based, in time order) was made."""
        return self._paid().times[payment]

    def document(self, payment: int) -> tuple[DocumentSource, int]:
        """(source, index) of the document that payment `payment` settled."""
        found = self._paid()
        return self.sources[found.sources[payment]], found.indices[payment]

    def settled(self, payment: int) -> Settled:
        """What payment `payment` settled."""
        found = self._paid()
        document_type, party, currency = found.terms_list[found.terms[payment]]
        return Settled(document_type, party, currency, found.paid[payment], found.cleared_base[payment])

    def payment_of(self, source: DocumentSource, index: int) -> int | None:
        """The payment of document `index` of `source`, or None when it was not paid."""
        found = self._paid()
        number, start = self.sources.index(source), 0
        while True:
            try:
                payment = found.indices.index(index, start)
            except ValueError:
                return None
            if found.sources[payment] == number:
                return payment
            start = payment + 1


class PaymentSource(DocumentSource):
    """Payments, one per paid document of its subledger (`Settlements`), dated when it was paid.

    A new payment (a mutation) pays what `pays` names: see `VismaSandbox.modify`.
    """

    def __init__(self, ctx: CompanyContext, masters: Masters, settlements: Settlements) -> None:
        super().__init__(ctx, masters, 0)
        self.settlements = settlements

    def __len__(self) -> int:
        return len(self.settlements)

    def created_ms(self, index: int) -> int:
        return self.settlements.paid_ms(index)

    def build(self, index: int, when_ms: int | None = None) -> dict:
        if when_ms is not None:
            raise ValueError(f"a new {self.entity_name} record pays a document: modify the document's balance")
        source, document_index = self.settlements.document(index)
        document = source.build(document_index)
        return self.payment(index, document, cents(document["amount"]) - cents(document["balance"]))

    def payment(self, index: int, document: dict, paid: int, when_ms: int | None = None) -> dict:
        """Payment `index` (its refNbr is index + 1) of `paid` minor units of `document`."""
        raise NotImplementedError


# --- accounts payable ----------------------------------------------------------------------

class SupplierPaymentSource(PaymentSource):
    """Supplier payments, each paying one supplier invoice or credit adjustment."""

    entity_name = "supplier_payments"
    period_field = "applicationPeriod"

    def payment(self, index: int, document: dict, paid: int, when_ms: int | None = None) -> dict:
        _created, modified, day, period = self.dated(index, when_ms)
        party_ref = document["supplier"]
        currency = document["currencyId"]
        return {
            "type": "Payment",
            "refNbr": f"{index + 1:06d}",
            "status": "Closed",
            "hold": False,
            "applicationDate": day_text(day),
            "applicationPeriod": period.period_id,
            "paymentRef": f"BET{index + 1:07d}",
            "supplier": party_ref,
            "paymentMethod": "BANK",
            "cashAccount": self.ctx.profile.roles["bank"],
            "currency": _currency_ref(currency, self.ctx.profile.base_currency),
            "description": f"{self.ctx.profile.words['payment']} {party_ref['name']}",
            "paymentAmount": money(paid),
            "financeCharges": money(0),
            "balance": money(0),
            "unappliedBalance": money(0),
            "appliedAmount": money(paid),
            "released": True,
            "lastModifiedDateTime": timestamp(modified),
            "branch": self.masters.branch_refs[0]["number"],
            "paymentLines": [{
                "docType": document["documentType"],
                "invoiceRefNbr": document["referenceNumber"],
                "amountPaid": money(paid),
                "cashDiscountTaken": money(0),
                "date": document["date"],
                "dueDate": document["dueDate"],
                "balance": money(cents(document["amount"]) - paid),
                "currency": currency,
                "postPeriod": document["postPeriod"],
            }],
            "timeStamp": version_stamp(modified),
        }


def cents(value: str | Decimal) -> int:
    """Minor units of an amount: a Decimal, or a marked value written by `money`."""
    if isinstance(value, Decimal):
        return int(value * 100)
    text = value.strip("\ue000")
    negative = text.startswith("-")
    whole, fraction = text.lstrip("-").split(".")
    minor = int(whole) * 100 + int(fraction)
    return -minor if negative else minor


def _currency_ref(currency: str, base: str) -> dict:
    name, symbol = CURRENCY_NAMES[currency]
    return {"id": currency, "description": name, "symbol": symbol,
            "isBaseCurrency": currency == base, "decimalPrecision": 2}


class PurchaseOrderSource(DocumentSource):
    entity_name = "purchase_orders"
    period_field = None

    def order_lines(self, draw: Draw, party: Party, rate: int, order_nbr: str, day: int) -> list[dict]:
        m, profile = self.masters, self.ctx.profile
        scale = 10 if party.currency == "EUR" else 1
        lines = []
        for line_nbr in range(1, draw.between(1, 4) + 1):
            quantity, unit = draw.between(1, 20), draw.between(100_00, 4_000_00) // scale
            sub = draw.pick(m.subaccounts)
            account = profile.account(draw.pick(profile.expense_accounts))
            amount = quantity * unit
            lines.append({
                "lineNbr": line_nbr,
                "branch": m.branch_refs[0],
                "inventory": {"number": f"LIS-{100 + line_nbr}", "description": profile.words["licence"]},
                "lineType": "NonStock",
                "lineDescription": f"{profile.words['licence']} {line_nbr}",
                "uom": "STK",
                "orderQty": number(str(quantity)),
                "unitCost": money(unit),
                "unitCostInBaseCurrency": money(to_base(unit, rate)),
                "extCost": money(amount),
                "amount": money(amount),
                "account": {"type": account.type, "number": account.number, "description": account.description},
                "sub": sub.ref,
                "project": {"id": sub.project[0], "description": sub.project[1]},
                "requested": day_text(day + 14),
                "promised": day_text(day + 21),
                "orderType": "RegularOrder",
                "orderNumber": order_nbr,
            })
        return lines

    def build(self, index: int, when_ms: int | None = None) -> dict:
        _created, modified, day, period = self.dated(index, when_ms)
        draw = Draw(self.stream, index)
        party = self.masters.suppliers[draw.below(len(self.masters.suppliers))]
        rate = self.rate(party.currency, period)
        order_nbr = f"{index + 1:06d}"
        lines = self.order_lines(draw, party, rate, order_nbr, day)
        total = sum(cents(line["amount"]) for line in lines)
        is_open = when_ms is not None or _END_DAY - day <= 60
        return {
            "orderType": "RegularOrder",
            "orderNbr": order_nbr,
            "hold": False,
            "status": "Open" if is_open else "Closed",
            "date": day_text(day),
            "promisedOn": day_text(day + 21),
            "description": f"{self.ctx.profile.words['order']} {party.name}",
            "supplier": party.ref,
            "currency": party.currency,
            "exchangeRate": rate_text(rate),
            "lineTotal": money(total),
            "lineTotalInBaseCurrency": money(to_base(total, rate)),
            "taxTotal": money(0),
            "taxTotalInBaseCurrency": money(0),
            "orderTotal": money(total),
            "orderTotalInBaseCurrency": money(to_base(total, rate)),
            "branch": self.masters.branch_refs[0],
            "lines": lines,
            "lastModifiedDateTime": timestamp(modified),
            "timeStamp": version_stamp(modified),
        }


class PurchaseReceiptSource(DocumentSource):
    """Receipts of purchase orders (receipt i receives order i)."""

    entity_name = "purchase_receipts"
    period_field = "postPeriod"

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int,
                 orders: PurchaseOrderSource) -> None:
        super().__init__(ctx, masters, count)
        self.orders = orders

    def build(self, index: int, when_ms: int | None = None) -> dict:
        _created, modified, day, period = self.dated(index, when_ms)
        order = self.orders.build(min(index, len(self.orders) - 1))
        rate = self.rate(order["currency"], period)
        lines = [
            {
                "lineNbr": line["lineNbr"],
                "branchNumber": line["branch"],
                "inventory": line["inventory"],
                "lineType": line["lineType"],
                "transactionDescription": line["lineDescription"],
                "uom": line["uom"],
                "orderQty": line["orderQty"],
                "receiptQty": line["orderQty"],
                "unitCost": line["unitCost"],
                "extCost": line["extCost"],
                "amount": line["amount"],
                "account": line["account"],
                "sub": {"active": True, "id": line["sub"]["subaccountNumber"], "description": line["sub"]["description"]},
                "poOrderType": "RegularOrder",
                "poOrderNbr": order["orderNbr"],
                "poOrderLineNbr": line["lineNbr"],
            }
            for line in order["lines"]
        ]
        total = sum(cents(line["amount"]) for line in lines)
        quantity = sum(int(line["receiptQty"].strip("\ue000")) for line in lines)
        return {
            "receiptType": "PoReceipt",
            "receiptNbr": f"{index + 1:06d}",
            "hold": False,
            "status": "Released",
            "date": day_text(day),
            "postPeriod": period.post_period,
            "supplier": order["supplier"],
            "currency": order["currency"],
            "exchangeRate": rate_text(rate),
            "createBill": True,
            "supplierRef": f"LS{index + 1:06d}",
            "totalQty": number(str(quantity)),
            "totalAmt": money(total),
            "controlTotal": money(total),
            "lastModifiedDateTime": timestamp(modified),
            "branchNumber": order["branch"],
            "lines": lines,
            "timeStamp": version_stamp(modified),
        }


# --- accounts receivable -------------------------------------------------------------------

class _CustomerDraw(NamedTuple):
    created: int
    modified: int
    day: int
    period: Period
    party: Party
    branch: dict
    rate: int
    lines: tuple[tuple[int, int, str, Subaccount, str], ...]  # (quantity, unit, account, subaccount, text)
    detail: int
    vat: int
    is_open: bool
    due: int
    balance: int


class CustomerDocumentSource(DocumentSource):
    """Customer invoices (lines in `invoiceLines`) or credit notes (lines in `lines`)."""

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int, *,
                 entity_name: str, document_type: str, lines_key: str) -> None:
        self.entity_name = entity_name
        super().__init__(ctx, masters, count)
        self.document_type = document_type
        self.lines_key = lines_key

    def _drawn(self, index: int, when_ms: int | None) -> _CustomerDraw:
        """What customer document `index` is, drawn (the record and its figures follow)."""
        created, modified, day, period = self.dated(index, when_ms)
        draw = Draw(self.stream, index)
        m, profile = self.masters, self.ctx.profile
        party = m.customers[draw.below(len(m.customers))]
        rate = self.rate(party.currency, period)
        branch = m.branch_refs[draw.below(len(m.branch_refs))]
        scale = 10 if party.currency == "EUR" else 1
        lines: list[tuple[int, int, str, Subaccount, str]] = []
        for _ in range(draw.between(1, 4)):
            quantity, unit = draw.between(1, 40), draw.between(200_00, 15_000_00) // scale
            if self.document_type == "CreditNote":
                unit //= 5
            account = draw.pick(profile.sales_accounts)
            text = profile.words["licence"] if account == profile.sales_accounts[0] else profile.words["consulting"]
            lines.append((quantity, unit, account, draw.pick(m.subaccounts), text))
        taxable = sum(quantity * unit for quantity, unit, *_ in lines)
        if draw.chance(1, 7):  # öresavrundning: a small negative line
            rounding = -draw.between(1, 9)
            lines.append((1, rounding, profile.roles["rounding"], m.subaccounts[0], profile.words["rounding"]))
        vat = half_up(taxable * profile.vat_percent, 100) if party.currency == profile.base_currency else 0
        detail = sum(quantity * unit for quantity, unit, *_ in lines)
        is_open, due = open_state(draw.below(100), day, party.terms_days, when_ms is not None)
        partly_paid = draw.chance(1, 10) and when_ms is None  # a new document has no payment yet
        return _CustomerDraw(created, modified, day, period, party, branch, rate, tuple(lines), detail, vat, is_open,
                             due, open_balance(detail + vat, is_open, partly_paid))

    def figures(self, index: int) -> DocumentFigures:
        drawn = self._drawn(index, None)
        rate, amount = drawn.rate, drawn.detail + drawn.vat
        return DocumentFigures(
            self.document_type, f"{index + 1:06d}", drawn.party.number, drawn.party.currency,
            tuple((account, sub.number, to_base(quantity * unit, rate))
                  for quantity, unit, account, sub, _ in drawn.lines),
            to_base(drawn.vat, rate), to_base(amount, rate), amount, drawn.balance, to_base(drawn.balance, rate))

    def build(self, index: int, when_ms: int | None = None) -> dict:
        drawn = self._drawn(index, when_ms)
        m, profile, party, rate, day = self.masters, self.ctx.profile, drawn.party, drawn.rate, drawn.day
        domestic = party.currency == profile.base_currency
        vat_code = {"id": "3" if domestic else "52", "description": f"{profile.vat_percent} %" if domestic else "0 %"}
        lines = [self._line(line_number, text, quantity, unit, rate, m.account_refs[account], sub.ref, vat_code,
                            drawn.branch)
                 for line_number, (quantity, unit, account, sub, text) in enumerate(drawn.lines, start=1)]
        detail, vat, balance = drawn.detail, drawn.vat, drawn.balance
        amount = detail + vat
        date = day_text(day)
        return {
            "documentType": self.document_type,
            "referenceNumber": f"{index + 1:06d}",
            "hold": False,
            "status": "Open" if drawn.is_open else "Closed",
            "documentDate": date,
            "origInvoiceDate": date,
            "documentDueDate": day_text(drawn.due),
            "postPeriod": drawn.period.post_period,
            "financialPeriod": drawn.period.period_id,
            "customer": party.ref,
            "currencyId": party.currency,
            "exchangeRate": rate_text(rate),
            "creditTerms": {"id": f"{party.terms_days}D", "description": f"{party.terms_days} {profile.words['days']}"},
            "amount": money(amount),
            "amountInCurrency": money(to_base(amount, rate)),
            "detailTotal": money(detail),
            "detailTotalInCurrency": money(to_base(detail, rate)),
            "vatTotal": money(vat),
            "vatTotalInCurrency": money(to_base(vat, rate)),
            "balance": money(balance),
            "balanceInCurrency": money(to_base(balance, rate)),
            "cashDiscount": money(0),
            "paymentMethod": {"id": "BANK", "description": "Bank transfer"},
            "paymentReference": f"{(index + 1) * 10 + (index % 10)}",
            "invoiceText": f"{profile.words['invoice'] if self.document_type == 'Invoice' else profile.words['credit']} {party.name}",
            "createdDateTime": timestamp(drawn.created),
            "lastModifiedDateTime": timestamp(drawn.modified),
            "location": m.location(party),
            "branchNumber": drawn.branch,
            self.lines_key: lines,
        }

    @staticmethod
    def _line(line_number: int, text: str, quantity: int, unit: int, rate: int, account_ref: dict,
              sub_ref: dict, vat_code: dict, branch: dict) -> dict:
        amount = quantity * unit
        return {
            "lineNumber": line_number,
            "description": text,
            "quantity": number(str(quantity)),
            "unitPrice": money(unit),
            "unitPriceInCurrency": money(to_base(unit, rate)),
            "amount": money(amount),
            "amountInCurrency": money(to_base(amount, rate)),
            "uom": "STK",
            "account": account_ref,
            "subaccount": sub_ref,
            "vatCode": vat_code,
            "branchNumber": branch,
        }


class CustomerPaymentSource(PaymentSource):
    """Customer payments of invoices, and refunds of credit notes, each settling one document."""

    entity_name = "customer_payments"
    period_field = "applicationPeriod"

    def payment(self, index: int, document: dict, paid: int, when_ms: int | None = None) -> dict:
        _created, modified, day, period = self.dated(index, when_ms)
        rate = self.rate(document["currencyId"], period)
        date = day_text(day)
        return {
            "type": "Refund" if document["documentType"] == "CreditNote" else "Payment",
            "refNbr": f"{index + 1:06d}",
            "status": "Closed",
            "hold": False,
            "applicationDate": date,
            "applicationPeriod": period.period_id,
            "paymentRef": document["paymentReference"],
            "customer": document["customer"],
            "paymentMethod": {"id": "BANK", "description": "Bank transfer"},
            "cashAccount": self.ctx.profile.roles["bank"],
            "currency": document["currencyId"],
            "paymentAmount": money(paid),
            "paymentAmountInCurrency": money(to_base(paid, rate)),
            "appliedToDocuments": money(paid),
            "availableBalance": money(0),
            "availableBalanceInCurrency": money(0),
            "branch": self.masters.branch_refs[0]["number"],
            "lastModifiedDateTime": timestamp(modified),
            "financialDetails": {"paymentDate": date},
            "paymentLines": [{
                "documentType": document["documentType"],
                "refNbr": document["referenceNumber"],
                "amountPaid": money(paid),
                "cashDiscountTaken": money(0),
                "date": document["documentDate"],
                "dueDate": document["documentDueDate"],
                "balance": money(cents(document["amount"]) - paid),
                "currency": document["currencyId"],
                "postPeriod": document["postPeriod"],
            }],
        }
