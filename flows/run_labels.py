"""What a cluster's flow run says about itself, for the front ends that derive its status.

A run is tagged `cluster:<hostname>` and labelled `mchub.hostname` (the client tags it at
submission; a run started from Prefect's dashboard is tagged by the flow), and the flow
moves its `mchub.phase` label at each boundary of the workflow. mchub.status reads a
cluster's status from its latest run's state and that phase: nothing else stores it.
"""

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext

from mchub.status import PHASE_LABEL, Phase


def current_run() -> FlowRun:
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("only a flow run can label itself")
    return context.flow_run


def set_phase(phase: Phase) -> None:
    set_labels({PHASE_LABEL: phase})


def set_labels(labels: dict[str, str]) -> None:
    """Merge `labels` into the current run's labels."""
    with get_client(sync_client=True) as client:
        client.update_flow_run_labels(current_run().id, labels)
