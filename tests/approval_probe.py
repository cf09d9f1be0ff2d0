"""A flow that only waits for an answer to a plan, deployed by the tests of approve/reject:
it suspends the way the cluster flows do, with their `Approval` input."""

from prefect import flow
from prefect.flow_runs import suspend_flow_run
from prefect.states import Cancelled, Completed, State

from flows.approval import Approval


@flow(name="approval-probe", persist_result=False)
def approval_probe() -> State:
    answer = suspend_flow_run(wait_for_input=Approval, timeout=600, key="probe")
    if not answer.approve:
        return Cancelled(message=answer.comment)
    return Completed(message=f"approved by {answer.by}: {answer.comment}")
