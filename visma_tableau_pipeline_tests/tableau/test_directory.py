"""Reading Tableau's users and groups from the sandbox, over HTTP with the real TSC."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import tableauserverclient as TSC

from visma_tableau_pipeline.marts.entitlements import (
    Entitlement,
    entitlement_problems,
    tableau_principals,
)
from visma_tableau_pipeline.sandbox.tableau import TableauSandbox
from visma_tableau_pipeline.tableau.directory import read_directory, user_row
from visma_tableau_pipeline.tableau.session import TableauSession


def members(memberships: pd.DataFrame, group: str) -> list[object]:
    rows = memberships[memberships["group_name"] == group]
    return [None if pd.isna(name) else name for name in rows["user_name"]]


def test_users_groups_and_memberships_are_read_across_pages(
    session: TableauSession, served: TableauSandbox,
) -> None:
    directory = served.directory
    for number in range(3):
        directory.add_user(f"clerk{number}", "Viewer", f"clerk{number}@nordlys.example")
    directory.add_group("Finance Norway", ["analyst", "clerk0", "clerk1", "clerk2"])
    directory.add_group("Auditors")  # nobody yet

    users, memberships = read_directory(session, page_size=2)

    assert users["user_name"].tolist() == [
        "admin", "analyst", "clerk0", "clerk1", "clerk2", "pipeline", "viewer"]
    analyst = users.set_index("user_name").loc["analyst"]
    assert (analyst["full_name"], analyst["email"], analyst["site_role"]) == (
        "Ada Analyst", "analyst@demo.example", "Explorer")
    assert users["user_id"].is_unique and users["user_id"].notna().all()

    assert members(memberships, "Finance Norway") == ["analyst", "clerk0", "clerk1", "clerk2"]
    assert members(memberships, "Finance") == ["analyst", "viewer"]
    assert members(memberships, "Auditors") == [None]
    assert len(members(memberships, "All Users")) == 7
    ids = dict(zip(users["user_name"], users["user_id"], strict=True))
    finance = memberships[memberships["group_name"] == "Finance Norway"]
    assert finance["user_id"].tolist() == [ids[name] for name in finance["user_name"]]

    user_pages = [r for r in served.requests if r.path.endswith("/users") and "/groups/" not in r.path]
    assert len(user_pages) == 4  # 7 users, 2 per page: every page was read


def test_frames_have_declared_dtypes_even_when_a_group_is_empty(session: TableauSession,
                                                                 served: TableauSandbox) -> None:
    served.directory.add_group("Nobody")
    users, memberships = read_directory(session)
    assert list(users.columns) == ["user_id", "user_name", "full_name", "email", "site_role",
                                   "last_login"]
    assert list(memberships.columns) == ["group_id", "group_name", "user_id", "user_name"]
    assert all(isinstance(users[c].dtype, pd.StringDtype) for c in users.columns[:-1])
    assert users["last_login"].dtype == "datetime64[us]"
    assert all(isinstance(dtype, pd.StringDtype) for dtype in memberships.dtypes)


def test_last_login_is_kept_as_naive_utc() -> None:
    xml = b"""<tsResponse xmlns="http://tableau.com/api"><users>
      <user id="u1" name="anna" siteRole="Viewer" lastLogin="2025-04-30T21:15:00Z"
            email="anna@nordlys.no" fullName="Anna Berg"/></users></tsResponse>"""
    (user,) = TSC.UserItem.from_response(xml, {"t": "http://tableau.com/api"})
    row = user_row(user)
    assert row["last_login"] == datetime(2025, 4, 30, 21, 15)
    assert (row["user_name"], row["email"], row["full_name"]) == ("anna", "anna@nordlys.no", "Anna Berg")


def test_the_directory_read_tells_entitlements_who_exists(session: TableauSession) -> None:
    users, groups = tableau_principals(*read_directory(session))
    entitlements = [Entitlement(group="Finance", company="c1"),
                    Entitlement(user="VIEWER@demo.example", company="c1"),
                    Entitlement(group="Finance Norway", company="c1"),
                    Entitlement(user="anna", company="c1")]
    problems = entitlement_problems(entitlements, companies={"c1"}, suppliers=set(), customers=set(),
                                    departments=set(), users=users, groups=groups)
    assert problems == [
        "entitlement 3 (group 'Finance Norway'): Tableau group 'Finance Norway' does not exist",
        "entitlement 4 (user 'anna'): Tableau user 'anna' does not exist",
    ]
