"""The financial statements finance teams read: profit and loss, and the balance sheet.

Both come from the GL balances (`/v2/generalLedgerBalance`, actual balances summed over branches
and subaccounts, base currency: `period_close.trial_balance`) and the chart of accounts, whose
`type` (Asset, Liability, Income, Expense: the only four Visma's AccountDto knows) sorts each
account into a statement and whose `accountClass` / `accountClassDescription` group it, so that a
Tableau user drills from type to class to account.

Profit and loss (Income and Expense accounts), per company, period and account. The sign rule:
every amount is credits minus debits, so income is positive, costs are negative, and the sum of a
period's rows is its result (a profit positive). `year_to_date` is the account's closing balance
in that sign (Visma opens income and expense accounts at zero each fiscal year), and
`same_period_last_year` the period with the same number one fiscal year before (empty when the
GL holds no balances for that period).

Balance sheet (Asset and Liability accounts), per company, period end and account: the closing
balance, assets debit positive and liabilities credit positive. Visma types equity accounts
`Liability`; their class (EGENKAPITAL, EGET KAPITAL, ...) tells them apart. The year's result to
date (income and expense not yet carried to equity by the year-end close) is a line of its own
(`line_type` result) on the liabilities side, so that at every period end assets equal
liabilities and equity plus the result.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import pandas as pd

from visma_tableau_pipeline.marts.decimals import EXACT, decimal_totals, total_differences
from visma_tableau_pipeline.marts.fields import day, text
from visma_tableau_pipeline.marts.inputs import MartInputs
from visma_tableau_pipeline.marts.period_close import chart_of_accounts, trial_balance
from visma_tableau_pipeline.marts.schema import DATE, INT, MONEY, TEXT, TableSchema, columns

PROFIT_AND_LOSS_TYPES = ("Income", "Expense")
BALANCE_SHEET_TYPES = ("Asset", "Liability")
ASSETS, LIABILITIES = "assets", "liabilities_and_equity"  # balance sheet sides
ACCOUNT, RESULT = "account", "result"  # balance sheet line types
RESULT_DESCRIPTION = "Result for the year to date"

_ACCOUNT_COLUMNS = (("account_number", TEXT), ("account_description", TEXT), ("account_type", TEXT),
                    ("account_class", TEXT), ("account_class_description", TEXT))

PROFIT_AND_LOSS = TableSchema("profit_and_loss", columns(
    ("company_id", TEXT), ("financial_period", TEXT), ("fiscal_year", INT), ("period_number", INT),
    *_ACCOUNT_COLUMNS,
    ("period_amount_base_currency", MONEY), ("year_to_date_base_currency", MONEY),
    ("same_period_last_year_base_currency", MONEY),
))

BALANCE_SHEET = TableSchema("balance_sheet", columns(
    ("company_id", TEXT), ("financial_period", TEXT), ("period_end", DATE), ("line_type", TEXT),
    ("statement_side", TEXT), *_ACCOUNT_COLUMNS, ("closing_balance_base_currency", MONEY),
))


def _accounts_of_types(inputs: MartInputs, totals: pd.DataFrame,
                       types: tuple[str, ...]) -> tuple[pd.DataFrame, dict[int, dict[str, str | None]]]:
    """The rows of the trial balance `totals` on accounts whose chart-of-accounts type is one of
    `types`, and each kept row's account columns by its index."""
    accounts = chart_of_accounts(inputs)
    details: dict[int, dict[str, str | None]] = {}
    keep = []
    for position, row in enumerate(totals.itertuples(index=False)):
        account = accounts.get((row.company_id, row.account_number)) or {}
        if text(account, "type") in types:
            keep.append(position)
            details[position] = {"account_number": row.account_number,
                                 "account_description": text(account, "description"),
                                 "account_type": text(account, "type"),
                                 "account_class": text(account, "accountClass"),
                                 "account_class_description": text(account, "accountClassDescription")}
    return totals.iloc[keep], details


def build_profit_and_loss(inputs: MartInputs) -> pd.DataFrame:
    """The P&L per company, financial period and account, by the sign rule of the module docstring."""
    everything = trial_balance(inputs)
    periods = set(zip(everything["company_id"], everything["financial_period"], strict=True))
    totals, details = _accounts_of_types(inputs, everything, PROFIT_AND_LOSS_TYPES)
    with localcontext(EXACT):
        movement = {(row.company_id, row.financial_period, row.account_number): row.credits - row.debits
                    for row in totals.itertuples(index=False)}
        rows = []
        for position, row in zip(totals.index, totals.itertuples(index=False), strict=True):
            period = row.financial_period or ""
            last_year = f"{int(period[:4]) - 1}{period[4:]}" if period[:4].isdigit() else ""
            rows.append({
                "company_id": row.company_id, "financial_period": period,
                "fiscal_year": int(period[:4]) if period[:4].isdigit() else None,
                "period_number": int(period[4:]) if period[4:].isdigit() else None,
                **details[position],
                "period_amount_base_currency": row.credits - row.debits,
                "year_to_date_base_currency": -(row.opening + row.debits - row.credits),
                "same_period_last_year_base_currency":
                    movement.get((row.company_id, last_year, row.account_number), Decimal(0))
                    if (row.company_id, last_year) in periods else None,
            })
    return PROFIT_AND_LOSS.frame(rows)


def build_balance_sheet(inputs: MartInputs) -> pd.DataFrame:
    """The balance sheet per company, period end and account, with the result as its own line."""
    totals, details = _accounts_of_types(inputs, trial_balance(inputs), BALANCE_SHEET_TYPES)
    ends = {(str(period.get("company_id", "")), text(period, "period")): day(period, "endDate")
            for period in inputs.of("financial_periods")}
    rows = []
    with localcontext(EXACT):
        for position, row in zip(totals.index, totals.itertuples(index=False), strict=True):
            closing = row.opening + row.debits - row.credits
            asset = details[position]["account_type"] == "Asset"
            rows.append({"company_id": row.company_id, "financial_period": row.financial_period,
                         "period_end": ends.get((row.company_id, row.financial_period)), "line_type": ACCOUNT,
                         "statement_side": ASSETS if asset else LIABILITIES, **details[position],
                         "closing_balance_base_currency": closing if asset else -closing})
        results = profit_and_loss_results(build_profit_and_loss(inputs), "year_to_date_base_currency")
        rows.extend({"company_id": row.company_id, "financial_period": row.financial_period,
                     "period_end": ends.get((row.company_id, row.financial_period)), "line_type": RESULT,
                     "statement_side": LIABILITIES, "account_number": "", "account_description": RESULT_DESCRIPTION,
                     "closing_balance_base_currency": row.year_to_date_base_currency}
                    for row in results.itertuples(index=False))
    return BALANCE_SHEET.frame(rows)


def profit_and_loss_results(profit_and_loss: pd.DataFrame, column: str = "period_amount_base_currency") -> pd.DataFrame:
    """The result (sum of `column`) per company and period of a P&L frame, as exact Decimals."""
    return decimal_totals(profit_and_loss, ["company_id", "financial_period"], [column])


def balance_sheet_differences(balance_sheet: pd.DataFrame) -> pd.DataFrame:
    """Company period ends where the sheet does not balance, as `decimals.total_differences`
    gives them: the assets side as the table's total, liabilities, equity and result as the
    source's (empty when every period end balances)."""
    by, sides = ["company_id", "financial_period"], balance_sheet["statement_side"]
    return total_differences(balance_sheet[sides == ASSETS], balance_sheet[sides == LIABILITIES], by,
                             ["closing_balance_base_currency"])


def gl_result_differences(profit_and_loss: pd.DataFrame, gl_balances: pd.DataFrame) -> pd.DataFrame:
    """Company periods whose P&L result differs from the GL's net movement (credits minus debits,
    base currency) on its income and expense accounts, as the `gl_balances` table holds them
    (actual balances, typed by the balance's own account); empty when every period agrees."""
    movement = gl_balances[(gl_balances["balance_type"].fillna("Actual") == "Actual")
                           & gl_balances["account_type"].isin(PROFIT_AND_LOSS_TYPES)]
    with localcontext(EXACT):
        net = [(Decimal(0) if pd.isna(credit) else credit) - (Decimal(0) if pd.isna(debit) else debit)
               for credit, debit in zip(movement["period_credit_base_currency"].astype(object),
                                        movement["period_debit_base_currency"].astype(object), strict=True)]
    # the key columns keep their types: an empty list would make them float64, which no merge takes
    gl = movement[["company_id", "financial_period"]].reset_index(drop=True)
    gl["result_base_currency"] = pd.Series(net, dtype=object)
    table = profit_and_loss.rename(columns={"period_amount_base_currency": "result_base_currency"})
    return total_differences(table, gl, ["company_id", "financial_period"], ["result_base_currency"])
