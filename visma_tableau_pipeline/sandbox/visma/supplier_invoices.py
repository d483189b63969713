"""Supplier invoices, the benchmark entity: rendered straight to JSON text.

A million invoices at 1000 a page must cost well under 30 s of server CPU, so this source does
not build dicts for the JSON encoder: it writes each invoice from pre-rendered fragments
(supplier, account, subaccount with segments, branch) and integer amounts. `build` parses that
text, so the Python view of a record and the wire are the same by construction.

Each invoice has three lines; one in six ends in a rounding line between -0.09 and -0.01.
One in twelve is a credit adjustment (documentType CreditAdj, amounts positive as Visma writes them).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from visma_tableau_pipeline.sandbox.visma.calendar import Period
from visma_tableau_pipeline.sandbox.visma.determinism import mix
from visma_tableau_pipeline.sandbox.visma.documents import (
    DocumentFigures,
    DocumentSource,
    open_balance,
    open_state,
    rate_double,
    to_base,
)
from visma_tableau_pipeline.sandbox.visma.masters import TERMS_DAYS, Masters, version_stamp
from visma_tableau_pipeline.sandbox.visma.sources import CompanyContext
from visma_tableau_pipeline.sandbox.visma.wire import day_text, half_up, parse_json, timestamp


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _escaped(text: str) -> str:
    """A string's JSON-escaped contents, without the quotes."""
    return _json(text)[1:-1]


_HUNDREDTHS = [f"{i:02d}" for i in range(100)]


def amount_text(cents: int) -> str:
    """Minor units as a JSON number with two decimals: -5 -> -0.05, 123450 -> 1234.50."""
    if cents >= 0:
        whole, fraction = divmod(cents, 100)
        return f"{whole}.{_HUNDREDTHS[fraction]}"
    whole, fraction = divmod(-cents, 100)
    return f"-{whole}.{_HUNDREDTHS[fraction]}"


_ROUNDING = -1  # the account index of a rounding line


class _InvoiceDraw(NamedTuple):
    created: int
    modified: int
    day: int
    period: Period
    bits: int
    supplier: int
    doc_type: str
    rate: int
    domestic: bool
    # (quantity, unit, expense account index or _ROUNDING, subaccount index, text index)
    lines: tuple[tuple[int, int, int, int, int], ...]
    detail: int
    vat: int
    is_open: bool
    due: int
    balance: int


class SupplierInvoiceSource(DocumentSource):
    entity_name = "supplier_invoices"

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int) -> None:
        super().__init__(ctx, masters, count)
        profile = ctx.profile
        words = profile.words
        self._suppliers = masters.suppliers
        self._supplier_json = [_json(s.ref) for s in masters.suppliers]
        self._supplier_name = [_escaped(s.name) for s in masters.suppliers]
        # the tail of a line, `"account":{...},"subaccount":{...},"vatCode":{...}}`, for every
        # (domestic?, account, subaccount): one lookup instead of three substitutions
        vat_json = {True: _json({"id": "1", "description": f"{profile.vat_percent} %"}),
                    False: _json({"id": "0", "description": "0 %"})}

        def tail(account: str, sub: str, domestic: bool) -> str:
            return f'"account":{account},"subaccount":{sub},"vatCode":{vat_json[domestic]}}}'

        accounts = [_json(masters.account_refs[n]) for n in profile.expense_accounts]
        subs = [_json(s.ref) for s in masters.subaccounts]
        self._line_tails = {d: [[tail(a, sub, d) for sub in subs] for a in accounts] for d in (True, False)}
        self._expense_accounts = profile.expense_accounts
        self._rounding_account = profile.roles["rounding"]
        rounding_account = _json(masters.account_refs[self._rounding_account])
        self._rounding_tail = {d: tail(rounding_account, subs[0], d) for d in (True, False)}
        self._branch_json = [_json(b) for b in masters.branch_refs]
        self._terms_json = {d: _json({"id": f"{d}D", "description": f"{d} {words['days']}"}) for d in TERMS_DAYS}
        self._texts = [_escaped(words[w]) for w in ("licence", "consulting", "support", "hardware", "travel")]
        self._rounding_text = _escaped(words["rounding"])
        self._titles = {"Invoice": _escaped(words["invoice"]), "CreditAdj": _escaped(words["credit"])}
        self._base_currency = profile.base_currency
        self._vat_percent = profile.vat_percent
        self._party_blocks: dict[tuple[int, str], str] = {}
        self._day_blocks: dict[int, str] = {}

    def build(self, index: int, when_ms: int | None = None) -> dict:
        return parse_json(self.render(index, when_ms=when_ms))

    def _party_block(self, supplier: int, doc_type: str) -> str:
        """The members that follow from the supplier alone (cached)."""
        key = (supplier, doc_type)
        block = self._party_blocks.get(key)
        if block is None:
            party = self._suppliers[supplier]
            block = self._party_blocks[key] = (
                f'"supplier":{self._supplier_json[supplier]},"currencyId":"{party.currency}",'
                f'"creditTerms":{self._terms_json[party.terms_days]},'
                f'"paymentMethod":{{"id":"BANK","description":"Bank transfer"}},'
                f'"description":"{self._titles[doc_type]} {self._supplier_name[supplier]}",'
            )
        return block

    def _day_block(self, day: int) -> str:
        """The members that follow from the document date alone (cached)."""
        block = self._day_blocks.get(day)
        if block is None:
            period = self.ctx.calendar.period_of_day(day)
            date = day_text(day)
            block = self._day_blocks[day] = (
                f'"date":"{date}","origInvoiceDate":"{date}","postPeriod":"{period.post_period}",'
                f'"financialPeriod":"{period.period_id}",'
            )
        return block

    def _drawn(self, index: int, when_ms: int | None) -> _InvoiceDraw:
        """What invoice `index` is, drawn (its text and its figures follow)."""
        created, modified, day, period = self.dated(index, when_ms)
        bits = mix(self.stream ^ mix(index))
        supplier = bits % len(self._suppliers)
        party = self._suppliers[supplier]
        doc_type = "CreditAdj" if (bits >> 16) % 12 == 0 else "Invoice"
        domestic = party.currency == self._base_currency
        divisor = (10 if party.currency == "EUR" else 1) * (4 if doc_type == "CreditAdj" else 1)
        accounts, subs = len(self._line_tails[domestic]), len(self._line_tails[domestic][0])
        lines = []
        taxable = detail = 0
        for line_number in (1, 2, 3):
            if line_number == 3 and (bits >> 28) % 6 == 0:
                lines.append((1, -(1 + (bits >> 44) % 9), _ROUNDING, 0, 0))
                detail += lines[-1][1]
                continue
            line_bits = mix(bits + line_number)
            quantity = 1 + line_bits % 12
            unit = (50_00 + (line_bits >> 8) % 994_901) // divisor
            lines.append((quantity, unit, (line_bits >> 32) % accounts, (line_bits >> 40) % subs,
                          (line_bits >> 48) % len(self._texts)))
            taxable += quantity * unit
            detail += quantity * unit
        vat = half_up(taxable * self._vat_percent, 100) if domestic else 0
        is_open, due = open_state((bits >> 32) % 100, day, party.terms_days, when_ms is not None)
        balance = open_balance(detail + vat, is_open, (bits >> 40) % 10 == 0 and when_ms is None)
        return _InvoiceDraw(created, modified, day, period, bits, supplier, doc_type,
                            self.rate(party.currency, period), domestic, tuple(lines), detail, vat, is_open, due,
                            balance)

    def figures(self, index: int) -> DocumentFigures:
        drawn = self._drawn(index, None)
        rate, subs = drawn.rate, self.masters.subaccounts
        lines = tuple((self._rounding_account if account == _ROUNDING else self._expense_accounts[account],
                       subs[sub].number, to_base(quantity * unit, rate))
                      for quantity, unit, account, sub, _ in drawn.lines)
        amount = drawn.detail + drawn.vat
        vat_base = to_base(drawn.vat, rate)
        return DocumentFigures(drawn.doc_type, f"{index + 1:06d}", self._suppliers[drawn.supplier].number,
                               self._suppliers[drawn.supplier].currency, lines, vat_base,
                               to_base(drawn.detail, rate) + vat_base, amount, drawn.balance,
                               to_base(drawn.balance, rate))

    def render(self, index: int, suffix: str = "", when_ms: int | None = None) -> str:
        drawn = self._drawn(index, when_ms)
        rate, domestic, doc_type, supplier = drawn.rate, drawn.domestic, drawn.doc_type, drawn.supplier
        tails, texts = self._line_tails[domestic], self._texts
        lines = []
        for line_number, (quantity, unit, account, sub, text_index) in enumerate(drawn.lines, start=1):
            if account == _ROUNDING:
                line_tail, text = self._rounding_tail[domestic], self._rounding_text
            else:
                line_tail, text = tails[account][sub], texts[text_index]
            cost = quantity * unit
            unit_text, cost_text = amount_text(unit), amount_text(cost)
            if rate == 10_000:
                unit_base, cost_base = unit_text, cost_text
            else:
                unit_base, cost_base = amount_text(to_base(unit, rate)), amount_text(to_base(cost, rate))
            lines.append(
                f'{{"lineNumber":{line_number},"transactionDescription":"{text}","quantity":{quantity},'
                f'"uom":"STK","unitCost":{unit_text},"unitCostInCurrency":{unit_base},"cost":{cost_text},'
                f'"costInCurrency":{cost_base},{line_tail}'
            )
        detail, vat, balance = drawn.detail, drawn.vat, drawn.balance
        if rate == 10_000:
            detail_base, vat_base, balance_base = detail, vat, balance
        else:
            detail_base, vat_base, balance_base = (to_base(v, rate) for v in (detail, vat, balance))
        created, modified, day = drawn.created, drawn.modified, drawn.day
        return (
            f'{{"documentType":"{doc_type}","referenceNumber":"{index + 1:06d}","hold":false,'
            f'"status":"{"Open" if drawn.is_open else "Closed"}",{self._day_block(day)}'
            f'"dueDate":"{day_text(drawn.due)}",'
            f'{self._party_block(supplier, doc_type)}"exchangeRate":{rate_double(rate)},'
            f'"amount":{amount_text(detail + vat)},"detailTotal":{amount_text(detail)},'
            f'"detailTotalInCurrency":{amount_text(detail_base)},"vatTotal":{amount_text(vat)},'
            f'"vatTotalInCurrency":{amount_text(vat_base)},"balance":{amount_text(balance)},'
            f'"balanceInCurrency":{amount_text(balance_base)},"supplierReference":"F{supplier + 1:04d}-{index + 1}",'
            f'"createdDateTime":"{timestamp(created)}","lastModifiedDateTime":"{timestamp(modified)}",'
            f'"branchNumber":{self._branch_json[(drawn.bits >> 24) % len(self._branch_json)]},'
            f'"approvalStatus":"ApprovedInApproval","invoiceLines":[{",".join(lines)}],'
            f'"timeStamp":"{version_stamp(modified)}"{suffix}}}'
        )
