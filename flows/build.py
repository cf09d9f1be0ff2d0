"""build-cluster: create a cluster, or change an existing one to match its new spec.

    prepare → init → plan ─ no changes ───────────────┐
                          └ approval ─ rejected: end │ (a new cluster's folder is archived)
                                     └ approved ─────┴→ apply the approved plan → read state
                                                         → probe JupyterHub and FreeIPA → done

Waiting for approval suspends the run: no process is kept, and on resume the flow runs
again from the top. Waiting for the services suspends it too, until the prober ends it
(flows/provisioning.py). Every step before the approval recognises its finished work (same
spec → no new folder, init or plan), and the apply uses exactly the approved plan file.

The parameters are a request file's path and the hostname, never the spec: the spec holds
the guest password, and flow parameters are stored in Prefect's database. `person` is who asks,
signed by the hub (mchub.access.signed); the run acts only if they may: create a cluster in
`project` on the spec's cloud, or change this cluster (mchub.access.rights).
"""

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.states import State

from flows import audit
from flows.approval import rejection, wait_for_approval
from flows.cluster_lock import cluster_lock
from flows.cluster_runs import cluster_claimed
from flows.provisioning import wait_for_services
from flows.reports import apply_approved_plan, publish_plan
from flows.run_labels import set_phase
from tasks.cluster_state import read_state
from tasks.terraform_steps import init_terraform, plan_changes
from tasks.workspace_steps import archive_workspace, prepare_workspace


@flow(name="build-cluster", persist_result=False)
def build_cluster(request_file: str, hostname: str, new: bool, person: str = "", project: str = "") -> State:
    """Build `hostname` from the spec in `request_file` (written by
    mchub.cluster.lifecycle.new_cluster_request); `new`: a cluster that does not exist yet, in
    `project`; `person`: who asks, signed by the hub."""
    with cluster_claimed(hostname, "plan", request_file):
        workspace, terraform, asker = prepare_workspace(request_file, hostname, new, person, project)
        init_terraform(workspace, terraform)
        record, summary = plan_changes(workspace, terraform)
    publish_plan(hostname, summary, "Plan")

    if summary.has_changes:
        answer, answerer = wait_for_approval(hostname, record, summary, workspace.ownership())
        if not answer.approve:
            if new:
                # Nothing was built: free the name for another try, keeping the folder's logs.
                with cluster_lock(hostname):
                    archive_workspace(workspace)
            return rejection(answer, answerer)
    else:
        get_run_logger().info("%s already matches its spec: no approval needed", hostname)

    set_phase("build")
    audit.record("created" if new else "modified", hostname, asker.ref)
    with cluster_lock(hostname):
        apply_approved_plan(hostname, workspace, terraform, record)
        apply_ended = datetime.now(UTC)
        state = read_state(workspace, terraform)

    set_phase("provisioning")
    wait_for_services(hostname, state.service_urls, apply_ended)  # the prober ends the run
