"""A person as the hub knows them: who signed in (the identity provider's subject, name and
email), and their role in each project, read from the provider's group claim through the
mapping in settings (MCHUB_OIDC_GROUPS)."""

import getpass
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from mchub.settings import GroupGrant, Settings


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"
    """A project admin: acts on every cluster of the project."""


class PersonRef(BaseModel):
    """Who did something, as records keep them: the provider's subject, and the name and
    email a person reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    name: str
    email: str = ""

    def label(self) -> str:
        """"Alice Martin <alice@example.org>", or the name alone."""
        return f"{self.name} <{self.email}>" if self.email else self.name


class Person(PersonRef):
    """A signed-in person, with their roles: in projects, and over the whole hub."""

    projects: dict[str, Role] = {}
    hub_admin: bool = False

    @property
    def ref(self) -> PersonRef:
        return PersonRef(subject=self.subject, name=self.name, email=self.email)

    def role_in(self, project: str) -> Role | None:
        return self.projects.get(project)

    def describe(self) -> str:
        """What the person is, as the pages' header says it: "hub admin", "admin of physics, member of chemistry"."""
        roles = [f"{role} of {project}" for project, role in sorted(self.projects.items())]
        return ", ".join((["hub admin"] if self.hub_admin else []) + roles) or "no project"


def person_from_claims(claims: Mapping[str, Any], settings: Settings) -> Person:
    """The person an identity provider's claims (an ID token's) describe, their groups mapped to
    projects and roles by settings.oidc_groups; groups not mapped give no role. A project admin
    of a group is also what a member of another group of the same project would be, so the
    highest role wins."""
    groups = claims.get(settings.oidc_groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    grants = [settings.oidc_groups[group] for group in groups if isinstance(group, str) and group in settings.oidc_groups]
    return Person(
        subject=str(claims["sub"]),
        name=str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or claims["sub"]),
        email=str(claims.get("email") or ""),
        projects=_roles(grants),
        hub_admin=any(grant.role == "hub_admin" for grant in grants),
    )


def operator() -> Person:
    """Whoever runs the `mchub` command on the hub's machine: they hold its keys already, so a
    hub admin, named after their OS user (never a web user: the subject says so)."""
    user = getpass.getuser()
    return Person(subject=f"os-user:{user}", name=user, hub_admin=True)


CULL = Person(subject="mchub:cull", name="MC Hub's cull of expired clusters", hub_admin=True)
"""Who destroys expired clusters: the hub itself, on its schedule."""


def _roles(grants: list[GroupGrant]) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    for grant in grants:
        if grant.project is not None and roles.get(grant.project) != Role.ADMIN:
            roles[grant.project] = Role(grant.role)
    return roles
