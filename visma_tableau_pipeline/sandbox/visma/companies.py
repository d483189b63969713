"""The demo group: a Nordic software reseller with a Norwegian and a Swedish company; and, when
asked for, an accounting office's small client companies made from the same two templates.

Everything here is master data that does not grow with the demo size: charts of accounts,
dimension segments, name parts, currencies and their monthly rates. Record generators draw
from it. Names carry æøå and äö on purpose: they must survive every hop to Tableau.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import cycle

from visma_tableau_pipeline.sandbox.visma.calendar import FiscalCalendar
from visma_tableau_pipeline.sandbox.visma.determinism import Draw, stream_key
from visma_tableau_pipeline.settings import (
    SANDBOX_CLIENT_COMPANY_PREFIX,
    SANDBOX_TENANT_IDS,
    generated_company_ids,
    sandbox_tenant_ids,
)


@dataclass(frozen=True)
class Account:
    number: str
    description: str
    type: str  # Asset, Liability, Income, Expense
    account_class: str
    control_module: str = ""  # "AP", "AR" for control accounts


@dataclass(frozen=True)
class Segment:
    segment_id: int
    description: str
    values: tuple[tuple[str, str], ...]  # (value id, description)


@dataclass(frozen=True)
class CompanyProfile:
    """One company (one Visma tenant) of the demo group."""

    company_id: str
    tenant_id: str
    name: str
    country: str
    base_currency: str
    other_currencies: tuple[str, ...]
    # base-currency units per foreign unit, times 10 000, before the monthly wobble
    base_rates: dict[str, int]
    fiscal_start_month: int
    first_fiscal_year: int
    volume: int  # percent of the demo size this company gets
    vat_percent: int
    accounts: tuple[Account, ...]
    # role ("ap", "ar", "bank", ...) -> account number; "equity" also takes each closed fiscal
    # year's result (Visma's retained earnings account)
    roles: dict[str, str]
    expense_accounts: tuple[str, ...]
    sales_accounts: tuple[str, ...]
    segments: tuple[Segment, ...]  # dimension SUBACCOUNT: department, project
    branches: tuple[tuple[str, str, str], ...]  # (number, name, city)
    supplier_places: tuple[str, ...]
    supplier_trades: tuple[str, ...]
    customer_trades: tuple[str, ...]
    legal_form: str
    foreign_suppliers: tuple[tuple[str, str, str], ...]  # (name, currency, country)
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    words: dict[str, str]  # small vocabulary for descriptions

    def calendar(self) -> FiscalCalendar:
        return FiscalCalendar(self.first_fiscal_year, 2, self.fiscal_start_month)

    def account(self, number: str) -> Account:
        return next(a for a in self.accounts if a.number == number)

    def monthly_rate(self, currency: str, period_index: int, seed: int) -> int:
        """Base units per unit of `currency` in a period, times 10 000 (1.0000 for the base)."""
        if currency == self.base_currency:
            return 10_000
        wobble = Draw(stream_key(seed, self.company_id, "rate", currency), period_index)
        return self.base_rates[currency] + wobble.between(-250, 250) * self.base_rates[currency] // 10_000


# The group's customer (contract) tenant id: Visma Connect issues a token for it, and every ERP
# API call with that token answers 401, as the real service does when this id is configured.
CUSTOMER_TENANT_ID = "0d5f8a27-6e4b-4c19-8f3a-71b2c9e4d033"

NORWAY = CompanyProfile(
    company_id="nordic-no",
    tenant_id=SANDBOX_TENANT_IDS["nordic-no"],
    name="Nordlys Programvare AS",
    country="NO",
    base_currency="NOK",
    other_currencies=("EUR", "SEK"),
    base_rates={"EUR": 115_000, "SEK": 9_800},
    fiscal_start_month=1,
    first_fiscal_year=2025,
    volume=100,
    vat_percent=25,
    accounts=(
        Account("1500", "Kundefordringer", "Asset", "OMLØPSMIDLER", "AR"),
        Account("1920", "Bankinnskudd", "Asset", "OMLØPSMIDLER"),
        Account("2400", "Leverandørgjeld", "Liability", "KORTSIKTIG GJELD", "AP"),
        Account("2700", "Utgående merverdiavgift", "Liability", "KORTSIKTIG GJELD"),
        Account("2710", "Inngående merverdiavgift", "Liability", "KORTSIKTIG GJELD"),
        Account("2930", "Skyldig lønn", "Liability", "KORTSIKTIG GJELD"),
        Account("3000", "Salgsinntekt lisenser", "Income", "SALGSINNTEKT"),
        Account("3100", "Salgsinntekt konsulenttjenester", "Income", "SALGSINNTEKT"),
        Account("4300", "Innkjøp lisenser for videresalg", "Expense", "VAREKOSTNAD"),
        Account("5000", "Lønn til ansatte", "Expense", "LØNNSKOSTNAD"),
        Account("6300", "Leie lokaler", "Expense", "DRIFTSKOSTNAD"),
        Account("6540", "Inventar og IT-utstyr", "Expense", "DRIFTSKOSTNAD"),
        Account("6800", "Kontorrekvisita", "Expense", "DRIFTSKOSTNAD"),
        Account("6900", "Telefon og internett", "Expense", "DRIFTSKOSTNAD"),
        Account("7100", "Reisekostnader", "Expense", "DRIFTSKOSTNAD"),
        Account("7320", "Reklamekostnader", "Expense", "DRIFTSKOSTNAD"),
        Account("7770", "Bank- og kortgebyrer", "Expense", "DRIFTSKOSTNAD"),
        Account("7790", "Øreavrunding", "Expense", "DRIFTSKOSTNAD"),
        Account("8050", "Renteinntekter", "Income", "FINANSINNTEKT"),
        Account("8060", "Valutagevinst (agio) og -tap (disagio)", "Income", "FINANSINNTEKT"),
        Account("1460", "Innkjøpte varer for videresalg", "Asset", "OMLØPSMIDLER"),
        Account("2050", "Annen egenkapital", "Liability", "EGENKAPITAL"),
    ),
    roles={"ap": "2400", "ar": "1500", "bank": "1920", "vat_out": "2700", "vat_in": "2710",
           "salary": "5000", "salary_due": "2930", "rounding": "7790", "bank_fees": "7770",
           "interest": "8050", "fx": "8060", "inventory": "1460", "equity": "2050", "rent": "6300",
           "cost_of_goods": "4300"},
    expense_accounts=("4300", "6300", "6540", "6800", "6900", "7100", "7320"),
    sales_accounts=("3000", "3100"),
    segments=(
        Segment(1, "Avdeling", (("100", "Salg"), ("200", "Konsulent"), ("300", "Utvikling"),
                                ("400", "Administrasjon"))),
        Segment(2, "Prosjekt", (("0000", "Uten prosjekt"), ("1001", "Skymigrering Bergen"),
                                ("1002", "ERP-utrulling Tromsø"), ("1003", "Lisensfornyelse Ålesund"),
                                ("1004", "Sikkerhetsrevisjon Drammen"))),
    ),
    branches=(("1", "Nordlys Programvare AS Oslo", "Oslo"),
              ("2", "Nordlys Programvare AS Bergen", "Bergen")),
    supplier_places=("Bjørnstad", "Fjellstrøm", "Åsheim", "Sjøberg", "Kvalø", "Holmås", "Nærbø",
                     "Grønli", "Tromsø", "Røros", "Lærdal", "Ørsta", "Mjøsa", "Hønefoss",
                     "Sandnes", "Ålgård"),
    supplier_trades=("Data", "IT-konsult", "Kontorutstyr", "Nettverk", "Programvare", "Sky",
                     "Regnskap", "Drift", "Sikkerhet", "Rekruttering", "Eiendom", "Telekom",
                     "Reisebyrå", "Trykkeri"),
    customer_trades=("Regnskapskontor", "Maskin", "Bygg", "Transport", "Fiskeri", "Handel",
                     "Elektro", "Tannklinikk", "Advokatfirma", "Sjømat", "Kraftlag", "Bakeri"),
    legal_form="AS",
    foreign_suppliers=(("Helsingin Ohjelmisto Oy", "EUR", "FI"), ("Öresund Hosting AB", "SEK", "SE"),
                       ("Berliner Lizenz GmbH", "EUR", "DE"), ("Kärnhuset Mjukvara AB", "SEK", "SE"),
                       ("Amsterdam Cloud B.V.", "EUR", "NL")),
    first_names=("Åse", "Bjørn", "Kari", "Øystein", "Ingrid", "Håkon", "Sigrid", "Tormod",
                 "Solveig", "Jørgen", "Marit", "Ståle"),
    last_names=("Hågensen", "Strøm", "Nordø", "Løvås", "Bakke", "Ødegård", "Sæther", "Kjær",
                "Lie", "Dahl"),
    words={"invoice": "Faktura", "credit": "Kreditnota", "rounding": "Øreavrunding",
           "payment": "Betaling", "salary": "Lønn", "rent": "Husleie", "days": "dager",
           "licence": "Lisenser", "consulting": "Konsulenttimer", "support": "Support og drift",
           "hardware": "Maskinvare", "travel": "Reise", "order": "Innkjøp", "week": "Uke",
           "opening": "Inngående balanse", "goods": "Varekostnad solgte varer"},
)

SWEDEN = CompanyProfile(
    company_id="nordic-se",
    tenant_id=SANDBOX_TENANT_IDS["nordic-se"],
    name="Nordlys Mjukvara AB",
    country="SE",
    base_currency="SEK",
    other_currencies=("EUR", "NOK"),
    base_rates={"EUR": 112_000, "NOK": 10_200},
    fiscal_start_month=7,
    first_fiscal_year=2025,
    volume=60,
    vat_percent=25,
    accounts=(
        Account("1510", "Kundfordringar", "Asset", "OMSÄTTNINGSTILLGÅNGAR", "AR"),
        Account("1930", "Företagskonto", "Asset", "OMSÄTTNINGSTILLGÅNGAR"),
        Account("2440", "Leverantörsskulder", "Liability", "KORTFRISTIGA SKULDER", "AP"),
        Account("2611", "Utgående moms 25 %", "Liability", "KORTFRISTIGA SKULDER"),
        Account("2641", "Debiterad ingående moms", "Liability", "KORTFRISTIGA SKULDER"),
        Account("2821", "Skulder till anställda", "Liability", "KORTFRISTIGA SKULDER"),
        Account("3001", "Försäljning licenser", "Income", "RÖRELSENS INTÄKTER"),
        Account("3041", "Försäljning tjänster", "Income", "RÖRELSENS INTÄKTER"),
        Account("3740", "Öres- och kronutjämning", "Income", "RÖRELSENS INTÄKTER"),
        Account("4010", "Inköp licenser", "Expense", "VARUKOSTNADER"),
        Account("5010", "Lokalhyra", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("5410", "Förbrukningsinventarier", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("5800", "Resekostnader", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("5910", "Annonsering", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("6110", "Kontorsmateriel", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("6212", "Mobiltelefon", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("6570", "Bankkostnader", "Expense", "ÖVRIGA EXTERNA KOSTNADER"),
        Account("7210", "Löner till tjänstemän", "Expense", "PERSONALKOSTNADER"),
        Account("8310", "Ränteintäkter", "Income", "FINANSIELLA POSTER"),
        Account("8330", "Valutakursdifferenser", "Income", "FINANSIELLA POSTER"),
        Account("1460", "Lager av handelsvaror", "Asset", "OMSÄTTNINGSTILLGÅNGAR"),
        Account("2091", "Balanserad vinst eller förlust", "Liability", "EGET KAPITAL"),
    ),
    roles={"ap": "2440", "ar": "1510", "bank": "1930", "vat_out": "2611", "vat_in": "2641",
           "salary": "7210", "salary_due": "2821", "rounding": "3740", "bank_fees": "6570",
           "interest": "8310", "fx": "8330", "inventory": "1460", "equity": "2091", "rent": "5010",
           "cost_of_goods": "4010"},
    expense_accounts=("4010", "5010", "5410", "5800", "5910", "6110", "6212"),
    sales_accounts=("3001", "3041"),
    segments=(
        Segment(1, "Avdelning", (("100", "Försäljning"), ("200", "Konsult"), ("300", "Utveckling"),
                                 ("400", "Administration"))),
        Segment(2, "Projekt", (("0000", "Inget projekt"), ("2001", "Molnflytt Malmö"),
                               ("2002", "Licensförnyelse Växjö"), ("2003", "Integration Göteborg"),
                               ("2004", "Säkerhetsgranskning Umeå"))),
    ),
    branches=(("1", "Nordlys Mjukvara AB Stockholm", "Stockholm"),
              ("2", "Nordlys Mjukvara AB Göteborg", "Göteborg")),
    supplier_places=("Älvsby", "Kärnhuset", "Lindqvist", "Västerås", "Sundsvall", "Jönköping",
                     "Håby", "Skövde", "Örebro", "Luleå", "Gävle", "Mölndal", "Täby", "Ängelholm"),
    supplier_trades=("Data", "Konsult", "Kontorsmaterial", "Nätverk", "Mjukvara", "Moln",
                     "Redovisning", "Drift", "Säkerhet", "Rekrytering", "Fastigheter", "Telekom",
                     "Resebyrå", "Tryckeri"),
    customer_trades=("Redovisningsbyrå", "Maskin", "Bygg", "Åkeri", "Fiske", "Handel", "El",
                     "Tandvård", "Advokatbyrå", "Skogsägare", "Kraft", "Bageri"),
    legal_form="AB",
    foreign_suppliers=(("Helsingin Ohjelmisto Oy", "EUR", "FI"), ("Bjørnstad Data AS", "NOK", "NO"),
                       ("Dublin Data Services Ltd", "EUR", "IE"), ("Fjellstrøm Sky AS", "NOK", "NO"),
                       ("Tallinna Tarkvara OÜ", "EUR", "EE")),
    first_names=("Åsa", "Björn", "Märta", "Göran", "Linnéa", "Östen", "Sofia", "Jöns", "Karin",
                 "Håkan"),
    last_names=("Öberg", "Ström", "Näslund", "Åkesson", "Lindqvist", "Sjögren", "Bäckström",
                "Höglund", "Ek", "Blom"),
    words={"invoice": "Faktura", "credit": "Kreditnota", "rounding": "Öresavrundning",
           "payment": "Betalning", "salary": "Lön", "rent": "Hyra", "days": "dagar",
           "licence": "Licenser", "consulting": "Konsulttimmar", "support": "Support och drift",
           "hardware": "Hårdvara", "travel": "Resa", "order": "Inköp", "week": "Vecka",
           "opening": "Ingående balans", "goods": "Kostnad sålda varor"},
)

PROFILES: tuple[CompanyProfile, ...] = (NORWAY, SWEDEN)


def client_profiles(count: int) -> tuple[CompanyProfile, ...]:
    """`count` client companies of an accounting office (client-001, ...), each its own tenant.

    They take turns on the Norwegian and the Swedish template (a fiscal year from January, or
    from July), so their master data is as valid as the demo group's; their records differ,
    since every draw is keyed by company id. `volume` is 100: their size is given on its own.
    """
    tenants = sandbox_tenant_ids(count)
    return tuple(
        replace(template, company_id=company_id, tenant_id=tenants[company_id], volume=100,
                name=f"Klient {company_id.removeprefix(SANDBOX_CLIENT_COMPANY_PREFIX)} {template.legal_form}")
        for template, company_id in zip(cycle(PROFILES), generated_company_ids(count), strict=False)
    )
