"""The Terraform steps of a cluster: init, plan, apply of the approved plan.

Terraform runs in a process group of its own (mchub.terraform.process), so the process
worker, which stops a cancelled run by signalling the run's process group, never reaches
it. Each step therefore runs its Terraform command in a helper thread while the run's main
thread, where Prefect raises TerminationSignal on SIGTERM, waits for it: on that signal (or
any other interruption) the step cancels Terraform (SIGINT, so that it saves its state;
killed only after its grace period), waits for it to stop, and lets the signal go on.
"""

import contextvars
from datetime import UTC, datetime
import threading
from collections.abc import Callable
from typing import TypeVar

from prefect import get_run_logger

from mchub.cluster import lifecycle
from mchub.cluster.drift import DriftCheck
from mchub.cluster.workspace import PlanRecord, Workspace
from mchub.terraform.plan import PlanSummary
from mchub.terraform.progress import ApplyProgress
from mchub.terraform.runner import Terraform
from tasks.uncached import uncached_task

T = TypeVar("T")


def _stopped_cleanly_on_interrupt(terraform: Terraform, command: Callable[[], T]) -> T:
    """`command()`, run in a helper thread that keeps this run's context (logger, labels)."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(command())
        except BaseException as error:  # handed to the waiting thread, which raises it
            failure.append(error)
        finally:
            finished.set()

    # Waited for with an Event, not Thread.join: a join interrupted by a signal's exception
    # marks the thread as finished while it still runs (CPython bpo-45274).
    threading.Thread(target=contextvars.copy_context().run, args=(run,), name="terraform").start()
    try:
        finished.wait()  # a signal's handler still runs here, and its exception lands here
    except BaseException:
        terraform.cancel()
        _wait_through_signals(finished)
        if failure:
            get_run_logger().warning("%s", failure[0])
        raise
    if failure:
        raise failure[0]
    return outcome[0]


def _wait_through_signals(finished: threading.Event) -> None:
    """Wait for Terraform to stop, whatever arrives meanwhile: the process worker may signal
    again, and Terraform, already told to stop, is bounded by its grace period."""
    while not finished.is_set():
        try:
            finished.wait()
        except BaseException:
            continue


@uncached_task(name="terraform-init")
def init_terraform(workspace: Workspace, terraform: Terraform) -> bool:
    ran = _stopped_cleanly_on_interrupt(terraform, lambda: lifecycle.init(workspace, terraform))
    get_run_logger().info("terraform init %s", "done" if ran else "skipped: already initialised for this configuration")
    return ran


@uncached_task(name="terraform-plan")
def plan_changes(workspace: Workspace, terraform: Terraform, destroy: bool = False) -> tuple[PlanRecord, PlanSummary]:
    record, summary = _stopped_cleanly_on_interrupt(
        terraform, lambda: lifecycle.plan(workspace, terraform, destroy=destroy)
    )
    get_run_logger().info(
        "%s of %s (%s): %s", "destroy plan" if destroy else "plan", workspace.hostname, record.plan_file, summary.counts
    )
    return record, summary


@uncached_task(name="terraform-drift-plan")
def check_drift(workspace: Workspace, terraform: Terraform) -> DriftCheck:
    """Plan the applied spec, keep only the summary (mchub.cluster.lifecycle.check_drift)."""
    check = _stopped_cleanly_on_interrupt(
        terraform, lambda: lifecycle.check_drift(workspace, terraform, datetime.now(UTC))
    )
    get_run_logger().info("drift plan of %s: %s", workspace.hostname, check.summary.counts)
    return check


@uncached_task(name="terraform-apply")
def apply_plan(
    workspace: Workspace,
    terraform: Terraform,
    approved: PlanRecord,
    on_progress: Callable[[ApplyProgress], None] | None = None,
) -> ApplyProgress:
    """Apply exactly the approved plan; refused if it is no longer the cluster's latest plan."""
    progress = _stopped_cleanly_on_interrupt(
        terraform, lambda: lifecycle.apply(workspace, terraform, approved, on_progress=on_progress)
    )
    get_run_logger().info("apply of %s: %s", workspace.hostname, progress.line())
    return progress
