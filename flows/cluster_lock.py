"""One Terraform run per cluster: a Prefect global concurrency limit `cluster-<hostname>` of 1.

The flows hold it around their Terraform steps only, never while waiting for approval (a
suspended run holds nothing). A run that finds it taken is refused, naming the run that
holds it, rather than queued behind it: the person asked for an action on a cluster in a
known state, and it may be in another state by the time the holder lets go.
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency._asyncio import AcquireConcurrencySlotTimeoutError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows.run_labels import current_run
from mchub.orchestration import runs

# A run reaches the lock only after finding no other run of its cluster unfinished, so the
# wait is for a hand-over or for a server slowed by many runs at once, which on a small
# machine takes more than a few seconds.
ACQUIRE_TIMEOUT_SECONDS = 30.0
# Renewed while the run lives; a run killed holding the lock frees it this long after.
LEASE_SECONDS = 300.0


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
    held = ExitStack()
    try:
        held.enter_context(
            concurrency(
                name,
                occupy=1,
                strict=True,  # without it a missing limit would silently lock nothing
                timeout_seconds=ACQUIRE_TIMEOUT_SECONDS,
                lease_duration=LEASE_SECONDS,
                holder=ConcurrencyLeaseHolder(type="flow_run", id=run_id),
                # A lease renewal lost to a busy database must not kill a Terraform apply
                # halfway: the lease only expires if this process stops renewing it.
                raise_on_lease_renewal_failure=False,
            )
        )
    except AcquireConcurrencySlotTimeoutError:
        runs.refuse_if_busy([run for run in runs.runs_of(hostname) if run.id != run_id], hostname)
        # No run of the cluster is unfinished: the slot belongs to a process that died
        # holding it (its lease expires on its own), or the server could not answer in time.
        raise runs.ClusterBusy(
            f"{hostname} is busy: its lock {name} was not given within {ACQUIRE_TIMEOUT_SECONDS:g} s, "
            "either because a run stopped without releasing it (it is released within "
            f"{LEASE_SECONDS:g} s of that) or because Prefect's server is overloaded; try again in a few minutes"
        ) from None
    with held:
        yield
