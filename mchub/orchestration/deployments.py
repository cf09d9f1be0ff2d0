"""Prefect's side of MC Hub: the work pool, the deployments of prefect.yaml, and the
reconciliation of runs that a dead worker left unfinished.

`mchub up` runs these (as `mchub deploy` and `mchub reconcile`) after the server answers
and before the worker starts.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Crashed
from prefect.workers.process import ProcessWorker

from mchub.orchestration import prefect_auth, warm_engines
from mchub.orchestration.runs import PAGE_SIZE, RunsError, all_pages, credential, session
from mchub.orchestration.stack import ROOT, WORK_POOL
from mchub.settings import get_settings

DEPLOY_TIMEOUT_SECONDS = 120.0
# States in which a run has (or is about to have) a process of the worker that took it.
_PROCESS_STATES = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
_WORKER_LABEL = "prefect.worker.name"
_RUN_ID_VARIABLE = b"PREFECT__FLOW_RUN_ID="


def job_template() -> dict[str, Any]:
    """The work pool's job: Prefect's process job, whose command (it starts each run's engine
    warm) and working folder (the project's root, where the deployments' entrypoints are)
    are fixed, not variables, so that no deployment or run can choose what runs or where.
    A job variable the pool does not declare is refused by the server; the worker refuses
    a run's own job variables (mchub.orchestration.worker), so only deployments set the environment."""
    template = ProcessWorker.get_default_base_job_template()
    template["job_configuration"]["command"] = warm_engines.launcher_command(get_settings())
    template["job_configuration"]["working_dir"] = str(ROOT)
    variables = template["variables"]
    for fixed in ("command", "working_dir"):
        del variables["properties"][fixed]
    variables["additionalProperties"] = False
    return template


def ensure_work_pool(*, client: SyncPrefectClient | None = None) -> bool:
    """Create the process work pool the deployments use, or bring its job template up to
    date (job_template); True if created."""
    template = job_template()
    with session(client) as c:
        try:
            c.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process", base_job_template=template))
            return True
        except ObjectAlreadyExists:
            c.update_work_pool(WORK_POOL, WorkPoolUpdate(base_job_template=template))
            return False


def apply_deployments() -> None:
    """Create or update every deployment of prefect.yaml on the server (`prefect deploy --all`).

    Run from the project's root, so each deployment's flow runs start there."""
    settings = get_settings()
    # prefect.yaml reads the drift check's schedule from the environment ({{ $MCHUB_DRIFT_CHECK_CRON }}).
    env = {
        **os.environ,
        **prefect_auth.client_env(settings, credential()),
        "MCHUB_DRIFT_CHECK_CRON": settings.drift_check_cron,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEPLOY_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise RunsError(f"`prefect deploy --all` did not finish within {DEPLOY_TIMEOUT_SECONDS:g} s") from None
    if done.returncode != 0:
        raise RunsError(
            f"`prefect deploy --all` failed (exit code {done.returncode}) applying {ROOT / 'prefect.yaml'}:\n"
            + (done.stderr or done.stdout).strip()
        )


def reconcile_orphaned_runs(worker: str, *, client: SyncPrefectClient | None = None) -> list[FlowRun]:
    """Mark as crashed the runs that `worker` took but whose process is gone; returns them.

    Such a run would otherwise stay RUNNING forever and keep its cluster busy. Only runs of
    this machine's worker are judged, by looking for their process here."""
    with session(client) as c:
        unfinished = all_pages(
            lambda offset: c.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_PROCESS_STATES))),
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[WORK_POOL])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=PAGE_SIZE,
                offset=offset,
            )
        )
        alive = live_flow_runs()
        orphans = [run for run in unfinished if run.labels.get(_WORKER_LABEL) == worker and run.id not in alive]
        for run in orphans:
            state = run.state.name if run.state else "unfinished"
            c.set_flow_run_state(
                run.id,
                Crashed(message=f"its worker {worker} stopped while it was {state} and its process is gone; "
                        "run the action again"),
                force=True,
            )
    return orphans


def live_flow_runs(proc: Path = Path("/proc")) -> set[UUID]:
    """The flow runs that have a process on this machine: a flow run's process (and its
    children, such as Terraform) carry PREFECT__FLOW_RUN_ID in their environment."""
    if not proc.is_dir():
        raise RunsError(
            f"{proc} is missing: reconciling dead runs reads the processes' environments there (Linux); "
            "mark dead runs as crashed in Prefect's dashboard instead"
        )
    found: set[UUID] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or another user's process
            continue
        for variable in environ.split(b"\0"):
            if variable.startswith(_RUN_ID_VARIABLE):
                found.add(UUID(variable.removeprefix(_RUN_ID_VARIABLE).decode()))
    return found
