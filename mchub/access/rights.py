"""Who may do what with which cluster. One rule for seeing, modifying, approving and
destroying a cluster: its owner while a member of its project, every admin of its project,
and the hub's admins. Creating one: a member or admin of the project, on a cloud the project
may build on (settings.projects).

Each cluster records its owner and project (Ownership, `owner.json` in its folder) when it is
created; a cluster without that record (made before the hub knew people) is the hub admins'.
The pages ask these questions to decide what to show; the flows ask them again before they act,
because a page request or a run can be forged.
"""

from pydantic import BaseModel, ConfigDict

from mchub.access.people import Person, PersonRef, Role
from mchub.errors import MCHubError
from mchub.settings import get_settings


class AccessDenied(MCHubError):
    """The person may not do this; the message says who may."""


class Ownership(BaseModel):
    """Who a cluster belongs to: the person who created it, in which project."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: PersonRef
    project: str


def may_act(person: Person, ownership: Ownership | None) -> bool:
    """May `person` see, modify, approve and destroy the cluster owned as `ownership` says?"""
    if person.hub_admin:
        return True
    if ownership is None:
        return False
    role = person.role_in(ownership.project)
    return role == Role.ADMIN or (role == Role.MEMBER and ownership.owner.subject == person.subject)


def is_admin_of(person: Person, ownership: Ownership | None) -> bool:
    """A hub admin, or an admin of the cluster's project: they see its audit trail."""
    return person.hub_admin or (ownership is not None and person.role_in(ownership.project) == Role.ADMIN)


def check_act(person: Person, ownership: Ownership | None, hostname: str, action: str) -> None:
    """AccessDenied unless `person` may do `action` ("modify", "destroy" ...) to `hostname`."""
    if not may_act(person, ownership):
        whose = (
            f"it belongs to {ownership.owner.name} in project {ownership.project}, so only they, "
            f"the admins of {ownership.project} and the hub's admins may"
            if ownership is not None else "it records no owner, so only the hub's admins may"
        )
        raise AccessDenied(f"{person.name} may not {action} {hostname}: {whose}")


def projects_to_create_in(person: Person) -> list[str]:
    """The projects `person` may create clusters in, that the hub knows (settings.projects)."""
    known = get_settings().projects
    return sorted(known if person.hub_admin else [project for project in person.projects if project in known])


def default_project(person: Person) -> str:
    """The project a cluster is created in when none is named: the first `person` may create in."""
    projects = projects_to_create_in(person)
    if not projects:
        raise AccessDenied(f"{person.name} is in no project of this hub, so may create no cluster")
    return projects[0]


def allowed_clouds(project: str) -> list[str]:
    """The clouds (names in clouds.yaml) that clusters of `project` may be built on."""
    return list(get_settings().projects.get(project, []))


def check_create(person: Person, project: str, cloud: str) -> None:
    """AccessDenied unless `person` may create a cluster in `project` on `cloud`."""
    if project not in projects_to_create_in(person):
        mine = ", ".join(projects_to_create_in(person)) or "none"
        raise AccessDenied(
            f"project: {person.name} may not create clusters in project {project!r} "
            f"(the projects they may create clusters in: {mine})"
        )
    clouds = allowed_clouds(project)
    if cloud not in clouds:
        raise AccessDenied(
            f"cloud: project {project} may build only on {', '.join(clouds) or 'no cloud'}, not on {cloud!r}"
        )
