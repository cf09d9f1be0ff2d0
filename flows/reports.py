"""What a run shows while it works: the plan to approve, and how far the apply has got.

Artifacts carry names, flavors, sizes and counts only: never the plan JSON, the spec or
anything else that could hold the guest password.
"""

import time

import httpx
from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.run_labels import set_labels
from mchub.cluster.workspace import PlanRecord, Workspace
from mchub.status import PROGRESS_LABEL, artifact_key
from mchub.terraform.plan import PlanSummary
from mchub.terraform.progress import ApplyProgress
from mchub.terraform.runner import Terraform
from tasks.terraform_steps import apply_plan

# Terraform sends several messages per resource; the dashboard needs no more than this.
UPDATE_INTERVAL_SECONDS = 1.0


def publish_plan(hostname: str, summary: PlanSummary, title: str) -> None:
    """The plan summary as the markdown artifact `plan-<hostname>` (its newest version is
    the plan the cluster's approval is about)."""
    create_markdown_artifact(
        summary.to_markdown(f"{title}: {hostname}"),
        key=artifact_key("plan", hostname),
        description=f"{title} for {hostname}: {summary.counts}",
    )


class ApplyReport:
    """Follows an apply: a progress artifact `apply-<hostname>` (percentage, with the
    one-line state as its description) and the run's `mchub.progress` label, both updated
    as Terraform's messages arrive, at most once per UPDATE_INTERVAL_SECONDS, and a warning
    in the run's log instead when the server cannot take them; `finish` adds a table of
    every resource."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self._artifact_id = create_progress_artifact(
            0.0, key=artifact_key("apply", hostname), description=f"Applying the plan for {hostname}"
        )
        self._latest: ApplyProgress | None = None
        self._sent_line = ""
        self._sent_at = 0.0

    def __call__(self, progress: ApplyProgress) -> None:
        self._latest = progress
        if time.monotonic() - self._sent_at >= UPDATE_INTERVAL_SECONDS:
            self._send(progress)

    def finish(self) -> None:
        """Show the final state (of a failed apply too): every resource, what it became."""
        if self._latest is None:
            return
        self._send(self._latest)
        create_table_artifact(
            [
                {
                    "resource": resource.label,
                    "action": resource.action,
                    "state": resource.state,
                    "seconds": round(resource.elapsed_seconds, 1),
                    "error": resource.error or "",
                }
                for resource in self._latest.resources.values()
            ],
            key=artifact_key("resources", self.hostname),
            description=f"Resources of the apply for {self.hostname}: {self._latest.line()}",
        )

    def _send(self, progress: ApplyProgress) -> None:
        line = progress.line()
        self._sent_at = time.monotonic()
        if line == self._sent_line:
            return
        self._sent_line = line
        try:
            update_progress_artifact(self._artifact_id, float(progress.percent), description=line)
            set_labels({PROGRESS_LABEL: line})
        except httpx.HTTPError as error:
            # The progress is for people watching; Prefect's server refusing it (after its
            # client's own retries) must not stop Terraform halfway through the apply.
            get_run_logger().warning("progress of %s (%s) not recorded: %s", self.hostname, line, error)


def apply_approved_plan(hostname: str, workspace: Workspace, terraform: Terraform, approved: PlanRecord) -> ApplyProgress:
    """Apply the approved plan while an ApplyReport follows it (its final table too when the apply fails)."""
    report = ApplyReport(hostname)
    try:
        return apply_plan(workspace, terraform, approved, on_progress=report)
    finally:
        report.finish()
