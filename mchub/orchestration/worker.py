"""MC Hub's worker: Prefect's process worker (what `prefect worker start --type process`
runs), which also looks for runs, besides its regular poll of Prefect's server:
- as soon as it is woken (mchub.orchestration.worker_wakeup): a run was submitted or resumed;
- as soon as one of its runs' processes ends. A run resumed before its previous process
  had ended is skipped as already running, and a worker at its `--limit` skips every run:
  either can start now.

It also refuses (crashes, naming them) the runs that set job variables of their own: the
work pool's command and folder are fixed (mchub.orchestration.deployments.job_template), and the
environment is the deployment's. Anyone who could create a run could otherwise choose
what the worker runs (its `env` could name another flow file, or a library for every
process to load).

    python -m mchub.orchestration.worker --pool mchub --name NAME [--limit N]
"""

import argparse
import asyncio
import os
import signal
import socket
import warnings
from typing import Any, Self
from uuid import UUID

import anyio
import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

from mchub.errors import MCHubError
from mchub.orchestration import worker_wakeup
from mchub.settings import get_settings

# Prefect's own method this worker hooks into; checked here so that a Prefect upgrade that
# drops it fails at start, naming it, instead of losing the hook without a word.
if not callable(getattr(ProcessWorker, "_release_limit_slot", None)):
    raise ImportError("mchub.orchestration.worker hooks ProcessWorker._release_limit_slot, which this Prefect no longer has")


class JobVariablesRefused(MCHubError):
    """A run sets job variables of its own; the message names them."""


def changed_job_variables(run_variables: dict[str, Any], deployment_variables: dict[str, Any]) -> list[str]:
    """The job variables a run sets to something else than its deployment does (each variable of
    `env` by name: Prefect merges a run's `env` into the deployment's)."""
    changed = []
    for name, value in run_variables.items():
        if name == "env" and isinstance(value, dict):
            base = deployment_variables.get("env") or {}
            changed += [f"env.{key}" for key, given in value.items() if base.get(key) != given]
        elif deployment_variables.get(name) != value:
            changed.append(name)
    return sorted(changed)


class DeploymentJobConfiguration(ProcessJobConfiguration):
    """Prefect's process job, built from the work pool's template and the deployment's job
    variables only: a run that sets its own is refused before anything is started."""

    @classmethod
    async def resolve_for_flow_run(
        cls,
        flow_run: FlowRun,
        *,
        client: PrefectClient,
        work_pool: WorkPool,
        worker_name: str,
        worker_id: UUID | None = None,
        deployment: DeploymentResponse | None = None,
    ) -> Self:
        # Checked before Prefect's merge, which moves the run's `env` out of the run.
        if deployment is None and flow_run.deployment_id:
            deployment = await client.read_deployment(flow_run.deployment_id)
        changed = changed_job_variables(flow_run.job_variables or {}, (deployment and deployment.job_variables) or {})
        if changed:
            raise JobVariablesRefused(
                f"this run sets job variables of its own ({', '.join(changed)}); MC Hub runs every run with "
                "its deployment's job (command, folder, environment): start it again without them"
            )
        return await super().resolve_for_flow_run(
            flow_run,
            client=client,
            work_pool=work_pool,
            worker_name=worker_name,
            worker_id=worker_id,
            deployment=deployment,
        )


with warnings.catch_warnings():
    # It takes the place of Prefect's process worker in this process's registry, on purpose.
    warnings.filterwarnings("ignore", message="Type 'WakeableProcessWorker'", category=UserWarning)

    class WakeableProcessWorker(ProcessWorker):
        job_configuration = DeploymentJobConfiguration

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._look_now = asyncio.Event()

        async def start(self, *args: Any, **kwargs: Any) -> None:
            with worker_wakeup.listening_socket(get_settings()) as wakes:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._take_wakes, wakes)
                    group.start_soon(self._look_when_asked)
                    await super().start(*args, **kwargs)
                    group.cancel_scope.cancel()

        def _release_limit_slot(self, flow_run_id: UUID) -> None:
            super()._release_limit_slot(flow_run_id)
            self._look_now.set()

        async def _take_wakes(self, wakes: socket.socket) -> None:
            loop = asyncio.get_running_loop()
            while True:
                await loop.sock_recv(wakes, 1)
                self._look_now.set()

        async def _look_when_asked(self) -> None:
            while True:
                await self._look_now.wait()
                # One look answers every request made before it.
                self._look_now.clear()
                if not self.is_setup:  # starting or stopping: the regular poll covers it
                    continue
                try:
                    await self.get_and_submit_flow_runs()
                except httpx.HTTPError as error:
                    self._logger.warning("could not look for runs when asked (%s); the next poll will", error)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mchub.orchestration.worker", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--pool", required=True, help="the work pool to poll")
    parser.add_argument("--name", required=True, help="this worker's name")
    parser.add_argument("--limit", type=int, help="the most flow runs at once")
    args = parser.parse_args(argv)

    worker = WakeableProcessWorker(work_pool_name=args.pool, name=args.name, limit=args.limit)
    asyncio.run(run_until_signalled(worker))
    print(f"worker {args.name!r} stopped", flush=True)


async def run_until_signalled(worker: WakeableProcessWorker) -> None:
    """Run `worker` until SIGINT or SIGTERM. The first stops it (cancelled, it cancels what it
    started, its runs' processes included); a second signal kills the process.

    The signals are taken by the event loop, not as a KeyboardInterrupt raised wherever the
    process happens to be: Prefect runs calls that keep any exception they raise for later, and
    an interrupt landing in one of them was lost, so that the worker went on polling."""
    loop = asyncio.get_running_loop()
    running = asyncio.current_task()
    assert running is not None

    def stop(signum: int) -> None:
        print(f"{signal.Signals(signum).name} received: stopping (a second one kills)", flush=True)
        for again in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(again, os.kill, os.getpid(), signal.SIGKILL)
        running.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await worker.start()
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    main()
