"""Master data: accounts, dimensions, subaccounts, branches, ledgers, currencies, periods,
suppliers, customers and employees of one company.

Small lists are built whole. Suppliers, customers and employees grow with the demo size and are
generated on demand like documents; their facts (number, name, currency, terms) are kept in a
compact list because every document refers to them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date

from visma_tableau_pipeline.sandbox.visma.calendar import FiscalCalendar, PeriodClosings
from visma_tableau_pipeline.sandbox.visma.companies import CompanyProfile
from visma_tableau_pipeline.sandbox.visma.determinism import Draw
from visma_tableau_pipeline.sandbox.visma.sources import (
    DAY_MS,
    CompanyContext,
    ListSource,
    SeriesSource,
    Source,
    parse_number,
)
from visma_tableau_pipeline.sandbox.visma.wire import money, timestamp

COUNTRY_NAMES = {"NO": "Norge", "SE": "Sverige", "FI": "Finland", "DE": "Tyskland",
                 "NL": "Nederland", "IE": "Irland", "EE": "Estland", "DK": "Danmark"}
CURRENCY_NAMES = {"NOK": ("Norske kroner", "kr"), "SEK": ("Svenska kronor", "kr"),
                  "EUR": ("Euro", "€"), "DKK": ("Danske kroner", "kr"), "USD": ("US Dollar", "$")}
TERMS_DAYS = (14, 30, 30, 45, 60)


def version_stamp(modified_ms: int) -> str:
    """The `timeStamp` field: an opaque row version, base64 as the API writes it."""
    return base64.b64encode(modified_ms.to_bytes(8, "big")).decode()


@dataclass(frozen=True)
class Subaccount:
    number: str
    subaccount_id: int
    department: tuple[str, str]
    project: tuple[str, str]
    ref: dict  # the nested subaccount object documents carry


@dataclass(frozen=True)
class Party:
    """A supplier, customer or employee as documents refer to it."""

    index: int
    number: str
    name: str
    currency: str
    country: str
    terms_days: int
    ref: dict  # {"internalId"?, "number", "name"}


class Masters:
    """The fixed master data of one company and the facts of its parties."""

    def __init__(self, ctx: CompanyContext, counts: dict[str, int]) -> None:
        self.ctx = ctx
        profile = ctx.profile
        self.account_refs = {
            a.number: {"type": a.type, "number": a.number, "description": a.description, "active": True}
            for a in profile.accounts
        }
        departments, projects = profile.segments[0], profile.segments[1]
        self.subaccounts: list[Subaccount] = []
        for dept in departments.values:
            for project in projects.values:
                number = f"{dept[0]}-{project[0]}"
                sub_id = len(self.subaccounts) + 1
                ref = {
                    "subaccountNumber": number,
                    "subaccountId": sub_id,
                    "description": f"{dept[1]} / {project[1]}",
                    "active": True,
                    "segments": [
                        {"segmentId": departments.segment_id, "segmentDescription": departments.description,
                         "segmentValue": dept[0], "segmentValueDescription": dept[1]},
                        {"segmentId": projects.segment_id, "segmentDescription": projects.description,
                         "segmentValue": project[0], "segmentValueDescription": project[1]},
                    ],
                }
                self.subaccounts.append(Subaccount(number, sub_id, dept, project, ref))
        self.branch_refs = [{"number": b[0], "name": b[1]} for b in profile.branches]
        self.suppliers = [self.supplier_facts(i) for i in range(counts["suppliers"])]
        self.customers = [self.customer_facts(i) for i in range(counts["customers"])]
        self.employees = [self.employee_facts(i) for i in range(counts["employees"])]

    def supplier_facts(self, index: int) -> Party:
        profile = self.ctx.profile
        draw = Draw(self.ctx.key("supplier-facts"), index)
        if index % 6 == 4:  # one supplier in six is abroad
            name, currency, country = profile.foreign_suppliers[(index // 6) % len(profile.foreign_suppliers)]
            if index >= 6 * len(profile.foreign_suppliers):
                name = f"{name} {index // (6 * len(profile.foreign_suppliers)) + 1}"
        else:
            name = _combined_name(profile.supplier_places, profile.supplier_trades, profile.legal_form, index)
            currency, country = profile.base_currency, profile.country
        number = f"{50001 + index}"
        return Party(index, number, name, currency, country, draw.pick(TERMS_DAYS),
                     {"internalId": 7000 + index, "number": number, "name": name})

    def customer_facts(self, index: int) -> Party:
        profile = self.ctx.profile
        draw = Draw(self.ctx.key("customer-facts"), index)
        places = tuple(reversed(profile.supplier_places))
        name = _combined_name(places, profile.customer_trades, profile.legal_form, index)
        foreign = index % 11 == 6
        currency = profile.other_currencies[index % len(profile.other_currencies)] if foreign else profile.base_currency
        number = f"{10001 + index}"
        return Party(index, number, name, currency, profile.country, draw.pick((14, 14, 30, 30, 60)),
                     {"number": number, "name": name})

    def employee_facts(self, index: int) -> Party:
        profile = self.ctx.profile
        first = profile.first_names[index % len(profile.first_names)]
        last = profile.last_names[(index // len(profile.first_names) + index) % len(profile.last_names)]
        number = f"{1001 + index}"
        return Party(index, number, f"{first} {last}", profile.base_currency, profile.country, 0,
                     {"internalId": str(3000 + index), "number": number, "name": f"{first} {last}"})

    def address(self, party: Party, address_id: int) -> dict:
        city = self.ctx.profile.branches[party.index % len(self.ctx.profile.branches)][2]
        if party.country != self.ctx.profile.country:
            city = {"FI": "Helsinki", "DE": "Berlin", "NL": "Amsterdam", "IE": "Dublin",
                    "EE": "Tallinn", "NO": "Bergen", "SE": "Malmö"}.get(party.country, city)
        return {"addressId": address_id, "addressLine1": f"Storgata {party.index % 97 + 1}",
                "postalCode": f"{(party.index * 37) % 9000 + 1000}", "city": city,
                "country": {"id": party.country, "name": COUNTRY_NAMES.get(party.country, party.country)}}

    def location(self, party: Party) -> dict:
        return {"countryId": party.country, "id": "HOVED", "name": "Primary location"}


def _combined_name(places: tuple[str, ...], trades: tuple[str, ...], legal_form: str, index: int) -> str:
    """`Bjørnstad Data AS`; past every combination a counter keeps names unique."""
    place = places[index % len(places)]
    trade = trades[(index // len(places)) % len(trades)]
    round_ = index // (len(places) * len(trades))
    return f"{place} {trade}{f' {round_ + 1}' if round_ else ''} {legal_form}"


# --- generated parties -------------------------------------------------------------------

class _PartySource(SeriesSource):
    """Parties are created over the half year before the documents start, and later."""

    prefix_offset = 0

    def __init__(self, ctx: CompanyContext, masters: Masters, count: int) -> None:
        super().__init__(ctx, count, ctx.data_start_ms - 180 * DAY_MS, ctx.data_end_ms - 5 * DAY_MS)
        self.masters = masters

    def index_of(self, key: tuple[str, ...]) -> int | None:
        number = parse_number(key[0])
        return None if number is None else number - self.prefix_offset


class SupplierSource(_PartySource):
    entity_name = "suppliers"
    prefix_offset = 50001

    def build(self, index: int, when_ms: int | None = None) -> dict:
        facts = self.masters.suppliers
        party = facts[index] if index < len(facts) else self.masters.supplier_facts(index)
        _created, modified = self.times(index, when_ms)
        draw = Draw(self.stream, index)
        vat_zone = "01" if party.country == self.ctx.profile.country else "03"
        record = {
            "internalId": party.ref["internalId"],
            "number": party.number,
            "name": party.name,
            "status": "Inactive" if draw.chance(1, 25) else "Active",
            "mainAddress": self.masters.address(party, 20000 + index),
            "mainContact": {"contactId": 40000 + index, "name": party.name,
                            "email": f"faktura@leverandor{index + 1}.example", "phone1": f"+47 {draw.between(20000000, 99999999)}"},
            "supplierClass": {"id": "NORDIC" if vat_zone == "01" else "FOREIGN",
                              "description": "Domestic suppliers" if vat_zone == "01" else "Foreign suppliers"},
            "creditTerms": {"id": f"{party.terms_days}D", "description": f"{party.terms_days} {self.ctx.profile.words['days']}"},
            "currencyId": party.currency,
            "paymentMethod": {"id": "BANK", "description": "Bank transfer"},
            "paymentBy": "DueDate",
            "paySeparately": False,
            "location": self.masters.location(party),
            "vatRegistrationId": f"{party.country}{900000000 + index * 7919 % 99999999}MVA",
            "corporateId": f"{900000000 + index * 7919 % 99999999}",
            "vatZone": {"id": vat_zone, "description": "Domestic" if vat_zone == "01" else "Import"},
            "lastModifiedDateTime": timestamp(modified),
            "timeStamp": version_stamp(modified),
        }
        return record


class CustomerSource(_PartySource):
    entity_name = "customers"
    prefix_offset = 10001

    def build(self, index: int, when_ms: int | None = None) -> dict:
        facts = self.masters.customers
        party = facts[index] if index < len(facts) else self.masters.customer_facts(index)
        created, modified = self.times(index, when_ms)
        draw = Draw(self.stream, index)
        return {
            "internalId": 9000 + index,
            "number": party.number,
            "name": party.name,
            "status": "OnHold" if draw.chance(1, 30) else "Active",
            "mainAddress": self.masters.address(party, 30000 + index),
            "mainContact": {"contactId": 50000 + index, "name": party.name,
                            "email": f"regnskap@kunde{index + 1}.example"},
            "customerClass": {"id": "STANDARD", "description": "Standard customers"},
            "creditTerms": {"id": f"{party.terms_days}D", "description": f"{party.terms_days} {self.ctx.profile.words['days']}"},
            "currencyId": party.currency,
            "creditVerification": "CreditLimit",
            "creditLimit": money(draw.between(50, 500) * 1_000_00),
            "creditDaysPastDue": 30,
            "statementType": "OpenItem",
            "vatRegistrationId": f"{party.country}{800000000 + index * 104729 % 99999999}",
            "corporateId": f"{800000000 + index * 104729 % 99999999}",
            "location": self.masters.location(party),
            "createdDateTime": timestamp(created),
            "lastModifiedDateTime": timestamp(modified),
        }


class EmployeeSource(_PartySource):
    entity_name = "employees"
    prefix_offset = 1001

    def build(self, index: int, when_ms: int | None = None) -> dict:
        facts = self.masters.employees
        party = facts[index] if index < len(facts) else self.masters.employee_facts(index)
        _, modified = self.times(index, when_ms)
        profile = self.ctx.profile
        department = profile.segments[0].values[index % len(profile.segments[0].values)]
        first, last = party.name.split(" ", 1)
        return {
            "employeeId": 3000 + index,
            "employeeNumber": party.number,
            "employeeName": party.name,
            "status": "Active",
            "department": department[0],
            "contact": {"firstName": first, "lastName": last, "name": party.name,
                        "email": f"ansatt{index + 1}@nordlys.example"},
            "address": self.masters.address(party, 60000 + index),
            "employeeClass": {"id": "EMPSTD", "description": "Standard employee"},
            "branch": self.masters.branch_refs[index % len(self.masters.branch_refs)],
            "calendarID": "NORDIC",
            "lastModifiedDateTime": timestamp(modified),
        }


# --- short lists -------------------------------------------------------------------------

def _list_source(name: str, records: list[dict], key: tuple[str, ...], modified: list[int] | None) -> ListSource:
    source = ListSource(records, key, modified)
    source.entity_name = name
    return source


def account_source(ctx: CompanyContext) -> ListSource:
    records, modified = [], []
    for i, account in enumerate(ctx.profile.accounts):
        at = ctx.data_start_ms - 200 * DAY_MS + i * 3_600_000
        modified.append(at)
        record = {
            "accountID": 100 + i,
            "accountCD": account.number,
            "accountClass": account.account_class,
            "accountClassDescription": account.account_class.capitalize(),
            "type": account.type,
            "active": True,
            "description": account.description,
            "useDefaultSub": False,
            "postOption": "Summary",
            "cashAccount": account.number == ctx.profile.roles["bank"],
            "lastModifiedDateTime": timestamp(at),
            "analisysCodeInfo": {"number": account.number[:2], "description": account.account_class},
            "allowManualEntry": account.control_module == "",
        }
        if account.control_module:
            record["controlAccountModule"] = account.control_module
        records.append(record)
    return _list_source("gl_accounts", records, ("accountCD",), modified)


def subaccount_source(ctx: CompanyContext, masters: Masters) -> ListSource:
    records, modified = [], []
    for i, sub in enumerate(masters.subaccounts):
        at = ctx.data_start_ms - 150 * DAY_MS + i * 60_000
        modified.append(at)
        records.append({**sub.ref, "lastModifiedDateTime": timestamp(at)})
    return _list_source("subaccounts", records, ("subaccountNumber",), modified)


def dimension_source(ctx: CompanyContext) -> ListSource:
    """Dimensions ACCOUNT (one segment: the GL account) and SUBACCOUNT (department, project)."""
    base_ms = ctx.data_start_ms - 150 * DAY_MS

    def segment(segment_id: int, description: str, values: list[tuple[str, str]], salt: int) -> dict:
        at = base_ms + salt * 60_000
        return {
            "internalId": _uuid(ctx, "segment", salt),
            "segmentId": segment_id,
            "description": description,
            "length": max(len(v[0]) for v in values),
            "publicId": _uuid(ctx, "segment-public", salt),
            "timeStamp": version_stamp(at),
            "lastModified": timestamp(at),
            "validate": True,
            "isAutoNumber": False,
            "segmentValues": [
                {"internalId": _uuid(ctx, "value", salt * 1000 + k), "segmentId": segment_id,
                 "valueId": value, "description": text,
                 "publicId": _uuid(ctx, "value-public", salt * 1000 + k), "active": True,
                 "timeStamp": version_stamp(at + k * 1000), "lastModified": timestamp(at + k * 1000)}
                for k, (value, text) in enumerate(values)
            ],
        }

    profile = ctx.profile
    account_values = [(a.number, a.description) for a in profile.accounts]
    records = [
        {"id": "ACCOUNT", "length": 4, "description": "Account",
         "segments": [segment(1, "Account", account_values, 1)]},
        {"id": "SUBACCOUNT", "length": sum(len(s.values[0][0]) for s in profile.segments),
         "description": "Subaccount",
         "segments": [segment(s.segment_id, s.description, list(s.values), 10 + s.segment_id)
                      for s in profile.segments]},
    ]
    return _list_source("dimensions", records, ("id",), None)


def _uuid(ctx: CompanyContext, kind: str, index: int) -> str:
    value = Draw(ctx.key("uuid", kind), index)
    hex_ = f"{value.next():016x}{value.next():016x}"
    return f"{hex_[:8]}-{hex_[8:12]}-4{hex_[13:16]}-a{hex_[17:20]}-{hex_[20:32]}"


def branch_source(ctx: CompanyContext) -> ListSource:
    profile = ctx.profile
    records, modified = [], []
    for i, (number, name, city) in enumerate(profile.branches):
        at = ctx.data_start_ms - 300 * DAY_MS + i * 60_000
        modified.append(at)
        records.append({
            "branchId": 1 + i, "number": number, "name": name, "organizationId": 1,
            "isMainBranch": i == 0, "isActive": True, "lastModifiedDateTime": timestamp(at),
            "corporateId": "934567890" if profile.country == "NO" else "5567891234",
            "mainAddress": {"addressId": 1 + i, "addressLine1": "Kontorveien 1", "postalCode": "0150",
                            "city": city, "country": {"id": profile.country, "name": COUNTRY_NAMES[profile.country]}},
            "currency": {"id": profile.base_currency,
                         "description": CURRENCY_NAMES[profile.base_currency][0],
                         "symbol": CURRENCY_NAMES[profile.base_currency][1]},
            "ledger": {"id": "1", "description": _ledger_name(profile)},
        })
    return _list_source("branches", records, ("number",), modified)


def _ledger_name(profile: CompanyProfile) -> str:
    return "Hovedbok" if profile.country == "NO" else "Huvudbok"


def ledger_source(ctx: CompanyContext) -> ListSource:
    profile = ctx.profile
    at = ctx.data_start_ms - 300 * DAY_MS
    records = [
        {"internalId": 1, "number": "1", "description": _ledger_name(profile), "balanceType": "Actual",
         "currencyId": profile.base_currency, "consolidationSource": False, "branchAccounting": True,
         "lastModifiedDateTime": timestamp(at), "postInterCompany": False},
        {"internalId": 2, "number": "BUDSJETT", "description": "Budsjett" if profile.country == "NO" else "Budget",
         "balanceType": "Budget", "currencyId": profile.base_currency, "consolidationSource": False,
         "branchAccounting": False, "lastModifiedDateTime": timestamp(at + 60_000), "postInterCompany": False},
    ]
    return _list_source("ledgers", records, ("number",), [at, at + 60_000])


def currency_source(ctx: CompanyContext) -> ListSource:
    profile = ctx.profile
    records = [
        {"id": code, "description": CURRENCY_NAMES[code][0], "symbol": CURRENCY_NAMES[code][1],
         "isBaseCurrency": code == profile.base_currency, "decimalPrecision": 2, "isUsedForAccounting": True}
        for code in sorted({profile.base_currency, *profile.other_currencies, "DKK", "USD"})
    ]
    return _list_source("currencies", records, ("id",), None)


class FinancialPeriodSource(Source):
    """The company's financial periods, in calendar order, closed as `closings` says now."""

    entity_name = "financial_periods"

    def __init__(self, calendar: FiscalCalendar, closings: PeriodClosings) -> None:
        self.calendar = calendar
        self.closings = closings
        self._index: dict[tuple[str, ...], int] = {
            (str(p.year), p.period_id): i for i, p in enumerate(calendar.periods)
        }

    def __len__(self) -> int:
        return len(self.calendar.periods)

    def modified_ms(self, index: int) -> int:
        return 0  # FinancialPeriodDto has no lastModifiedDateTime

    def build(self, index: int, when_ms: int | None = None) -> dict:
        if when_ms is not None:
            raise ValueError("financial periods come from the fiscal calendar: none can be created")
        return self.calendar.financial_period_dto(self.calendar.periods[index], self.closings)

    def index_of(self, key: tuple[str, ...]) -> int | None:
        return self._index.get(tuple(key))


def financial_period_source(ctx: CompanyContext) -> FinancialPeriodSource:
    closed_before = date(2026, 10, 1)  # the last closed month before the data ends
    return FinancialPeriodSource(ctx.calendar, PeriodClosings(closed_before))
