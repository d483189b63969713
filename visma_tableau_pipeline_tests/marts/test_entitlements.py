"""The entitlements mapping: YAML in, row-level-security table out, and what it names checked."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from visma_tableau_pipeline.marts.entitlements import (
    ENTITLEMENTS_KEY,
    EntitlementsError,
    KnownVismaValues,
    entitlement_problems,
    entitlements_table,
    known_visma_values,
    load_entitlements,
    tableau_principals,
)
from visma_tableau_pipeline.marts.registry import build_mart
from visma_tableau_pipeline.sandbox.visma import VismaSandbox
from visma_tableau_pipeline.sandbox.visma.size import DemoSize

VALID = """\
entitlements:
  - group: Finance
    company: nordic-no
    suppliers: all
    customers: [10001, "10002"]
    departments: all
  - user: Analyst@Demo.Example     # by email, in another case
    company: nordic-se
    departments: ["100", "300"]
  - user: viewer
    company: nordic-no
    customers: all
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entitlements.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def known() -> KnownVismaValues:
    """From the dashboard tables the marts build out of the Visma sandbox's demo companies."""
    sandbox = VismaSandbox(DemoSize(supplier_invoices=10))
    records = {entity: [{**record, "company_id": company}
                        for company in sandbox.companies for record in sandbox.records(company, entity)]
               for entity in ("customers", "suppliers", "dimensions")}
    tables = {name: build_mart(name, records, date(2025, 4, 30)) for name in records}
    return known_visma_values(tables["customers"], tables["suppliers"], tables["dimensions"])


USERS = pd.DataFrame({"user_name": ["analyst", "viewer", "admin"],
                      "email": ["analyst@demo.example", "viewer@demo.example", None]}, dtype="string")
MEMBERSHIPS = pd.DataFrame({"group_name": ["Finance", "Finance", "Auditors"],
                            "user_name": ["analyst", "viewer", None]}, dtype="string")


def problems(path: Path, known: KnownVismaValues) -> list[str]:
    users, groups = tableau_principals(USERS, MEMBERSHIPS)
    return entitlement_problems(load_entitlements(path), **vars(known), users=users, groups=groups)


# --- the file ----------------------------------------------------------------------------------

def test_valid_file_is_read(tmp_path: Path) -> None:
    finance, analyst, _viewer = load_entitlements(write(tmp_path, VALID))
    assert (finance.principal_type, finance.principal_name, finance.company) == ("group", "Finance", "nordic-no")
    assert finance.suppliers == "all" and finance.customers == ("10001", "10002")
    assert (analyst.principal_type, analyst.departments, analyst.suppliers) == ("user", ("100", "300"), ())


@pytest.mark.parametrize(("entry", "complaint"), [
    ("  - user: anna\n    group: Finance\n    company: nordic-no\n",
     "entitlement 1: name exactly one of `user` or `group`, not both"),
    ("  - company: nordic-no\n", "entitlement 1: name exactly one of `user` or `group`"),
    ("  - group: Finance\n", "entitlement 1: company is required"),
    ("  - group: Finance\n    company: nordic-no\n    customers: C0001\n",
     "entitlement 1: customers expected `all` or a list of values, got 'C0001'"),
    ("  - group: Finance\n    company: nordic-no\n    suppliers: [[1, 2]]\n",
     "entitlement 1: suppliers expected a list of plain values"),
    ("  - group: Finance\n    company: nordic-no\n    departments: ['*']\n",
     "write `all` for everything"),
    ("  - group: Finance\n    company: nordic-no\n    supplier: all\n",
     "entitlement 1: supplier is not a known key"),
    ("  - Finance\n", "entitlement 1: expected a mapping"),
])
def test_malformed_entries_say_which_file_entry_and_problem(tmp_path: Path, entry: str,
                                                             complaint: str) -> None:
    path = write(tmp_path, "entitlements:\n" + entry)
    with pytest.raises(EntitlementsError) as error:
        load_entitlements(path)
    message = str(error.value)
    assert message.startswith(f"entitlements file {path}"), message
    assert complaint in message, message
    assert "Value error" not in message and "pydantic" not in message


def test_the_entry_number_points_at_the_bad_entry(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "  - group: Late\n")
    with pytest.raises(EntitlementsError, match="entitlement 4: company is required") as error:
        load_entitlements(path)
    assert error.value.entry == 4 and error.value.path == path


@pytest.mark.parametrize(("text", "complaint"), [
    ("grants: []\n", "expected one top-level key, `entitlements`"),
    ("entitlements: {group: Finance}\n", "must be a list"),
    ("entitlements: [\n", "is not valid YAML"),
])
def test_malformed_files_are_refused(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(EntitlementsError, match=complaint):
        load_entitlements(write(tmp_path, text))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EntitlementsError, match=r"nowhere\.yaml: cannot be read"):
        load_entitlements(tmp_path / "nowhere.yaml")


# --- the table ---------------------------------------------------------------------------------

def test_table_has_one_row_per_grant_with_all_as_star(tmp_path: Path) -> None:
    table = entitlements_table(load_entitlements(write(tmp_path, VALID)))
    assert list(table.columns) == list(ENTITLEMENTS_KEY)
    assert all(isinstance(dtype, pd.StringDtype) for dtype in table.dtypes)
    assert [tuple(row) for row in table.itertuples(index=False)] == [
        ("group", "Finance", "nordic-no", "company", "nordic-no"),
        ("group", "Finance", "nordic-no", "customer", "10001"),
        ("group", "Finance", "nordic-no", "customer", "10002"),
        ("group", "Finance", "nordic-no", "department", "*"),
        ("group", "Finance", "nordic-no", "supplier", "*"),
        ("user", "Analyst@Demo.Example", "nordic-se", "company", "nordic-se"),
        ("user", "Analyst@Demo.Example", "nordic-se", "department", "100"),
        ("user", "Analyst@Demo.Example", "nordic-se", "department", "300"),
        ("user", "viewer", "nordic-no", "company", "nordic-no"),
        ("user", "viewer", "nordic-no", "customer", "*"),
    ]
    assert not table.duplicated(list(ENTITLEMENTS_KEY)).any()


def test_users_named_by_email_appear_under_their_tableau_user_name(tmp_path: Path) -> None:
    table = entitlements_table(load_entitlements(write(tmp_path, VALID)), users=USERS)
    assert set(table.loc[table["principal_type"] == "user", "principal_name"]) == {"analyst", "viewer"}


def test_repeated_grants_become_one_row(tmp_path: Path) -> None:
    text = ("entitlements:\n"
            "  - {group: Finance, company: nordic-no, customers: ['1', '1']}\n"
            "  - {group: Finance, company: nordic-no, customers: ['1']}\n")
    table = entitlements_table(load_entitlements(write(tmp_path, text)))
    assert table["scope"].tolist() == ["company", "customer"]


# --- the check ---------------------------------------------------------------------------------

def test_known_values_come_from_the_dashboard_tables(known: KnownVismaValues) -> None:
    assert known.companies == {"nordic-no", "nordic-se"}
    assert ("nordic-no", "10001") in known.customers and ("nordic-se", "10001") in known.customers
    assert ("nordic-no", "50001") in known.suppliers
    # the department segment (Avdeling / Avdelning), not the project segment
    assert {value for company, value in known.departments if company == "nordic-se"} == {
        "100", "200", "300", "400"}


def test_a_valid_mapping_has_no_problems(tmp_path: Path, known: KnownVismaValues) -> None:
    assert problems(write(tmp_path, VALID), known) == []


def test_every_missing_thing_is_named(tmp_path: Path, known: KnownVismaValues) -> None:
    text = """\
entitlements:
  - group: Finance SE
    company: nordic-se
    customers: [10001, C9999]
    suppliers: [S404]
    departments: ["100", "1001"]     # 1001 is a project, not a department
  - user: ghost@nordlys.no
    company: nordic-dk
    customers: [C9999]
"""
    assert problems(write(tmp_path, text), known) == [
        "entitlement 1 (group 'Finance SE'): Tableau group 'Finance SE' does not exist",
        "entitlement 1 (group 'Finance SE'): customer C9999 does not exist in company nordic-se",
        "entitlement 1 (group 'Finance SE'): supplier S404 does not exist in company nordic-se",
        "entitlement 1 (group 'Finance SE'): department 1001 does not exist in company nordic-se",
        "entitlement 2 (user 'ghost@nordlys.no'): Tableau user 'ghost@nordlys.no' does not exist",
        "entitlement 2 (user 'ghost@nordlys.no'): company nordic-dk does not exist in Visma",
    ]


def test_department_falls_back_to_segment_one_when_no_description_says_so() -> None:
    dimensions = pd.DataFrame({
        "company_id": ["c1"] * 3, "dimension_id": ["SUBACCOUNT"] * 3,
        "segment_id": pd.array([2, 1, 1], dtype="Int64"),
        "segment_description": ["Kostnadsställe", "Enhet", "Enhet"],
        "segment_value": ["K1", "E1", "E2"],
    }).astype({"company_id": "string", "dimension_id": "string",
               "segment_description": "string", "segment_value": "string"})
    empty = pd.DataFrame({"company_id": [], "customer_number": [], "supplier_number": []}, dtype="string")
    known = known_visma_values(empty, empty, dimensions)
    assert known.departments == {("c1", "E1"), ("c1", "E2")}
