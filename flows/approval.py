"""The approval of a plan: the answer a person gives, and the wait for it, holding no
process while it lasts.

`Approval` is the input that resumes a run waiting for approval. Prefect's dashboard renders
its form from this model; the web page, the CLI and Prefect's REST API send the same fields.

The run is suspended (its process exits) until someone resumes it with an `Approval`. On
resume the flow runs again from the top; its second `suspend_flow_run` with the same key
does not suspend again but returns the answer given. The key is derived from the plan
record, so an answer only ever applies to the plan it was given for: a run that finds a
different plan on its way back asks again.

An answer counts only from someone who may act on the cluster (mchub.access.rights), named by
a person the hub signed for this very plan (mchub.access.signed): anyone holding Prefect's
credential can resume the run, but an answer that is unsigned, forged, signed for another plan
or given by someone without the right is refused, and the plan waits for another answer (under
a new key). After MAX_REFUSED_ANSWERS refusals the run fails rather than wait forever.
"""

import hashlib
from uuid import NAMESPACE_URL, uuid5

from prefect import get_run_logger
from prefect.events import emit_event
from prefect.exceptions import Pause
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.states import Cancelled, State

from flows import audit
from flows.run_labels import current_run, set_labels
from mchub.access.people import Person
from mchub.access.rights import AccessDenied, Ownership, check_act
from mchub.access.signed import answer_act, verified
from mchub.cluster.notices import cluster_event
from mchub.cluster.workspace import PlanRecord
from mchub.orchestration.audit import about_cluster
from mchub.orchestration.unbroken import unbroken
from mchub.settings import get_settings
from mchub.status import ANSWERED_BY_LABEL, answer_label, answered_labels
from mchub.terraform.plan import PlanSummary

MAX_REFUSED_ANSWERS = 3


class TooManyRefusedAnswers(AccessDenied):
    """Every answer the plan got was refused; the run gives up."""


class Approval(RunInput):
    approve: bool
    comment: str = ""
    person: str = ""
    """Who answers, signed by the hub for this plan (mchub.access.signed)."""


def approval_key(record: PlanRecord) -> str:
    return "approve-" + hashlib.sha256(record.model_dump_json().encode()).hexdigest()[:16]


def wait_for_approval(
    hostname: str, record: PlanRecord, summary: PlanSummary, ownership: Ownership | None
) -> tuple[Approval, Person]:
    """The answer to this plan and who gave it, suspending the run until someone who may act on
    the cluster (owned as `ownership` says) gives it. If none comes within
    settings.approval_timeout_seconds, Prefect's server fails the run."""
    # The plan as the form's description: whoever answers from Prefect's dashboard sees it.
    form = Approval.with_initial_data(description=summary.to_markdown(f"Plan for {hostname}"))
    base = approval_key(record)
    for attempt in range(MAX_REFUSED_ANSWERS + 1):
        key = base if attempt == 0 else f"{base}-{attempt}"
        announce_plan(hostname, summary, key)
        # Paused, then the form saved: a worker stopped in between would leave a plan that no
        # answer can resume. The suspension's Pause ends the engine anyway.
        with unbroken(ending=(Pause,)):
            answer = suspend_flow_run(wait_for_input=form, timeout=get_settings().approval_timeout_seconds, key=key)
        try:
            person = verified(answer.person, hostname, answer_act(key))
            check_act(person, ownership, hostname, "approve" if answer.approve else "reject")
        except AccessDenied as refused:
            get_run_logger().warning("an answer to the plan for %s was refused, it waits for another: %s", hostname, refused)
            continue
        # Labelled only once answered: a label written just before suspending delays the plan
        # being shown by as long as the server's database is busy, and a paused run is
        # awaiting approval whatever its phase label says.
        set_labels({**answered_labels(answer.approve), ANSWERED_BY_LABEL: person.label()})
        audit.record(answer_label(answer.approve), hostname, person.ref, answer.comment, step=key)
        return answer, person
    raise TooManyRefusedAnswers(
        f"{hostname}: the plan got {MAX_REFUSED_ANSWERS + 1} answers from people who may not answer it; "
        "nothing was changed: submit the change again"
    )


def announce_plan(hostname: str, summary: PlanSummary, key: str) -> None:
    """Tell whoever listens (the notifications) that the plan waits. Emitted before each
    suspension, and so again when the run resumes and passes here: the event's id, the same
    for one run and key, makes that one event."""
    emit_event(
        id=uuid5(NAMESPACE_URL, f"mchub:{current_run().id}:{key}"),
        event=cluster_event("awaiting-approval"),
        resource=about_cluster(hostname),
        payload={"message": "\n".join([f"Plan: {summary.counts}.", *summary.lines(), *summary.destructive_changes])},
    )


def rejection(answer: Approval, person: Person) -> State:
    """How a run ends when its plan is rejected: cancelled, with the comment as its message."""
    return Cancelled(message=answer.comment or f"rejected by {person.name}")
