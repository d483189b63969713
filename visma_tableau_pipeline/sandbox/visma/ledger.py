"""The general ledger: balanced journal batches and the GL balances they add up to.

Every batch balances (debits = credits) and every line names an account and a subaccount whose
segments are the department and project. `/v2/generalLedgerBalance` is computed from the very
same lines (plus any mutation), so balances per period, account and subaccount reconcile with
the journal: yearToDateBalance = beginningBalance + periodToDateDebit - periodToDateCredit, and
income and expense accounts start each fiscal year at zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from visma_tableau_pipeline.sandbox.visma.determinism import Draw
from visma_tableau_pipeline.sandbox.visma.masters import Masters, Subaccount
from visma_tableau_pipeline.sandbox.visma.documents import DocumentSource
from visma_tableau_pipeline.sandbox.visma.sources import CompanyContext, ListSource
from visma_tableau_pipeline.sandbox.visma.wire import day_text, half_up, money, ms_of, number, timestamp

MODULES = ("ModuleGL", "ModuleAP", "ModuleAR", "ModuleCA")


class Line(NamedTuple):
    account: str
    sub: Subaccount
    debit: int  # minor units
    credit: int
    text: str


class JournalSource(DocumentSource):
    """Journal batches, 2 to 6 lines each; `/v2/journaltransaction` pages them by line."""

    entity_name = "journal_transactions"
    lines_field = "journalTransactionLines"

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int) -> None:
        super().__init__(ctx, masters, count)
        self._line_counts: bytearray | None = None

    def lines(self, index: int) -> tuple[str, list[Line]]:
        """(module, balanced lines) of batch `index`."""
        draw = Draw(self.stream, index)
        profile, subs = self.ctx.profile, self.masters.subaccounts
        roles, words = profile.roles, profile.words
        module = MODULES[draw.below(10) % 4] if draw.chance(9, 10) else "ModuleGL"
        lines: list[Line] = []
        if module == "ModuleAP":
            total = 0
            for _ in range(draw.between(1, 3)):
                amount = draw.between(100_00, 20_000_00)
                total += amount
                lines.append(Line(draw.pick(profile.expense_accounts), draw.pick(subs), amount, 0, words["invoice"]))
            vat = half_up(total * profile.vat_percent, 100)
            lines.append(Line(roles["vat_in"], subs[0], vat, 0, words["invoice"]))
            lines.append(Line(roles["ap"], subs[0], 0, total + vat, words["invoice"]))
        elif module == "ModuleAR":
            total = 0
            for _ in range(draw.between(1, 3)):
                amount = draw.between(500_00, 40_000_00)
                total += amount
                lines.append(Line(draw.pick(profile.sales_accounts), draw.pick(subs), 0, amount, words["invoice"]))
            vat = half_up(total * profile.vat_percent, 100)
            lines.append(Line(roles["vat_out"], subs[0], 0, vat, words["invoice"]))
            rounding = draw.between(1, 9) if draw.chance(1, 5) else 0
            if rounding:
                lines.append(Line(roles["rounding"], subs[0], 0, rounding, words["rounding"]))
            lines.append(Line(roles["ar"], subs[0], total + vat + rounding, 0, words["invoice"]))
        elif module == "ModuleCA":
            amount = draw.between(25_00, 900_00)
            if draw.chance(1, 2):
                lines.append(Line(roles["bank_fees"], subs[0], amount, 0, words["payment"]))
                lines.append(Line(roles["bank"], subs[0], 0, amount, words["payment"]))
            else:
                lines.append(Line(roles["bank"], subs[0], amount, 0, words["payment"]))
                lines.append(Line(roles["interest"], subs[0], 0, amount, words["payment"]))
        else:
            total = 0
            for _ in range(draw.between(1, 4)):
                amount = draw.between(30_000_00, 80_000_00)
                total += amount
                lines.append(Line(roles["salary"], draw.pick(subs), amount, 0, words["salary"]))
            lines.append(Line(roles["salary_due"], subs[0], 0, total, words["salary"]))
        return module, lines

    def line_counts(self) -> bytearray:
        """Lines per batch for every generated batch (computed once, one byte each)."""
        if self._line_counts is None:
            self._line_counts = bytearray(len(self.lines(i)[1]) for i in range(len(self)))
        return self._line_counts

    def build(self, index: int, when_ms: int | None = None) -> dict:
        created, modified, day, period = self.dated(index, when_ms)
        module, lines = self.lines(index)
        profile = self.ctx.profile
        batch = f"{index + 1:06d}"
        branch = self.masters.branch_refs[0]["number"]
        debit = sum(line.debit for line in lines)
        rendered = []
        for number_, line in enumerate(lines, start=1):
            account = profile.account(line.account)
            rendered.append({
                "lineNumber": number_,
                "accountNumber": line.account,
                "description": account.description,
                "subaccount": line.sub.ref,
                "referenceNumber": batch,
                "debitAmount": money(line.debit),
                "debitAmountInCurrency": money(line.debit),
                "creditAmount": money(line.credit),
                "creditAmountInCurrency": money(line.credit),
                "transactionDescription": line.text,
                "branch": branch,
                "module": module,
                "project": {"id": line.sub.project[0], "description": line.sub.project[1]},
            })
        return {
            "module": module,
            "batchNumber": batch,
            "status": "Posted",
            "hold": False,
            "transactionDate": day_text(day),
            "postPeriod": period.post_period,
            "financialPeriod": period.period_id,
            "ledger": "1",
            "ledgerDescription": "Hovedbok" if profile.country == "NO" else "Huvudbok",
            "currencyId": profile.base_currency,
            "exchangeRate": number("1.0000"),
            "autoReversing": False,
            "reversingEntry": False,
            "description": f"{lines[0].text} {batch}",
            "debitTotal": money(debit),
            "debitTotalInCurrency": money(debit),
            "creditTotal": money(debit),
            "creditTotalInCurrency": money(debit),
            "controlTotal": money(debit),
            "controlTotalInCurrency": money(debit),
            "lastModifiedDateTime": timestamp(modified),
            "branch": branch,
            "journalTransactionLines": rendered,
        }


# --- GL balances -------------------------------------------------------------------------

Totals = dict[tuple[str, str, str], list]  # (period, account, sub) -> [debit, credit, modified ms]


def base_totals(journal: JournalSource) -> Totals:
    """Debit and credit per period, account and subaccount over every generated batch."""
    totals: Totals = defaultdict(lambda: [0, 0, 0])
    for index in range(len(journal)):
        period = journal.period(index)
        modified = journal.modified_ms(index)
        for line in journal.lines(index)[1]:
            entry = totals[(period, line.account, line.sub.number)]
            entry[0] += line.debit
            entry[1] += line.credit
            entry[2] = max(entry[2], modified)
    return dict(totals)


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
    rows: list[tuple[str, str, str, dict, int]] = []
    for account_number, sub_number in combos:
        account = profile.account(account_number)
        carries = account.type in ("Asset", "Liability")
        running = 0
        for period_id in periods:
            period = calendar.by_id[period_id]
            if period.number == 1 and not carries:
                running = 0
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


def _period_modified(totals: Totals) -> dict[str, int]:
    latest: dict[str, int] = {}
    for (period, _, _), (_, _, modified) in totals.items():
        latest[period] = max(latest.get(period, 0), modified)
    return latest


def _period_start_ms(ctx: CompanyContext, period_id: str) -> int:
    start = ctx.calendar.by_id[period_id].start
    return ms_of(datetime(start.year, start.month, start.day))

