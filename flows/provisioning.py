"""The last phase of a build: wait until the cluster's JupyterHub and FreeIPA both answer,
holding no process.

Puppet takes 15 to 40 minutes to configure a real cluster. Rather than keep its run's
process (and a worker slot) that long, the build run writes what it waits for into its
labels and suspends. One long-lived prober (`python -m flows.provisioning`, a part of
`mchub up`) serves every cluster waiting so: it probes their services concurrently, each
with a retrying task (tasks/probe.py) whose answers go to the run's log, until one deadline
counted from the END of the apply (a modification made days later gets the same time as a
new cluster). It then ends the run itself: completed once both services answered 200,
failed with their last answers when the deadline passed. The run is never resumed.

The prober keeps nothing of its own: restarted, it finds the waiting runs in Prefect again.
Were no prober to run, Prefect's server would fail the run GRACE_SECONDS after its deadline,
when its suspension times out.
"""

import asyncio
import contextlib
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import AsyncClientContext
from prefect.flow_runs import suspend_flow_run
from prefect.states import Completed, Failed, State
from pydantic import BaseModel

from flows.run_labels import set_labels
from mchub.settings import get_settings
from mchub.status import BUILD_FLOW, HOSTNAME_LABEL, PHASE_LABEL
from tasks.probe import probe_service

WAIT_LABEL = "mchub.provisioning"
SCAN_SECONDS = 2.0
"""How often the prober looks for runs that started waiting."""
GRACE_SECONDS = 300.0
"""How long after its deadline a waiting run is failed by Prefect's server, should no prober end it."""
PAGE_SIZE = 200
STOP_SECONDS = 1.0
"""How long the probes in flight have to end once the prober is stopped."""

log = logging.getLogger("mchub.prober")


class ServicesWait(BaseModel):
    """What a build run waits for, in its WAIT_LABEL: the prober's only input."""

    services: dict[str, str]
    """Each service's URL, by name."""
    apply_ended: datetime
    deadline: datetime


def wait_for_services(hostname: str, service_urls: dict[str, str], apply_ended: datetime) -> NoReturn:
    """Suspend the run until the prober ends it (see the module): completed once every
    service answers 200, failed if one has not within settings.provisioning_timeout_seconds
    of `apply_ended`."""
    deadline = apply_ended + timedelta(seconds=get_settings().provisioning_timeout_seconds)
    waiting = ServicesWait(services=service_urls, apply_ended=apply_ended, deadline=deadline)
    set_labels({WAIT_LABEL: waiting.model_dump_json()})
    # Its key is new at every apply: were the run ever resumed (it is not meant to be), it
    # would apply nothing new and wait again.
    remaining = (deadline - datetime.now(UTC)).total_seconds()
    suspend_flow_run(timeout=max(0, int(remaining + GRACE_SECONDS)), key=f"provisioning-{apply_ended.isoformat()}")
    raise RuntimeError(f"{hostname}'s run was resumed while its services were awaited; run the build again")


# --- the prober ------------------------------------------------------------------------


async def serve() -> None:
    """Probe every waiting cluster, each as soon as it starts waiting; never returns."""
    probing: dict[UUID, asyncio.Task[None]] = {}
    # One client for the prober, its probe tasks' engines and their log lines (get_client
    # returns it within this context): a client per attempt costs the server a connection and
    # a CSRF token each time, for every cluster, as long as Puppet takes.
    async with AsyncClientContext() as shared:
        client = shared.client
        try:
            while True:
                waiting = {run.id: run for run in await _waiting_runs(client)}
                for run_id, job in list(probing.items()):
                    # Ended (or cancelled by a person meanwhile): forget it; a run still waiting
                    # after its job ended (its final state refused) gets a new job.
                    if job.done() or run_id not in waiting:
                        job.cancel()
                        del probing[run_id]
                for run_id, run in waiting.items():
                    if run_id not in probing:
                        probing[run_id] = asyncio.create_task(_end_when_up(client, run))
                await asyncio.sleep(SCAN_SECONDS)
        finally:
            # Stopped: the probes in flight end as crashed task runs, if the server takes it
            # in time; the runs they served wait for the next prober.
            for job in probing.values():
                job.cancel()
            if probing:
                await asyncio.wait(probing.values(), timeout=STOP_SECONDS)


async def _waiting_runs(client: PrefectClient) -> list[FlowRun]:
    """The build runs suspended with a WAIT_LABEL (awaiting approval, they have none)."""
    found: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[BUILD_FLOW])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
            limit=PAGE_SIZE,
            offset=len(found),
        )
        found += page
        if len(page) < PAGE_SIZE:
            return [run for run in found if _waits_for_services(run)]


def _waits_for_services(run: FlowRun) -> bool:
    labels = run.labels or {}
    return labels.get(PHASE_LABEL) == "provisioning" and WAIT_LABEL in labels


async def _end_when_up(client: PrefectClient, run: FlowRun) -> None:
    hostname = str((run.labels or {}).get(HOSTNAME_LABEL, run.name))
    try:
        waiting = ServicesWait.model_validate_json(str(run.labels[WAIT_LABEL]))
        ending = await _services_ending(run.id, hostname, waiting)
        latest = await client.read_flow_run(run.id)
        if latest.state is not None and latest.state.type == StateType.PAUSED and _waits_for_services(latest):
            await client.set_flow_run_state(run.id, ending, force=True)
            log.info("%s: %s", hostname, ending.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        # One cluster's failure (a server that refused, a label that does not parse) must not
        # stop the others': logged, and tried again at the next scan.
        log.exception("%s: could not end its provisioning run %s", hostname, run.id)


async def _services_ending(run_id: UUID, hostname: str, waiting: ServicesWait) -> State:
    answers = await asyncio.gather(
        *(probe_service(run_id, service, url, waiting.deadline) for service, url in waiting.services.items()),
        return_exceptions=True,
    )
    missing = [str(answer) for answer in answers if isinstance(answer, BaseException)]
    if missing:
        allowed = (waiting.deadline - waiting.apply_ended).total_seconds()
        return Failed(
            message=f"{hostname} was not up within {allowed:g} s of the end of the apply; last answers: "
            + "; ".join(missing)
        )
    return Completed(message=f"{hostname} is up: {', '.join(waiting.services.values())}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    # It keeps nothing: no need for the interpreter's slow teardown (Prefect's exit handlers
    # flush to a server that is stopping too), which would outlast `mchub up`'s 5 s to stop.
    os._exit(0)


if __name__ == "__main__":
    main()
