"""destroy-cluster: destroy every cloud resource of a cluster, then archive its folder.

    plan -destroy → approval (unless auto_approve) → apply → archive the folder

Like build-cluster, the wait for approval holds no process and the flow runs again from
the top once answered; the destroy plan made before the wait is the one applied.
"""

from prefect import flow
from prefect.states import Completed, State

from flows.approval_gate import rejection, wait_for_approval
from flows.cluster_lock import cluster_lock
from flows.cluster_runs import claim_cluster
from flows.reports import apply_reported, publish_plan
from flows.run_labels import set_phase
from mchub import lifecycle
from mchub.settings import get_settings
from mchub.workspace import open_existing
from tasks.terraform_steps import init_terraform, plan_changes
from tasks.workspace_steps import archive_workspace


@flow(name="destroy-cluster", persist_result=False)
def destroy_cluster(hostname: str, auto_approve: bool = False) -> State:
    """Destroy `hostname`; `auto_approve` skips the approval (the scheduled cull uses it)."""
    claim_cluster(hostname, "destroy-plan")
    with cluster_lock(hostname):
        workspace = open_existing(get_settings().clusters_dir, hostname)
        terraform = lifecycle.terraform_for(workspace)
        init_terraform(workspace, terraform)
        record, summary = plan_changes(workspace, terraform, destroy=True)
    publish_plan(hostname, summary, "Destroy plan")

    if summary.has_changes and not auto_approve:
        answer = wait_for_approval(hostname, record, summary)
        if not answer.approve:
            return rejection(answer)

    set_phase("destroy")
    with cluster_lock(hostname):
        apply_reported(hostname, workspace, terraform, record)
        archived = archive_workspace(workspace)
    return Completed(message=f"{hostname} destroyed; its folder is archived as {archived.name}")
