"""The general ledger: balanced journal batches and the GL balances they add up to.

The journal is the subledgers' postings (postings.py: every supplier and customer document and
payment, ModuleAP / ModuleAR) and the manual batches a bookkeeper enters (ModuleGL salaries,
ModuleCA bank charges and interest; by the calendar, ModuleGL opening balances, rent and the cost
of goods sold), period by period. Each period's batches come in a fixed order of their streams
(manual, supplier documents, supplier payments, customer invoices, credit notes, customer
payments, calendar), each stream in its own order, and take lastModifiedDateTime spread through the
period in that order: batch i is found by two binary searches, and a delta or period filter is an
index range, as for every other generated entity.

Every batch balances (debits = credits) and every line names an account and a subaccount whose
segments are the department and project. `/v2/generalLedgerBalance` is computed from the very
same lines (plus any mutation), so balances per period, account and subaccount reconcile with
the journal: yearToDateBalance = beginningBalance + periodToDateDebit - periodToDateCredit, and
income and expense accounts start each fiscal year at zero, while the equity account (Visma's
retained earnings account) begins each later fiscal year with the year before's result added,
as Visma's year-end close does, so that the balance sheet accounts' balances still add up to nil.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from visma_tableau_pipeline.sandbox.visma.calendar import Period
from visma_tableau_pipeline.sandbox.visma.determinism import Draw
from visma_tableau_pipeline.sandbox.visma.documents import (
    DocumentFigures,
    DocumentSource,
    PaymentSource,
    Settled,
    cents,
    to_base,
)
from visma_tableau_pipeline.sandbox.visma.masters import Masters
from visma_tableau_pipeline.sandbox.visma.postings import Line, Posting, PostingRules
from visma_tableau_pipeline.sandbox.visma.sources import CompanyContext, ListSource, SeriesSource, Source, parse_number
from visma_tableau_pipeline.sandbox.visma.wire import day_of_ms, day_text, money, ms_of, number, timestamp


class Stream(Protocol):
    """Postings of one kind, in time order: a stream of the journal."""

    def __len__(self) -> int: ...

    def period(self, index: int) -> str | None: ...

    def posting(self, index: int) -> Posting: ...


class ManualBatches(SeriesSource):
    """Batches a bookkeeper enters: salaries (ModuleGL), bank charges and interest (ModuleCA)."""

    entity_name = "journal_transactions"  # the draws' stream key
    period_field = "financialPeriod"

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int) -> None:
        super().__init__(ctx, count, ctx.data_start_ms, ctx.data_end_ms)
        self.masters = masters

    def posting(self, index: int, day: int | None = None) -> Posting:
        """Batch `index`, dated `day` (a date ordinal; default its place in the series)."""
        draw = Draw(self.stream, index)
        profile, subs = self.ctx.profile, self.masters.subaccounts
        roles, words = profile.roles, profile.words
        lines: list[Line] = []
        if draw.chance(1, 2):
            module, text = "ModuleCA", words["payment"]
            amount = draw.between(25_00, 900_00)
            if draw.chance(1, 2):
                lines.append(Line(roles["bank_fees"], subs[0], amount, 0, text))
                lines.append(Line(roles["bank"], subs[0], 0, amount, text))
            else:
                lines.append(Line(roles["bank"], subs[0], amount, 0, text))
                lines.append(Line(roles["interest"], subs[0], 0, amount, text))
        else:
            module, text, total = "ModuleGL", words["salary"], 0
            for _ in range(draw.between(1, 4)):
                amount = draw.between(30_000_00, 80_000_00)
                total += amount
                lines.append(Line(roles["salary"], draw.pick(subs), amount, 0, text))
            lines.append(Line(roles["salary_due"], subs[0], 0, total, text))
        return Posting(module, day_of_ms(self.created_ms(index)) if day is None else day, text, lines)


class CalendarBatches:
    """Batches a bookkeeper enters by the calendar (ModuleGL): the opening balances on the first
    day of the first fiscal year (bank and stock against equity), then each month the rent
    (paid from the bank, on the month's first day) and the cost of the goods sold (taken from
    stock, on its last day), in every period the data reaches. The statements (issue 15) read
    them: a balance sheet that opens with equity, costs of goods and premises in the P&L.
    """

    MONTHLY = ("rent", "goods")  # the batches of each month, in order

    def __init__(self, ctx: CompanyContext, masters: Masters) -> None:
        self.ctx = ctx
        self.subs = masters.subaccounts
        self.stream = ctx.key("calendar_batches")
        last_day = day_of_ms(ctx.data_end_ms)
        self.periods = [p for p in ctx.calendar.periods if p.start.toordinal() <= last_day]
        self.last_day = last_day

    def __len__(self) -> int:
        return 1 + len(self.MONTHLY) * len(self.periods)

    def _month(self, index: int) -> tuple[Period, str]:
        period_number, kind = divmod(index - 1, len(self.MONTHLY))
        return self.periods[period_number], self.MONTHLY[kind]

    def period(self, index: int) -> str | None:
        return self.periods[0].period_id if index == 0 else self._month(index)[0].period_id

    def posting(self, index: int) -> Posting:
        roles, words, sub = self.ctx.profile.roles, self.ctx.profile.words, self.subs[0]
        company = Draw(self.stream, 0)  # what stays the same every month
        bank, stock, rent = (company.between(1_500_000_00, 3_000_000_00), company.between(1_200_000_00, 1_800_000_00),
                             company.between(45_000_00, 90_000_00))
        if index == 0:
            text = words["opening"]
            return Posting("ModuleGL", self.periods[0].start.toordinal(), text, [
                Line(roles["bank"], sub, bank, 0, text), Line(roles["inventory"], sub, stock, 0, text),
                Line(roles["equity"], sub, 0, bank + stock, text)])
        period, kind = self._month(index)
        draw = Draw(self.stream, index)
        if kind == "rent":
            text = f"{words['rent']} {period.period_id}"
            return Posting("ModuleGL", period.start.toordinal(), text, [
                Line(roles["rent"], draw.pick(self.subs), rent, 0, text), Line(roles["bank"], sub, 0, rent, text)])
        text, used = f"{words['goods']} {period.period_id}", draw.between(20_000_00, 50_000_00)
        return Posting("ModuleGL", min(period.end.toordinal(), self.last_day), text, [
            Line(roles["cost_of_goods"], draw.pick(self.subs), used, 0, text),
            Line(roles["inventory"], sub, 0, used, text)])


class DocumentPostings:
    """The postings of a subledger's documents, one batch per document."""

    def __init__(self, documents: DocumentSource, rule: str, rules: PostingRules) -> None:
        self.documents = documents
        self.post = getattr(rules, rule)

    def __len__(self) -> int:
        return len(self.documents)

    def period(self, index: int) -> str | None:
        return self.documents.period(index)

    def posting(self, index: int) -> Posting:
        return self.post(self.documents.figures(index), day_of_ms(self.documents.created_ms(index)))


class PaymentPostings:
    """The postings of a subledger's payments: what each clears of its document, and the bank."""

    def __init__(self, payments: PaymentSource, rules: PostingRules) -> None:
        self.payments = payments
        self.rules = rules

    def __len__(self) -> int:
        return len(self.payments)

    def period(self, index: int) -> str | None:
        return self.payments.period(index)

    def posting(self, index: int) -> Posting:
        """Generated payment `index`'s batch, from what it settled (no record written)."""
        return self.settled(f"{index + 1:06d}", day_of_ms(self.payments.created_ms(index)),
                            self.payments.settlements.settled(index))

    def of(self, payment: dict, document: DocumentFigures, cleared_base: int) -> Posting:
        """The batch of a `payment` record, which cleared `cleared_base` of `document`'s base balance."""
        day = datetime.fromisoformat(str(payment["applicationDate"])).toordinal()
        return self.settled(payment["refNbr"], day, Settled(document.document_type, document.party, document.currency,
                                                             cents(payment["paymentAmount"]), cleared_base))

    def settled(self, reference: str, day: int, settled: Settled) -> Posting:
        """Payment `reference` on `day`: the bank moves the paid amount at the rate of the
        payment's period, the control account what it cleared at the document's own rate."""
        rate = self.payments.rate(settled.currency, self.payments.ctx.calendar.period_of_day(day))
        bank_base = to_base(settled.paid, rate)
        if self.payments.entity_name == "supplier_payments":
            return self.rules.supplier_payment(reference, settled.party, settled.cleared_base, bank_base, day)
        sign = -1 if settled.document_type == "CreditNote" else 1
        return self.rules.customer_payment(reference, settled.party, sign * settled.cleared_base, sign * bank_base,
                                           day)


class JournalSource(Source):
    """Journal batches of every stream, period by period; `/v2/journaltransaction` pages them by line."""

    entity_name = "journal_transactions"
    lines_field = "journalTransactionLines"
    period_field = "financialPeriod"
    monotonic = True

    def __init__(self, ctx: CompanyContext, masters: Masters, manual: ManualBatches,
                 streams: Sequence[Stream]) -> None:
        self.ctx = ctx
        self.masters = masters
        self.manual = manual
        self.streams: tuple[Stream, ...] = (manual, *streams)
        self._layout: tuple[list[Period], list[int], list[int]] | None = None
        self._scan: tuple[bytearray, Totals] | None = None
        self._lock = threading.RLock()

    # --- where batch i is --------------------------------------------------------------

    def layout(self) -> tuple[list[Period], list[int], list[int]]:
        """(periods, offsets, firsts): batches of period p and stream s are the batch numbers
        offsets[p*S+s] .. offsets[p*S+s+1]-1, stream indices from firsts[p*S+s]."""
        with self._lock:
            if self._layout is None:
                periods = self.ctx.calendar.periods
                offsets, firsts = [0], []
                for period in periods:
                    for stream in self.streams:
                        def period_of(index: int, stream: Stream = stream) -> str:
                            return stream.period(index) or ""  # every batch has its period

                        first = bisect_left(range(len(stream)), period.period_id, key=period_of)
                        last = bisect_right(range(len(stream)), period.period_id, key=period_of)
                        firsts.append(first)
                        offsets.append(offsets[-1] + last - first)
                self._layout = (periods, offsets, firsts)
            return self._layout

    def _locate(self, index: int) -> tuple[Period, int, int, int, int]:
        """(period, stream number, stream index, position in the period, batches in the period)."""
        periods, offsets, firsts = self.layout()
        slot = bisect_right(offsets, index) - 1
        count = len(self.streams)
        period_number, stream_number = divmod(slot, count)
        period_start = offsets[period_number * count]
        period_batches = offsets[(period_number + 1) * count] - period_start
        return (periods[period_number], stream_number, firsts[slot] + index - offsets[slot],
                index - period_start, period_batches)

    def __len__(self) -> int:
        return self.layout()[1][-1]

    def period(self, index: int) -> str | None:
        return self._locate(index)[0].period_id

    def modified_ms(self, index: int) -> int:
        """Spread through the batch's period in journal order (never after the data ends)."""
        period, _, _, position, batches = self._locate(index)
        start, end = self._period_span(period)
        return start + (position + 1) * (end - start) // (batches + 1)

    def _period_span(self, period: Period) -> tuple[int, int]:
        """(first ms, end ms) of the times the batches of `period` are spread over."""
        start = ms_of(datetime(period.start.year, period.start.month, period.start.day))
        end = min(ms_of(datetime(period.end.year, period.end.month, period.end.day)) + 86_400_000,
                  self.ctx.data_end_ms)
        return start, end

    def posting(self, index: int) -> Posting:
        _, stream_number, stream_index, _, _ = self._locate(index)
        return self.streams[stream_number].posting(stream_index)

    def index_of(self, key: tuple[str, ...]) -> int | None:
        value = parse_number(key[1])
        return None if value is None else value - 1

    # --- what every batch adds up to -------------------------------------------------------

    def scan(self) -> tuple[bytearray, Totals]:
        """Lines per batch (one byte each) and debit and credit per period, account and
        subaccount, over every generated batch: one pass, the first time either is needed."""
        with self._lock:
            if self._scan is None:
                counts = bytearray()
                totals: Totals = defaultdict(lambda: [0, 0, 0])
                periods, offsets, firsts = self.layout()
                streams = len(self.streams)
                for period_number, period in enumerate(periods):
                    period_id, (start, end) = period.period_id, self._period_span(period)
                    period_start = offsets[period_number * streams]
                    batches = offsets[(period_number + 1) * streams] - period_start
                    for stream_number, stream in enumerate(self.streams):
                        slot = period_number * streams + stream_number
                        for batch in range(offsets[slot], offsets[slot + 1]):
                            lines = stream.posting(firsts[slot] + batch - offsets[slot]).lines
                            modified = start + (batch - period_start + 1) * (end - start) // (batches + 1)
                            counts.append(len(lines))
                            for line in lines:
                                entry = totals[(period_id, line.account, line.sub.number)]
                                entry[0] += line.debit
                                entry[1] += line.credit
                                entry[2] = modified  # batches of a period come in time order
                self._scan = (counts, dict(totals))
            return self._scan

    def line_counts(self) -> bytearray:
        return self.scan()[0]

    # --- the record ------------------------------------------------------------------------

    def build(self, index: int, when_ms: int | None = None) -> dict:
        if when_ms is None:
            posting, modified = self.posting(index), self.modified_ms(index)
        else:  # a new manual batch, entered now
            posting, modified = self.manual.posting(index, day_of_ms(when_ms)), when_ms
        return self.render_batch(index, posting, modified)

    def render_batch(self, index: int, posting: Posting, modified_ms: int) -> dict:
        """JournalTransactionDto of `posting` as batch number index + 1."""
        profile = self.ctx.profile
        period = self.ctx.calendar.period_of_day(posting.day)
        batch = f"{index + 1:06d}"
        branch = self.masters.branch_refs[0]["number"]
        debit = sum(line.debit for line in posting.lines)
        rendered = []
        for number_, line in enumerate(posting.lines, start=1):
            account = profile.account(line.account)
            rendered.append({
                "lineNumber": number_,
                "accountNumber": line.account,
                "description": account.description,
                "subaccount": line.sub.ref,
                "referenceNumber": line.reference or batch,
                "debitAmount": money(line.debit),
                "debitAmountInCurrency": money(line.debit),
                "creditAmount": money(line.credit),
                "creditAmountInCurrency": money(line.credit),
                "transactionDescription": line.text,
                "branch": branch,
                "module": posting.module,
                "project": {"id": line.sub.project[0], "description": line.sub.project[1]},
                **({"customerSupplier": line.party} if line.party else {}),
            })
        return {
            "module": posting.module,
            "batchNumber": batch,
            "status": "Posted",
            "hold": False,
            "transactionDate": day_text(posting.day),
            "postPeriod": period.post_period,
            "financialPeriod": period.period_id,
            "ledger": "1",
            "ledgerDescription": "Hovedbok" if profile.country == "NO" else "Huvudbok",
            "currencyId": profile.base_currency,
            "exchangeRate": number("1.0000"),
            "autoReversing": False,
            "reversingEntry": False,
            "description": f"{posting.description} {batch}" if posting.module in ("ModuleGL", "ModuleCA")
            else posting.description,
            "debitTotal": money(debit),
            "debitTotalInCurrency": money(debit),
            "creditTotal": money(debit),
            "creditTotalInCurrency": money(debit),
            "controlTotal": money(debit),
            "controlTotalInCurrency": money(debit),
            "lastModifiedDateTime": timestamp(modified_ms),
            "branch": branch,
            "journalTransactionLines": rendered,
        }


# --- GL balances -------------------------------------------------------------------------

Totals = dict[tuple[str, str, str], list]  # (period, account, sub) -> [debit, credit, modified ms]


def base_totals(journal: JournalSource) -> Totals:
    """Debit and credit per period, account and subaccount over every generated batch."""
    return journal.scan()[1]


def apply_batches(totals: Totals, batches: Iterable[dict], sign: int, modified_ms: int) -> None:
    """Add (sign 1) or remove (sign -1) the lines of clean batch records; the balances they
    touch take `modified_ms` as their lastModifiedDateTime."""
    for batch in batches:
        period = batch["financialPeriod"]
        for line in batch["journalTransactionLines"]:
            entry = totals.setdefault((period, line["accountNumber"], line["subaccount"]["subaccountNumber"]), [0, 0, 0])
            entry[0] += sign * int(Decimal(line["debitAmount"]) * 100)
            entry[1] += sign * int(Decimal(line["creditAmount"]) * 100)
            entry[2] = max(entry[2], modified_ms)


def balance_source(ctx: CompanyContext, masters: Masters, totals: Totals) -> ListSource:
    """GeneralLedgerBalanceDto per period x account x subaccount, ordered that way."""
    calendar = ctx.calendar
    profile = ctx.profile
    periods = [p.period_id for p in calendar.periods]
    last_period = max(key[0] for key in totals) if totals else periods[0]
    periods = periods[: periods.index(last_period) + 1]
    combos = sorted({(account, sub) for _, account, sub in totals})
    subs = {s.number: s for s in masters.subaccounts}
    branch = masters.branch_refs[0]
    ledger = {"id": "1", "description": "Hovedbok" if profile.country == "NO" else "Huvudbok"}
    period_modified = _period_modified(totals)
    results = _year_results(ctx, totals)
    retained = (profile.roles["equity"], masters.subaccounts[0].number)
    rows: list[tuple[str, str, str, dict, int]] = []
    for account_number, sub_number in combos:
        account = profile.account(account_number)
        carries = account.type in ("Asset", "Liability")
        running = 0
        for period_id in periods:
            period = calendar.by_id[period_id]
            if period.number == 1 and not carries:
                running = 0
            if period.number == 1 and (account_number, sub_number) == retained:
                running += results.get(period.year - 1, 0)
            debit, credit, modified = totals.get((period_id, account_number, sub_number), (0, 0, 0))
            beginning = running
            running = beginning + debit - credit
            modified = modified or period_modified.get(period_id) or _period_start_ms(ctx, period_id)
            rows.append((period_id, account_number, sub_number, {
                "branch": branch,
                "ledger": ledger,
                "balanceType": "Actual",
                "financialPeriod": period_id,
                "account": {"type": account.type, "number": account.number, "description": account.description},
                "subaccountId": str(subs[sub_number].subaccount_id),
                "subAccountCd": sub_number,
                "currencyId": profile.base_currency,
                "periodToDateDebit": money(debit),
                "periodToDateCredit": money(credit),
                "beginningBalance": money(beginning),
                "yearToDateBalance": money(running),
                "periodToDateDebitInCurrency": money(debit),
                "periodToDateCreditInCurrency": money(credit),
                "beginningBalanceInCurrency": money(beginning),
                "yearToDateBalanceInCurrency": money(running),
                "yearClosed": False,
                "lastModifiedDateTime": timestamp(modified),
            }, modified))
    rows.sort(key=lambda row: row[:3])
    source = ListSource([row[3] for row in rows],
                        ("branch.number", "ledger.id", "balanceType", "financialPeriod", "account.number", "subAccountCd"),
                        [row[4] for row in rows])
    source.entity_name = "gl_balances"
    source.period_field = "financialPeriod"
    return source


def _year_results(ctx: CompanyContext, totals: Totals) -> dict[int, int]:
    """Each fiscal year's result (debit positive: a profit is negative) on its income and expense
    accounts: what Visma's year-end close carries into the retained earnings account."""
    results: dict[int, int] = defaultdict(int)
    for (period_id, account_number, _), (debit, credit, _) in totals.items():
        if ctx.profile.account(account_number).type in ("Income", "Expense"):
            results[ctx.calendar.by_id[period_id].year] += debit - credit
    return results


def _period_modified(totals: Totals) -> dict[str, int]:
    latest: dict[str, int] = {}
    for (period, _, _), (_, _, modified) in totals.items():
        latest[period] = max(latest.get(period, 0), modified)
    return latest


def _period_start_ms(ctx: CompanyContext, period_id: str) -> int:
    start = ctx.calendar.by_id[period_id].start
    return ms_of(datetime(start.year, start.month, start.day))

