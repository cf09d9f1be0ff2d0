"""The approval of a plan: the answer a person gives, and the wait for it, holding no
process while it lasts.

`Approval` is the input that resumes a run waiting for approval. Prefect's dashboard renders
its form from this model; the web page, the CLI and Prefect's REST API send the same fields.

The run is suspended (its process exits) until someone resumes it with an `Approval`. On
resume the flow runs again from the top; its second `suspend_flow_run` with the same key
does not suspend again but returns the answer given. The key is derived from the plan
record, so an answer only ever applies to the plan it was given for: a run that finds a
different plan on its way back asks again.
"""

import hashlib

from prefect import get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.states import Cancelled, State

from flows.run_labels import set_labels
from mchub.cluster.workspace import PlanRecord
from mchub.settings import get_settings
from mchub.status import answer_label, answered_labels
from mchub.terraform.plan import PlanSummary


class Approval(RunInput):
    approve: bool
    comment: str = ""
    by: str = ""


def approval_key(record: PlanRecord) -> str:
    return "approve-" + hashlib.sha256(record.model_dump_json().encode()).hexdigest()[:16]


def wait_for_approval(hostname: str, record: PlanRecord, summary: PlanSummary) -> Approval:
    """The answer to this plan, suspending the run until it is given. If none comes within
    settings.approval_timeout_seconds, Prefect's server fails the run."""
    # The plan as the form's description: whoever answers from Prefect's dashboard sees it.
    form = Approval.with_initial_data(description=summary.to_markdown(f"Plan for {hostname}"))
    answer = suspend_flow_run(
        wait_for_input=form,
        timeout=get_settings().approval_timeout_seconds,
        key=approval_key(record),
    )
    # Labelled only once answered: a label written just before suspending delays the plan
    # being shown by as long as the server's database is busy, and a paused run is
    # awaiting approval whatever its phase label says.
    set_labels(answered_labels(answer.approve))
    verdict = answer_label(answer.approve)
    get_run_logger().info(
        "plan for %s %s by %s%s", hostname, verdict, answer.by or "an unnamed person",
        f": {answer.comment}" if answer.comment else "",
    )
    return answer


def rejection(answer: Approval) -> State:
    """How a run ends when its plan is rejected: cancelled, with the comment as its message."""
    return Cancelled(message=answer.comment or f"rejected by {answer.by or 'an unnamed person'}")
