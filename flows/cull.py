"""cull-expired-clusters: warn before a cluster expires, then destroy it (hourly, from prefect.yaml).

Each cluster with an expiration date gets its reminders first (mchub.cluster.expiration: by
default 7 days, 1 day and 1 hour before), each emitted once as the Prefect event
`mchub.cluster.expiry-reminder` and recorded in the cluster's folder, where its page shows it.
A cluster is destroyed only once it has expired and its last reminder went out at least that
reminder's lead before (expiration.may_cull): one destroy-cluster run, approved in advance, per
such cluster (the destroy run checks again that the cluster has expired before it skips the
approval). A cluster that another run is acting on is left alone this time, and the log says
so; the next cull tries again. It also removes the request files that no run will read
(runs.discard_abandoned_requests): each holds a guest password.
"""

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.states import Completed, State

from mchub.access.people import CULL
from mchub.cluster import shared_store
from mchub.cluster.expiration import Reminder, due_reminder, may_cull, record_sent
from mchub.cluster.notices import cluster_event
from mchub.cluster.workspace import list_hostnames, open_existing
from mchub.orchestration import runs
from mchub.orchestration.audit import about_cluster
from mchub.settings import get_settings
from mchub.spec.model import SpecError


def remind_and_pick_expired() -> list[str]:
    """Send the reminders that are due, and return the clusters to destroy now."""
    logger = get_run_logger()
    settings = get_settings()
    leads = settings.expiry_reminder_hours
    found = []
    shared_store.pull()
    for hostname in list_hostnames(settings.clusters_dir):
        workspace = open_existing(settings.clusters_dir, hostname)
        now = datetime.now(UTC)
        try:
            reminder = due_reminder(workspace, leads, now)
            if reminder is not None:
                send_reminder(reminder)
                record_sent(workspace, reminder, now)
            if may_cull(workspace, leads, now):
                found.append(hostname)
        except SpecError as error:
            logger.warning("%s: its spec.yaml cannot be read, so its expiration is unknown: %s", hostname, error)
    shared_store.push()  # the reminders sent, so that no machine sends them again
    return found


def send_reminder(reminder: Reminder) -> None:
    emit_event(
        event=cluster_event("expiry-reminder"),
        resource=about_cluster(reminder.hostname),
        payload={
            "hostname": reminder.hostname,
            "expires_at": reminder.expires_at.isoformat(),
            "lead_hours": reminder.lead_hours,
            "message": reminder.message(),
        },
    )
    get_run_logger().info("reminder sent: %s", reminder.message())


@flow(name="cull-expired-clusters", persist_result=False)
def cull_expired_clusters() -> State:
    logger = get_run_logger()
    started, skipped = [], []
    for hostname in remind_and_pick_expired():
        try:
            run_id = runs.submit_destroy(hostname, auto_approve=True, person=CULL)
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
