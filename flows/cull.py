"""cull-expired-clusters: destroy every cluster past its expiration date (hourly, from prefect.yaml).

One destroy-cluster run, approved in advance, per expired cluster (the destroy run checks
again that the cluster has expired before it skips the approval). A cluster that another
run is acting on is left alone this time, and the log says so; the next cull tries again.
It also removes the request files that no run will read (runs.discard_abandoned_requests):
each holds a guest password.
"""

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from mchub.cluster.expiration import expired
from mchub.cluster.workspace import list_hostnames, open_existing
from mchub.orchestration import runs
from mchub.settings import get_settings
from mchub.spec.model import SpecError


def expired_clusters() -> list[str]:
    """Hostnames of the clusters whose expiration date has passed (in UTC)."""
    logger = get_run_logger()
    clusters_dir = get_settings().clusters_dir
    found = []
    for hostname in list_hostnames(clusters_dir):
        try:
            spec = open_existing(clusters_dir, hostname).spec()
        except SpecError as error:
            logger.warning("%s: its spec.yaml cannot be read, so its expiration is unknown: %s", hostname, error)
            continue
        if expired(spec):
            found.append(hostname)
    return found


@flow(name="cull-expired-clusters", persist_result=False)
def cull_expired_clusters() -> State:
    logger = get_run_logger()
    started, skipped = [], []
    for hostname in expired_clusters():
        try:
            run_id = runs.submit_destroy(hostname, auto_approve=True)
        except runs.ClusterBusy as busy:
            logger.warning("%s has expired but is left for the next cull: %s", hostname, busy)
            skipped.append(hostname)
            continue
        logger.info("%s has expired: %s started", hostname, runs.read_run(run_id).describe())
        started.append(hostname)
    for request in runs.discard_abandoned_requests():
        logger.info("removed %s: no run will read it (its run ended before starting, or was never made)", request.name)
    return Completed(
        message=f"{len(started)} expired cluster(s) being destroyed"
        + (f": {', '.join(started)}" if started else "")
        + (f"; {len(skipped)} busy, left for the next cull: {', '.join(skipped)}" if skipped else "")
    )
