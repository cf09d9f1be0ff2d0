"""destroy-cluster: destroy every cloud resource of a cluster, then archive its folder.

    plan -destroy → approval (unless auto_approve and expired) → apply → archive the folder

`auto_approve` (the hourly cull's) skips the approval only for a cluster past its expiration
date, as its spec says when this run reads it, whose last expiry reminder went out long enough
ago (mchub.cluster.expiration.may_cull): anyone who can start a run can set the parameter. For any other cluster the plan waits for a person's approval as usual, and the
log and the plan's title say why.

`person` is who asks, signed by the hub; the run acts only if they may act on the cluster
(mchub.access.rights), and its plan waits for an answer from someone who may.

Like build-cluster, the wait for approval holds no process and the flow runs again from
the top once answered; the destroy plan made before the wait is the one applied.
"""

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from flows import audit
from flows.approval import rejection, wait_for_approval
from flows.cluster_lock import cluster_lock
from flows.cluster_runs import cluster_claimed
from flows.reports import apply_approved_plan, publish_plan
from flows.run_labels import set_phase
from mchub.cluster.expiration import expired, may_cull
from mchub.cluster.workspace import Workspace
from mchub.settings import get_settings
from mchub.spec.model import SpecError
from tasks.terraform_steps import init_terraform, plan_changes
from tasks.workspace_steps import archive_workspace, open_workspace


@flow(name="destroy-cluster", persist_result=False)
def destroy_cluster(hostname: str, auto_approve: bool = False, person: str = "") -> State:
    """Destroy `hostname`; `auto_approve` skips the approval of an expired cluster (the
    scheduled cull uses it); `person`: who asks, signed by the hub."""
    with cluster_claimed(hostname, "destroy-plan"):
        workspace, terraform, asker = open_workspace(hostname, person)
        refusal = approval_needed(workspace) if auto_approve else ""
        init_terraform(workspace, terraform)
        record, summary = plan_changes(workspace, terraform, destroy=True)
    if refusal:
        get_run_logger().warning("auto_approve refused: %s; the destroy plan waits for a person's approval", refusal)
    publish_plan(hostname, summary, f"Destroy plan (not auto-approved: {refusal})" if refusal else "Destroy plan")

    if summary.has_changes and (refusal or not auto_approve):
        answer, answerer = wait_for_approval(hostname, record, summary, workspace.ownership())
        if not answer.approve:
            return rejection(answer, answerer)

    set_phase("destroy")
    with cluster_lock(hostname):
        apply_approved_plan(hostname, workspace, terraform, record)
        archived = archive_workspace(workspace)
    audit.record("destroyed", hostname, asker.ref)
    return Completed(message=f"{hostname} destroyed; its folder is archived as {archived.name}")


def approval_needed(workspace: Workspace) -> str:
    """Why destroying the cluster needs a person's approval even when auto-approved: "" once it
    is past its expiration date."""
    try:
        spec = workspace.spec()
    except SpecError:
        return "its spec cannot be read, so it is not known to have expired"
    if not expired(spec):
        return f"it expires on {spec.expiration_date}, not past yet" if spec.expiration_date else "it has no expiration date"
    if not may_cull(workspace, get_settings().expiry_reminder_hours, datetime.now(UTC)):
        return "its last expiry reminder has not gone out, or went out less than its lead ago"
    return ""
