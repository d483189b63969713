"""The sandbox site's people and places: users, groups and projects.

A few demo users and groups are seeded so that listings have something to show; tests add more
through `Directory` (or through TSC's users/groups endpoints, which call the same methods).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from visma_tableau_pipeline.sandbox.tableau import errors
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock, new_luid

ALL_USERS_GROUP = "All Users"
DEFAULT_PROJECT = "default"


@dataclass
class SandboxUser:
    """A site user. `password` enables username/password sign-in for this user."""

    name: str
    site_role: str = "Viewer"
    email: str | None = None
    full_name: str | None = None
    password: str | None = field(default=None, repr=False)
    id: str = field(default_factory=new_luid)


@dataclass
class Group:
    name: str
    user_ids: list[str] = field(default_factory=list)
    minimum_site_role: str | None = None
    id: str = field(default_factory=new_luid)


@dataclass
class Project:
    name: str
    created_at: float
    description: str | None = None
    parent_id: str | None = None
    owner_id: str | None = None
    id: str = field(default_factory=new_luid)


@dataclass(frozen=True)
class Site:
    content_url: str
    name: str
    id: str = field(default_factory=new_luid)


def demo_users() -> list[SandboxUser]:
    """Who the demo site has: an admin (owner of the PATs), an analyst, a viewer, a pipeline user."""
    return [
        SandboxUser("admin", "SiteAdministratorCreator", "admin@demo.example", "Site Admin", "admin"),
        SandboxUser("analyst", "Explorer", "analyst@demo.example", "Ada Analyst", "analyst"),
        SandboxUser("viewer", "Viewer", "viewer@demo.example", "Vic Viewer"),
        SandboxUser("pipeline", "Creator", "pipeline@demo.example", "Visma Pipeline"),
    ]


DEMO_GROUPS: dict[str, tuple[str, ...]] = {
    "Finance": ("analyst", "viewer"),
    "Data Engineering": ("admin", "pipeline"),
}


class Directory:
    """Users, groups and projects of the one sandbox site. Not thread-safe: the service locks."""

    def __init__(
        self, site: Site, users: Sequence[SandboxUser] | None, clock: Clock
    ) -> None:
        self.site = site
        self._clock = clock
        self.users: dict[str, SandboxUser] = {}
        self.groups: dict[str, Group] = {}
        self.projects: dict[str, Project] = {}
        self.groups_by_name: dict[str, Group] = {}
        all_users = Group(ALL_USERS_GROUP)
        self._register_group(all_users)
        seeded = list(users) if users is not None else demo_users()
        if not seeded:
            raise ValueError("the sandbox site needs at least one user (the PAT owner)")
        for user in seeded:
            self._register_user(user)
        if users is None:
            for group_name, member_names in DEMO_GROUPS.items():
                self.add_group(group_name, member_names)
        self.create_project(DEFAULT_PROJECT, "The default project that was automatically created.")

    @property
    def admin(self) -> SandboxUser:
        """The first user: the owner of the configured PATs and of published content."""
        return next(iter(self.users.values()))

    def user(self, user_id: str) -> SandboxUser:
        try:
            return self.users[user_id]
        except KeyError:
            raise errors.not_found(errors.USER_NOT_FOUND, f"User '{user_id}' could not be found.") from None

    def user_by_name(self, name: str) -> SandboxUser | None:
        return next((u for u in self.users.values() if u.name.lower() == name.lower()), None)

    def add_user(
        self,
        name: str,
        site_role: str = "Viewer",
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> SandboxUser:
        if self.user_by_name(name) is not None:
            raise errors.conflict(errors.USER_EXISTS, f"A user named '{name}' already exists on the site.")
        return self._register_user(SandboxUser(name, site_role, email, full_name, password))

    def _register_user(self, user: SandboxUser) -> SandboxUser:
        self.users[user.id] = user
        self.groups_by_name[ALL_USERS_GROUP].user_ids.append(user.id)
        return user

    def group(self, group_id: str) -> Group:
        try:
            return self.groups[group_id]
        except KeyError:
            raise errors.not_found(
                errors.GROUP_NOT_FOUND, f"Group '{group_id}' could not be found."
            ) from None

    def add_group(
        self, name: str, member_names: Iterable[str] = (), minimum_site_role: str | None = None
    ) -> Group:
        if name in self.groups_by_name:
            raise errors.conflict(
                errors.GROUP_EXISTS, f"A group named '{name}' already exists on the site."
            )
        group = Group(name, minimum_site_role=minimum_site_role)
        for member in member_names:
            user = self.user_by_name(member)
            if user is None:
                raise ValueError(f"group {name!r} names user {member!r}, who is not on the site")
            group.user_ids.append(user.id)
        return self._register_group(group)

    def _register_group(self, group: Group) -> Group:
        self.groups[group.id] = group
        self.groups_by_name[group.name] = group
        return group

    def add_to_group(self, group_id: str, user_id: str) -> SandboxUser:
        group, user = self.group(group_id), self.user(user_id)
        if user.id not in group.user_ids:
            group.user_ids.append(user.id)
        return user

    def project(self, project_id: str) -> Project:
        try:
            return self.projects[project_id]
        except KeyError:
            raise errors.not_found(
                errors.PROJECT_NOT_FOUND, f"Project '{project_id}' could not be found."
            ) from None

    def default_project(self) -> Project:
        return next(p for p in self.projects.values() if p.name == DEFAULT_PROJECT and p.parent_id is None)

    def create_project(
        self, name: str, description: str | None = None, parent_id: str | None = None
    ) -> Project:
        if parent_id is not None:
            self.project(parent_id)
        if any(p.name == name and p.parent_id == parent_id for p in self.projects.values()):
            raise errors.conflict(
                errors.PROJECT_EXISTS, f"A project named '{name}' already exists at this level."
            )
        project = Project(name, self._clock(), description, parent_id, self.admin.id)
        self.projects[project.id] = project
        return project
