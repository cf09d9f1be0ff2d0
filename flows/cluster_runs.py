"""One action at a time per cluster: a run claims its cluster, or is refused while another
unfinished run (one waiting for approval included) acts on it; then it takes the cluster's
Terraform lock (flows.cluster_lock).

The same rule, and the same message naming the run that holds the cluster, as the client's
check at submission (mchub.orchestration.runs); the flows check again because a run can also be
started from Prefect's dashboard, or submitted by two people at the same moment.
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun

from flows.cluster_lock import cluster_lock
from flows.run_labels import current_run
from mchub.access.rights import AccessDenied
from mchub.cluster import lifecycle
from mchub.orchestration import runs
from mchub.spec.hostname import HostnameError, checked_hostname
from mchub.status import HOSTNAME_LABEL, PHASE_LABEL, Phase, cluster_tag


@contextmanager
def cluster_claimed(hostname: str, phase: Phase, request_file: str | None = None) -> Iterator[None]:
    """Act on `hostname` as its one run, holding its Terraform lock, starting in `phase`.

    `hostname` is a parameter anyone may set: it is checked before it names a tag, a lock or
    a folder. A run refused here (HostnameError, runs.ClusterBusy) never reads its
    `request_file`, which is removed: it holds the guest password and no run will use it (a
    new submission writes a new one). A run refused in the block because its person may not act
    (AccessDenied) lets go of the cluster too: it changed nothing, and must not stand as the
    cluster's status.
    """
    with ExitStack() as held:
        try:
            checked_hostname(hostname)
            claim_cluster(hostname, phase)
            held.enter_context(cluster_lock(hostname))
        except (runs.ClusterBusy, HostnameError):
            if request_file is not None:
                lifecycle.discard_request(lifecycle.request_here(Path(request_file)))
            raise
        try:
            yield
        except AccessDenied:
            release_cluster(hostname)
            raise


def release_cluster(hostname: str) -> None:
    """The current run no longer counts among `hostname`'s runs (its cluster tag dropped)."""
    tag = cluster_tag(hostname)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(current_run().id)
        client.update_flow_run(run.id, tags=[t for t in run.tags if t != tag])


def refuse_if_claimed_before(hostname: str, me: FlowRun) -> None:
    """runs.ClusterBusy, naming the run, while a run created before `me` acts on `hostname`.

    Two runs submitted at the same moment each find the other unfinished: if each deferred
    to the other, both would be refused. The older one goes on, so exactly one of them acts.
    """
    mine = (me.created or me.expected_start_time, str(me.id))
    older = [run for run in runs.runs_of(hostname) if (run.created, str(run.id)) < mine]
    runs.refuse_if_busy([run for run in older if run.busy], hostname)


def claim_cluster(hostname: str, phase: Phase) -> None:
    """Make the current run the one acting on `hostname`, in its first phase (a run resumed
    after its approval stays in the phase it had).

    A refused run drops its cluster tag: it changed nothing, and as the cluster's newest
    run it would otherwise hide the cluster's real status behind its failure.
    """
    run = current_run()
    tag = cluster_tag(hostname)
    with get_client(sync_client=True) as client:
        try:
            refuse_if_claimed_before(hostname, run)
        except runs.ClusterBusy:
            client.update_flow_run(run.id, tags=[t for t in run.tags if t != tag])
            raise
        if tag not in run.tags:
            client.update_flow_run(run.id, tags=[*run.tags, tag])
        labels = {HOSTNAME_LABEL: hostname}
        if PHASE_LABEL not in (run.labels or {}):
            labels[PHASE_LABEL] = phase
        client.update_flow_run_labels(run.id, labels)
