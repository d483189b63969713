"""Who may see what: a YAML mapping of Tableau users and groups to Visma entities, as a table.

Tableau's row-level security filters a data source by joining it to an entitlements table on
`USERNAME()` or `ISMEMBEROF(...)`. The finance team keeps that mapping in one reviewed YAML file;
this module reads it, turns it into the `entitlements` table that is published to Tableau, and
lists the entries that name a Visma entity or a Tableau user or group that does not exist (an
asset check fails on them, because such an entry silently grants nothing).

The file (`entitlements` is a list; every other top-level key is an error):

    entitlements:
      - group: Finance Norway        # or `user: anna@nordlys.no`: exactly one of user / group
        company: nordic-no           # required: the Visma company id the pipeline uses
        suppliers: all               # `all`, or a list of supplier numbers
        customers: [C0001, C0002]    # `all`, or a list of customer numbers
        departments: all             # `all`, or a list of department segment values
      - user: anna@nordlys.no
        company: nordic-se
        departments: ["100", "300"]

- A scope that is left out grants nothing in that scope (least privilege); `[]` says the same.
- Every entry also grants its company as a whole (`scope` `company`): filter tables that have
  no finer scope (accounts, dimensions, GL balances) by that row.
- A user is named by Tableau user name or by email (emails match case-insensitively).
- Numbers may be written bare (`[50001, 50002]`), but a value with leading zeros must be quoted
  (`"0042"`): YAML reads `0042` as a number and the zeros are lost.
- Departments are values of the department segment of the `SUBACCOUNT` dimension: the segment
  whose description names a department (Avdeling, Avdelning, Afdeling, Osasto, Deild,
  Department), or else segment 1, which is where Visma puts the department by convention.

The table has one row per (principal_type, principal_name, company_id, scope, value); `all` is
the value `*`. A dashboard filter reads: `[value] = "*" OR [value] = [supplier_number]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from visma_tableau_pipeline.marts.schema import TEXT, TableSchema, columns
from visma_tableau_pipeline.marts.segments import SUBACCOUNT_DIMENSION_ID

ALL = "all"  # in the YAML
EVERY_VALUE = "*"  # in the table
SCOPES: tuple[str, ...] = ("company", "customer", "supplier", "department")

ENTITLEMENTS = TableSchema("entitlements", columns(
    ("principal_type", TEXT),  # user | group
    ("principal_name", TEXT),
    ("company_id", TEXT),
    ("scope", TEXT),  # company | customer | supplier | department
    ("value", TEXT),  # the entity's number or segment value, the company id, or "*"
))
ENTITLEMENTS_KEY: tuple[str, ...] = ENTITLEMENTS.names

DEPARTMENT_DESCRIPTION = re.compile(r"avdel|afdel|department|\bdept\b|osasto|deild", re.IGNORECASE)
DEFAULT_DEPARTMENT_SEGMENT_ID = 1


class EntitlementsError(ValueError):
    """The entitlements file cannot be used; says which file, which entry and what is wrong."""

    def __init__(self, message: str, *, path: Path, entry: int | None = None) -> None:
        where = f"entitlements file {path}"
        if entry is not None:
            where += f", entitlement {entry}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.entry = entry


Values = tuple[str, ...] | Literal["all"]


class Entitlement(BaseModel):
    """One entry of the file: one user or group, one company, and what it may see there."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    user: str | None = None
    group: str | None = None
    company: str
    suppliers: Values = ()
    customers: Values = ()
    departments: Values = ()

    @field_validator("user", "group", "company")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value.strip() if value is not None else None

    @field_validator("suppliers", "customers", "departments", mode="before")
    @classmethod
    def _all_or_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str) and value.strip().lower() == ALL:
            return ALL
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected `all` or a list of values, got {value!r}")
        for item in value:
            if isinstance(item, (list, dict)) or item is None:
                raise ValueError(f"expected a list of plain values, found {item!r}")
            if str(item).strip() in ("", EVERY_VALUE):
                raise ValueError(f"{str(item)!r} is not a value; write `all` for everything")
        return tuple(str(item).strip() for item in value)

    @model_validator(mode="after")
    def _one_principal(self) -> Entitlement:
        if (self.user is None) == (self.group is None):
            raise ValueError("name exactly one of `user` or `group`"
                             + (", not both" if self.user is not None else ""))
        return self

    @property
    def principal_type(self) -> Literal["user", "group"]:
        return "user" if self.user is not None else "group"

    @property
    def principal_name(self) -> str:
        return self.user if self.user is not None else self.group  # type: ignore[return-value]

    def describe(self, number: int) -> str:
        """`entitlement 2 (group 'Finance SE')`: how messages name this entry (1-based)."""
        return f"entitlement {number} ({self.principal_type} {self.principal_name!r})"

    def scoped_values(self) -> Iterable[tuple[str, Values]]:
        """(scope, values) of the finer scopes, in the table's scope order."""
        return (("customer", self.customers), ("supplier", self.suppliers),
                ("department", self.departments))


def load_entitlements(path: Path | str) -> list[Entitlement]:
    """The entries of the YAML file at `path`; `EntitlementsError` says what is wrong and where."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise EntitlementsError(f"cannot be read: {error.strerror or error}", path=path) from None
    except yaml.YAMLError as error:
        raise EntitlementsError(f"is not valid YAML: {error}", path=path) from None
    if not isinstance(document, dict) or set(document) != {"entitlements"}:
        raise EntitlementsError("expected one top-level key, `entitlements`, holding a list",
                                path=path)
    entries = document["entitlements"] or []
    if not isinstance(entries, list):
        raise EntitlementsError("`entitlements` must be a list of entries", path=path)
    return [_entry(path, number, entry) for number, entry in enumerate(entries, start=1)]


def _entry(path: Path, number: int, entry: Any) -> Entitlement:
    if not isinstance(entry, dict):
        raise EntitlementsError(f"expected a mapping with user or group and company, got {entry!r}",
                                path=path, entry=number)
    try:
        return Entitlement.model_validate(entry)
    except ValidationError as error:
        raise EntitlementsError(_readable(error), path=path, entry=number) from None


def _readable(error: ValidationError) -> str:
    """Pydantic's errors as one sentence per problem, without its internal type names."""
    problems = []
    for detail in error.errors():
        field = ".".join(str(part) for part in detail["loc"] if isinstance(part, str))
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "missing":
            message = "is required"
        elif detail["type"] == "extra_forbidden":
            message = ("is not a known key (use user, group, company, suppliers, customers, "
                       "departments)")
        problems.append(f"{field} {message}" if field else message)
    return "; ".join(dict.fromkeys(problems))


def entitlements_table(entitlements: Iterable[Entitlement],
                       users: pd.DataFrame | None = None) -> pd.DataFrame:
    """The row-level-security table: one row per key (see the module doc), sorted by the key.

    `users` (the users frame of `tableau.directory.read_directory`) lets a user named by email
    appear under their Tableau user name, which is what `USERNAME()` returns in a dashboard.
    """
    user_names = _user_names_by_email(users) if users is not None else {}
    rows = []
    for entitlement in entitlements:
        name = entitlement.principal_name
        if entitlement.principal_type == "user":
            name = user_names.get(name.casefold(), name)
        principal = {"principal_type": entitlement.principal_type, "principal_name": name,
                     "company_id": entitlement.company}
        rows.append({**principal, "scope": "company", "value": entitlement.company})
        for scope, values in entitlement.scoped_values():
            rows.extend({**principal, "scope": scope, "value": value}
                        for value in ((EVERY_VALUE,) if values == ALL else values))
    table = ENTITLEMENTS.frame(rows).drop_duplicates()
    return table.sort_values(list(ENTITLEMENTS_KEY), kind="stable", ignore_index=True)


def _user_names_by_email(users: pd.DataFrame) -> dict[str, str]:
    known = users.dropna(subset=["email", "user_name"])
    pairs = zip(known["email"], known["user_name"], strict=True)
    return {str(email).casefold(): str(name) for email, name in pairs}


@dataclass(frozen=True)
class KnownVismaValues:
    """What exists in Visma, as sets of ids; pass as `entitlement_problems(..., **vars(known))`."""

    companies: frozenset[str]
    suppliers: frozenset[tuple[str, str]]  # (company_id, supplier_number)
    customers: frozenset[tuple[str, str]]  # (company_id, customer_number)
    departments: frozenset[tuple[str, str]]  # (company_id, department segment value)


def known_visma_values(customers: pd.DataFrame, suppliers: pd.DataFrame,
                       dimensions: pd.DataFrame) -> KnownVismaValues:
    """The ids in the dashboard tables `customers`, `suppliers` and `dimensions`.

    A company is known when any of the three tables has a row for it. Departments are the values
    of each company's department segment (see the module doc for how it is recognised).
    """
    companies: set[str] = set()
    for frame in (customers, suppliers, dimensions):
        companies.update(str(company) for company in frame["company_id"].dropna())
    return KnownVismaValues(
        companies=frozenset(companies),
        suppliers=_pairs(suppliers, "supplier_number"),
        customers=_pairs(customers, "customer_number"),
        departments=_pairs(department_values(dimensions), "segment_value"),
    )


def department_values(dimensions: pd.DataFrame) -> pd.DataFrame:
    """The rows of the `dimensions` table that are department segment values, per company."""
    subaccount = dimensions[dimensions["dimension_id"].str.upper() == SUBACCOUNT_DIMENSION_ID]
    chosen = []
    for _company, segments in subaccount.groupby("company_id", sort=False):
        by_description = segments[
            segments["segment_description"].str.contains(DEPARTMENT_DESCRIPTION, na=False)]
        segment_id = (by_description["segment_id"].min() if not by_description.empty
                      else DEFAULT_DEPARTMENT_SEGMENT_ID)
        chosen.append(segments[segments["segment_id"] == segment_id])
    return pd.concat(chosen) if chosen else subaccount.iloc[0:0]


def _pairs(frame: pd.DataFrame, column: str) -> frozenset[tuple[str, str]]:
    known = frame.dropna(subset=["company_id", column])
    return frozenset(zip(known["company_id"].astype(str), known[column].astype(str), strict=True))


def entitlement_problems(
    entitlements: Iterable[Entitlement], *,
    companies: set[str] | frozenset[str],
    suppliers: set[tuple[str, str]] | frozenset[tuple[str, str]],
    customers: set[tuple[str, str]] | frozenset[tuple[str, str]],
    departments: set[tuple[str, str]] | frozenset[tuple[str, str]],
    users: set[str] | frozenset[str] | None,
    groups: set[str] | frozenset[str] | None,
) -> list[str]:
    """One sentence per entitlement that names something that does not exist; empty when all do.

    `users` holds Tableau user names and emails (see `tableau_principals`), `groups` group names;
    None for both when no Tableau site is configured, and principals are then not checked.
    An unknown company is reported once for its entry, without listing every value in it.
    """
    known_in_scope: Mapping[str, set[tuple[str, str]] | frozenset[tuple[str, str]]] = {
        "customer": customers, "supplier": suppliers, "department": departments}
    emails = {user.casefold() for user in users or () if "@" in user}
    problems = []
    for number, entitlement in enumerate(entitlements, start=1):
        entry = entitlement.describe(number)
        name = entitlement.principal_name
        if users is None or groups is None:
            pass
        elif entitlement.principal_type == "user":
            if name not in users and name.casefold() not in emails:
                problems.append(f"{entry}: Tableau user {name!r} does not exist")
        elif name not in groups:
            problems.append(f"{entry}: Tableau group {name!r} does not exist")
        company = entitlement.company
        if company not in companies:
            problems.append(f"{entry}: company {company} does not exist in Visma")
            continue
        for scope, values in entitlement.scoped_values():
            if values == ALL:
                continue
            problems.extend(f"{entry}: {scope} {value} does not exist in company {company}"
                            for value in values if (company, value) not in known_in_scope[scope])
    return problems


def tableau_principals(users: pd.DataFrame,
                       memberships: pd.DataFrame) -> tuple[frozenset[str], frozenset[str]]:
    """(user names and emails, group names) from the frames of `read_directory`."""
    user_keys = {str(value) for column in ("user_name", "email")
                 for value in users[column].dropna()}
    group_names = {str(name) for name in memberships["group_name"].dropna()}
    return frozenset(user_keys), frozenset(group_names)
