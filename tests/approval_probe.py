"""A flow that only waits for an answer to a plan, deployed by the tests of approve/reject:
it suspends the way the cluster flows do, with their `Approval` input, and says who answered
(the name in the signed person it got, unchecked: the cluster flows check it)."""

import base64

from prefect import flow
from prefect.flow_runs import suspend_flow_run
from prefect.states import Cancelled, Completed, State

from flows.approval import Approval
from mchub.access.signed import Mandate


@flow(name="approval-probe", persist_result=False)
def approval_probe() -> State:
    answer = suspend_flow_run(wait_for_input=Approval, timeout=600, key="probe")
    if not answer.approve:
        return Cancelled(message=answer.comment)
    body = answer.person.rpartition(".")[0]
    who = Mandate.model_validate_json(base64.urlsafe_b64decode(body)).person.name if body else "an unsigned person"
    return Completed(message=f"approved by {who}: {answer.comment}")
