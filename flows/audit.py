"""Recording the audit trail (mchub.orchestration.audit) from the flows, where the actions
happen."""

from uuid import NAMESPACE_URL, uuid5

from prefect import get_run_logger
from prefect.events import emit_event

from flows.run_labels import current_run
from mchub.access.people import PersonRef
from mchub.orchestration.audit import event_fields
from mchub.status import Audited


def record(action: Audited, hostname: str, person: PersonRef, detail: str = "", step: str = "") -> None:
    """Record `action` once per run and `step`: a run resumed (after its approval, after its
    provisioning) goes through its steps again, and the event's id, the same each time, lets
    Prefect keep one."""
    emit_event(
        id=uuid5(NAMESPACE_URL, f"mchub:{current_run().id}:{action}:{step}"),
        **event_fields(action, hostname, person, detail),
    )
    get_run_logger().info("%s %s by %s%s", hostname, action, person.label(), f": {detail}" if detail else "")
