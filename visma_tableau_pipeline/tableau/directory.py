"""Tableau's users and groups, read back into two frames.

Row-level security names Tableau users and groups; the pipeline reads the site's directory so
that an asset check can tell when an entitlement names someone Tableau does not know (a typo, a
user who left, a group renamed), before a dashboard silently shows that person nothing.

Two frames, with declared dtypes (text, and `last_login` as a naive UTC timestamp):

- users: `user_id, user_name, full_name, email, site_role, last_login`, one row per site user.
- memberships: `group_id, group_name, user_id, user_name`, one row per (group, member); a group
  without members appears once with null `user_id`/`user_name`, so every group is listed.

Every list is read page by page (`TSC.Pager`) through `TableauSession.call`, so a long read
survives a session that ends or a 429 half way; each group's members are one call of their own,
so a retry repeats one group rather than the whole directory.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pandas as pd
import tableauserverclient as TSC

from visma_tableau_pipeline.marts.schema import TEXT, TIMESTAMP, TableSchema, columns
from visma_tableau_pipeline.tableau.session import TableauSession

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000  # Tableau's largest page

USERS = TableSchema("tableau_users", columns(
    ("user_id", TEXT),
    ("user_name", TEXT),
    ("full_name", TEXT),
    ("email", TEXT),
    ("site_role", TEXT),
    ("last_login", TIMESTAMP),
))
GROUP_MEMBERSHIPS = TableSchema("tableau_group_memberships", columns(
    ("group_id", TEXT),
    ("group_name", TEXT),
    ("user_id", TEXT),
    ("user_name", TEXT),
))


def read_directory(session: TableauSession, *,
                   page_size: int = MAX_PAGE_SIZE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(users, group memberships) of the signed-in site, sorted by name; see the module doc."""
    options = TSC.RequestOptions(pagesize=page_size)
    users: list[TSC.UserItem] = session.call(lambda server: list(TSC.Pager(server.users, options)))
    groups: list[TSC.GroupItem] = session.call(
        lambda server: list(TSC.Pager(server.groups, options)))
    memberships: list[dict[str, Any]] = []
    for group in groups:
        members = session.call(partial(_members, group=group, options=options))
        memberships.extend(_membership_rows(group, members))
    log.info("read %d Tableau users and %d groups (%d memberships)", len(users), len(groups),
             sum(row["user_id"] is not None for row in memberships))
    users_frame = USERS.frame(user_row(user) for user in users)
    return (
        users_frame.sort_values(["user_name", "user_id"], kind="stable", ignore_index=True),
        GROUP_MEMBERSHIPS.frame(memberships).sort_values(
            ["group_name", "group_id", "user_name"], kind="stable", ignore_index=True),
    )


def user_row(user: TSC.UserItem) -> dict[str, Any]:
    """One users-frame row from a TSC user."""
    return {"user_id": user.id, "user_name": user.name, "full_name": user.fullname,
            "email": user.email, "site_role": user.site_role,
            "last_login": _naive_utc(user.last_login)}


def _members(server: TSC.Server, group: TSC.GroupItem,
             options: TSC.RequestOptions) -> list[TSC.UserItem]:
    server.groups.populate_users(group, options)
    return list(group.users)


def _membership_rows(group: TSC.GroupItem, members: list[TSC.UserItem]) -> list[dict[str, Any]]:
    base = {"group_id": group.id, "group_name": group.name}
    if not members:
        return [{**base, "user_id": None, "user_name": None}]
    return [{**base, "user_id": member.id, "user_name": member.name} for member in members]


def _naive_utc(moment: datetime | None) -> datetime | None:
    """Tableau's times are UTC; the tables hold naive timestamps (as Hyper and the marts do)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
