"""The audit trail: who created, approved, rejected, modified, cancelled or destroyed which
cluster, and when, kept as Prefect events (`mchub.cluster.<action>`), so Prefect's dashboard
shows them in its event feed. The cluster is the event's resource, the person its related
`actor`. The flows emit them where the action happens (flows/audit.py); a cancel, which no flow
carries out, is posted here by whoever cancels. The cluster's page shows the trail to admins."""

from datetime import UTC, datetime
from typing import Any, get_args
from uuid import UUID, uuid4

from prefect.client.orchestration import SyncPrefectClient
from pydantic import BaseModel

from mchub.access.people import PersonRef
from mchub.status import AUDIT_EVENT_PREFIX, Audited

ACTOR_ROLE = "actor"


class AuditEntry(BaseModel):
    """One action of the audit trail: what was done, when, by whom."""

    occurred: datetime
    action: str
    by: str
    detail: str = ""


def cluster_resource(hostname: str) -> str:
    """The Prefect resource id a cluster's events (its audit trail, its notices) are about."""
    return f"{AUDIT_EVENT_PREFIX}{hostname}"


def about_cluster(hostname: str) -> dict[str, str]:
    """The resource of an event about the cluster `hostname`."""
    return {"prefect.resource.id": cluster_resource(hostname), "prefect.resource.name": hostname}


def event_fields(action: Audited, hostname: str, person: PersonRef, detail: str = "") -> dict[str, Any]:
    """The audit event of `person` doing `action` to `hostname`, as the keyword arguments of
    Prefect's `emit_event` (and the fields of its Event)."""
    return {
        "event": f"{AUDIT_EVENT_PREFIX}{action}",
        "resource": about_cluster(hostname),
        "related": [{
            "prefect.resource.id": f"mchub.person.{person.subject}",
            "prefect.resource.role": ACTOR_ROLE,
            "prefect.resource.name": person.name,
            "mchub.email": person.email,
        }],
        "payload": {"detail": detail} if detail else {},
    }


def post(client: SyncPrefectClient, action: Audited, hostname: str, person: PersonRef, detail: str = "",
         event_id: UUID | None = None) -> None:
    """Record an action taken outside any flow run, through Prefect's events API."""
    event = {**event_fields(action, hostname, person, detail), "id": str(event_id or uuid4()),
             "occurred": datetime.now(UTC).isoformat()}
    # The client's own HTTP session: it sends the credential and the CSRF token a POST needs.
    client._client.post("/events", json=[event]).raise_for_status()


def audit_trail(client: SyncPrefectClient, hostname: str, limit: int = 50) -> list[AuditEntry]:
    """Who did what to `hostname`, newest first; Prefect keeps events for a limited time
    (PREFECT_EVENTS_RETENTION_PERIOD)."""
    query = {
        "filter": {
            "event": {"name": [f"{AUDIT_EVENT_PREFIX}{action}" for action in get_args(Audited)]},
            "resource": {"id": [cluster_resource(hostname)]},
            "order": "DESC",
        },
        "limit": limit,
    }
    response = client._client.post("/events/filter", json=query)
    response.raise_for_status()
    entries = []
    for event in response.json()["events"]:
        actor = next((r for r in event.get("related", []) if r.get("prefect.resource.role") == ACTOR_ROLE), {})
        name, email = actor.get("prefect.resource.name", "someone"), actor.get("mchub.email", "")
        entries.append(AuditEntry(
            occurred=event["occurred"],
            action=event["event"].removeprefix(AUDIT_EVENT_PREFIX),
            by=f"{name} <{email}>" if email else name,
            detail=str(event.get("payload", {}).get("detail", "")),
        ))
    return entries
