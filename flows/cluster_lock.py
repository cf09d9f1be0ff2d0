"""One Terraform run per cluster: a Prefect global concurrency limit `cluster-<hostname>` of 1.

The flows hold it around their Terraform steps only, never while waiting for approval (a
suspended run holds nothing). A run that finds it taken is refused, naming the run that
holds it, rather than queued behind it: the person asked for an action on a cluster in a
known state, and it may be in another state by the time the holder lets go.

A run killed holding the lock keeps it until its lease expires, unless someone frees it: the
holder labels itself with its lease, and the next run of the cluster releases the leases of
runs that have ended (crashed runs included), so a retry goes ahead as soon as the dead run
is known dead. Prefect's `concurrency()` does not tell its lease, so the lock acquires,
renews and releases it with the functions `concurrency()` is made of (Prefect 3.9.1).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency._asyncio import AcquireConcurrencySlotTimeoutError
from prefect.concurrency._leases import maintain_concurrency_lease
from prefect.concurrency._sync import acquire_concurrency_slots_with_lease
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows.run_labels import current_run, set_labels
from mchub.cluster import shared_store
from mchub.orchestration import runs
from mchub.status import FINAL_STATES, cluster_tag

# A run reaches the lock only after finding no other run of its cluster unfinished, so the
# wait is for a hand-over or for a server slowed by many runs at once, which on a small
# machine takes more than a few seconds.
ACQUIRE_TIMEOUT_SECONDS = 30.0
# Renewed while the run lives; a run that dies holding the lock, and is not yet known to
# have ended, keeps it this long.
LEASE_SECONDS = 300.0
LEASE_LABEL = "mchub.lock_lease"
"""The lease of the cluster lock a run holds; emptied when it lets go."""


def lock_name(hostname: str) -> str:
    return f"cluster-{hostname}"


def _ensure_limit(name: str) -> None:
    # Created rather than upserted: creation is atomic, so two runs of a new cluster
    # starting together cannot both create it, and an existing limit is left as it is.
    # Read first: Prefect's server logs every refused creation with a long traceback.
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass


@contextmanager
def cluster_lock(hostname: str) -> Iterator[None]:
    """Hold the cluster's Terraform lock, or raise runs.ClusterBusy naming the run that holds it."""
    run_id = current_run().id
    name = lock_name(hostname)
    _ensure_limit(name)
    _release_locks_of_ended_runs(hostname)
    try:
        acquired = acquire_concurrency_slots_with_lease(
            [name],
            1,
            strict=True,  # without it a missing limit would silently lock nothing
            timeout_seconds=ACQUIRE_TIMEOUT_SECONDS,
            lease_duration=LEASE_SECONDS,
            holder=ConcurrencyLeaseHolder(type="flow_run", id=run_id),
        )
    except AcquireConcurrencySlotTimeoutError:
        runs.refuse_if_busy([run for run in runs.runs_of(hostname) if run.id != run_id], hostname)
        # No run of the cluster is unfinished: a process that is gone but not yet known to
        # have ended holds it, or the server could not answer in time.
        raise runs.ClusterBusy(
            f"{hostname} is busy: its lock {name} was not given within {ACQUIRE_TIMEOUT_SECONDS:g} s, "
            "either because a run stopped without releasing it (it is released once that run is "
            f"marked crashed, or within {LEASE_SECONDS:g} s) or because Prefect's server is overloaded; "
            "try again in a few minutes"
        ) from None
    try:
        set_labels({LEASE_LABEL: str(acquired.lease_id)})
        # With workers on several machines, the holder starts from the cluster's folder as the
        # last holder left it, wherever that ran, and leaves it so for the next.
        shared_store.pull()
        shared_store.copy_state(hostname)
        try:
            # A lease renewal lost to a busy database must not kill a Terraform apply halfway:
            # the lease only expires if this process stops renewing it.
            with maintain_concurrency_lease(acquired.lease_id, LEASE_SECONDS, raise_on_lease_renewal_failure=False):
                yield
        finally:
            shared_store.copy_state(hostname)
            shared_store.push()
    finally:
        _release(acquired.lease_id)
        set_labels({LEASE_LABEL: ""})


def _release_locks_of_ended_runs(hostname: str) -> None:
    """Release the leases that ended runs of `hostname` still hold: each run let go of its own
    unless it died holding it."""
    with get_client(sync_client=True) as client:
        ended = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[cluster_tag(hostname)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=sorted(FINAL_STATES))),
            )
        )
    for run in ended:
        if lease := (run.labels or {}).get(LEASE_LABEL):
            _release(UUID(str(lease)))
            with get_client(sync_client=True) as client:
                client.update_flow_run_labels(run.id, {LEASE_LABEL: ""})


def _release(lease_id: UUID) -> None:
    """Give the lock back; a lease already released or expired is a no-op for the server."""
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(lease_id)
