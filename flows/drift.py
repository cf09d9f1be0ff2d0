"""detect-drift: plan every cluster that is up from its applied spec, and never apply (daily,
from prefect.yaml; MCHUB_DRIFT_CHECK_CRON).

A plan with changes means the cloud no longer matches what Terraform built: the cluster shows
`drifted` with the plan's summary (mchub.cluster.drift) until a run acts on it again (its
page's Repair is a build of the applied spec). Each cluster is planned under its Terraform lock;
one that a run is acting on (waiting for approval included) is left for the next check. The
run is not tagged with any cluster, so the clusters' statuses and histories never show it.
"""

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from flows.cluster_lock import cluster_lock
from mchub.cluster import drift
from mchub.cluster.workspace import list_hostnames
from mchub.errors import MCHubError
from mchub.orchestration import runs
from mchub.settings import get_settings
from mchub.status import Status, cluster_status
from tasks.terraform_steps import check_drift, init_terraform
from tasks.workspace_steps import open_applied

UP = (Status.PROVISIONING_SUCCESS, Status.DRIFTED)


def check_cluster(hostname: str) -> drift.DriftCheck | None:
    """The cluster's new drift check; None when it is not up (logged); runs.ClusterBusy while a run acts on it."""
    logger = get_run_logger()
    history = runs.runs_of(hostname)
    status = cluster_status(history, drift.last_check_of(hostname))
    if status not in UP:
        logger.info("%s is %s: only a cluster that is up is checked", hostname, status)
        return None
    with cluster_lock(hostname):  # runs.ClusterBusy while a run holds it
        runs.refuse_if_busy(runs.runs_of(hostname), hostname)  # one started since the first look
        workspace, terraform = open_applied(hostname)
        init_terraform(workspace, terraform)
        return check_drift(workspace, terraform)


@flow(name="detect-drift", persist_result=False)
def detect_drift() -> State:
    logger = get_run_logger()
    drifted, unchanged, skipped = [], [], []
    for hostname in list_hostnames(get_settings().clusters_dir):
        try:
            check = check_cluster(hostname)
        except runs.ClusterBusy as busy:
            logger.info("%s is left for the next check: %s", hostname, busy)
            skipped.append(hostname)
            continue
        except MCHubError as error:  # one cluster's problem (its state, its cloud) stops no other's check
            logger.warning("%s could not be checked: %s", hostname, error)
            skipped.append(hostname)
            continue
        if check is None:
            continue
        if check.drifted:
            logger.warning("%s has drifted: %s", hostname, "; ".join(check.summary.lines()))
            drifted.append(hostname)
        else:
            logger.info("%s matches what Terraform built", hostname)
            unchanged.append(hostname)
    return Completed(
        message=f"{len(drifted)} drifted" + (f" ({', '.join(drifted)})" if drifted else "")
        + f", {len(unchanged)} unchanged"
        + (f", {len(skipped)} not checked ({', '.join(skipped)})" if skipped else "")
    )
