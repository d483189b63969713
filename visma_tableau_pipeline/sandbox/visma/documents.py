"""AP and AR documents: supplier invoices, payments, purchase orders and receipts, customer
invoices, credit notes and payments.

Amounts are integers in minor units until they are written. `amount`-like fields are in the
document currency; `...InCurrency` (and `...InBaseCurrency`) fields are in the company's base
currency: round_half_up(amount x exchangeRate, 2 decimals), each field on its own, so the base
amounts of lines may differ by a cent from the base amount of their header, as in real ledgers.

Open documents cluster in the last four months before the data ends, with due dates spread so
that every aging bucket (current, 1-30, 31-60, 61-90, over 90 days past due) has documents;
older documents are closed (balance 0) but for a few long-overdue ones.
"""

from __future__ import annotations

from decimal import Decimal

from visma_tableau_pipeline.sandbox.visma.calendar import DATA_END, Period
from visma_tableau_pipeline.sandbox.visma.determinism import Draw
from visma_tableau_pipeline.sandbox.visma.masters import CURRENCY_NAMES, Masters, Party, version_stamp
from visma_tableau_pipeline.sandbox.visma.sources import CompanyContext, SeriesSource, parse_number
from visma_tableau_pipeline.sandbox.visma.wire import (
    day_of_ms,
    day_text,
    half_up,
    money,
    number,
    timestamp,
)

_END_DAY = DATA_END.date().toordinal()


class DocumentSource(SeriesSource):
    """Documents numbered `000001`, `000002`, ... in creation order, dated through the data."""

    period_field = "financialPeriod"
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


# --- accounts payable ----------------------------------------------------------------------

class SupplierPaymentSource(DocumentSource):
    """Payments, each settling one earlier supplier invoice in full."""

    entity_name = "supplier_payments"
    period_field = "applicationPeriod"

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int,
                 invoices: DocumentSource) -> None:
        super().__init__(ctx, masters, count)
        self.invoices = invoices

    def build(self, index: int, when_ms: int | None = None) -> dict:
        created, modified, day, period = self.dated(index, when_ms)
        draw = Draw(self.stream, index)
        invoice = self.invoices.build(_earlier(draw, index, len(self), len(self.invoices)))
        party_ref = invoice["supplier"]
        currency = invoice["currencyId"]
        amount = _cents(invoice["amount"])
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
            "paymentAmount": money(amount),
            "financeCharges": money(0),
            "balance": money(0),
            "unappliedBalance": money(0),
            "appliedAmount": money(amount),
            "released": True,
            "lastModifiedDateTime": timestamp(modified),
            "branch": self.masters.branch_refs[0]["number"],
            "paymentLines": [{
                "docType": invoice["documentType"],
                "invoiceRefNbr": invoice["referenceNumber"],
                "amountPaid": money(amount),
                "cashDiscountTaken": money(0),
                "date": invoice["date"],
                "dueDate": invoice["dueDate"],
                "balance": money(0),
                "currency": currency,
                "postPeriod": invoice["postPeriod"],
            }],
            "timeStamp": version_stamp(modified),
        }


def _earlier(draw: Draw, index: int, count: int, target_count: int) -> int:
    """An index into another series that lies somewhat before `index`'s place in time."""
    position = index * target_count // max(count, 1)
    return max(0, min(target_count - 1, position - draw.between(0, max(1, target_count // 20))))


def _cents(value: str | Decimal) -> int:
    """Minor units of an amount: a Decimal, or a marked value written by `money`."""
    if isinstance(value, Decimal):
        return int(value * 100)
    text = value.strip("\ue000")
    negative = text.startswith("-")
    whole, fraction = text.lstrip("-").split(".")
    cents = int(whole) * 100 + int(fraction)
    return -cents if negative else cents


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
        created, modified, day, period = self.dated(index, when_ms)
        draw = Draw(self.stream, index)
        party = self.masters.suppliers[draw.below(len(self.masters.suppliers))]
        rate = self.rate(party.currency, period)
        order_nbr = f"{index + 1:06d}"
        lines = self.order_lines(draw, party, rate, order_nbr, day)
        total = sum(_cents(line["amount"]) for line in lines)
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
        created, modified, day, period = self.dated(index, when_ms)
        order = self.orders.build(min(index, len(self.orders) - 1))
        rate = self.rate(order["currency"], period)
        lines = []
        for line in order["lines"]:
            lines.append({
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
            })
        total = sum(_cents(line["amount"]) for line in lines)
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

class CustomerDocumentSource(DocumentSource):
    """Customer invoices (lines in `invoiceLines`) or credit notes (lines in `lines`)."""

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int, *,
                 entity_name: str, document_type: str, lines_key: str) -> None:
        self.entity_name = entity_name
        super().__init__(ctx, masters, count)
        self.document_type = document_type
        self.lines_key = lines_key

    def build(self, index: int, when_ms: int | None = None) -> dict:
        created, modified, day, period = self.dated(index, when_ms)
        draw = Draw(self.stream, index)
        m, profile = self.masters, self.ctx.profile
        party = m.customers[draw.below(len(m.customers))]
        rate = self.rate(party.currency, period)
        domestic = party.currency == profile.base_currency
        branch = m.branch_refs[draw.below(len(m.branch_refs))]
        vat_code = {"id": "3" if domestic else "52", "description": f"{profile.vat_percent} %" if domestic else "0 %"}
        scale = 10 if party.currency == "EUR" else 1
        count = draw.between(1, 4)
        lines, taxable, detail = [], 0, 0
        for line_number in range(1, count + 1):
            quantity, unit = draw.between(1, 40), draw.between(200_00, 15_000_00) // scale
            if self.document_type == "CreditNote":
                unit //= 5
            account = draw.pick(profile.sales_accounts)
            sub = draw.pick(m.subaccounts)
            text = profile.words["licence"] if account == profile.sales_accounts[0] else profile.words["consulting"]
            lines.append(self._line(line_number, text, quantity, unit, rate, m.account_refs[account], sub.ref,
                                    vat_code, branch))
            taxable += quantity * unit
        detail = taxable
        if draw.chance(1, 7):  # öresavrundning: a small negative line
            unit = -draw.between(1, 9)
            lines.append(self._line(count + 1, profile.words["rounding"], 1, unit, rate,
                                    m.account_refs[profile.roles["rounding"]], m.subaccounts[0].ref, vat_code, branch))
            detail += unit
        vat = half_up(taxable * profile.vat_percent, 100) if domestic else 0
        amount = detail + vat
        is_open, due = open_state(draw.below(100), day, party.terms_days, when_ms is not None)
        balance = open_balance(amount, is_open, draw.chance(1, 10))
        date = day_text(day)
        return {
            "documentType": self.document_type,
            "referenceNumber": f"{index + 1:06d}",
            "hold": False,
            "status": "Open" if is_open else "Closed",
            "documentDate": date,
            "origInvoiceDate": date,
            "documentDueDate": day_text(due),
            "postPeriod": period.post_period,
            "financialPeriod": period.period_id,
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
            "createdDateTime": timestamp(created),
            "lastModifiedDateTime": timestamp(modified),
            "location": m.location(party),
            "branchNumber": branch,
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


class CustomerPaymentSource(DocumentSource):
    """Customer payments, each settling one earlier customer invoice in full."""

    entity_name = "customer_payments"
    period_field = "applicationPeriod"

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int,
                 invoices: CustomerDocumentSource) -> None:
        super().__init__(ctx, masters, count)
        self.invoices = invoices

    def build(self, index: int, when_ms: int | None = None) -> dict:
        created, modified, day, period = self.dated(index, when_ms)
        draw = Draw(self.stream, index)
        invoice = self.invoices.build(_earlier(draw, index, len(self), len(self.invoices)))
        amount = _cents(invoice["amount"])
        rate = self.rate(invoice["currencyId"], period)
        date = day_text(day)
        return {
            "type": "Payment",
            "refNbr": f"{index + 1:06d}",
            "status": "Closed",
            "hold": False,
            "applicationDate": date,
            "applicationPeriod": period.period_id,
            "paymentRef": invoice["paymentReference"],
            "customer": invoice["customer"],
            "paymentMethod": {"id": "BANK", "description": "Bank transfer"},
            "cashAccount": self.ctx.profile.roles["bank"],
            "currency": invoice["currencyId"],
            "paymentAmount": money(amount),
            "paymentAmountInCurrency": money(to_base(amount, rate)),
            "appliedToDocuments": money(amount),
            "availableBalance": money(0),
            "availableBalanceInCurrency": money(0),
            "branch": self.masters.branch_refs[0]["number"],
            "lastModifiedDateTime": timestamp(modified),
            "financialDetails": {"paymentDate": date},
            "paymentLines": [{
                "documentType": invoice["documentType"],
                "refNbr": invoice["referenceNumber"],
                "amountPaid": money(amount),
                "cashDiscountTaken": money(0),
                "date": invoice["documentDate"],
                "dueDate": invoice["documentDueDate"],
                "balance": money(0),
                "currency": invoice["currencyId"],
                "postPeriod": invoice["postPeriod"],
            }],
        }
