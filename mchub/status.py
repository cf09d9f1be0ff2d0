"""A cluster's status, derived from its flow runs: nothing else stores it.

A run acting on a cluster is tagged `cluster:<hostname>` and moves its `mchub.phase` label
at each boundary of the workflow; the cluster's status is its latest run's state read with
that phase. A rejected approval changed nothing, so the cluster keeps the status it had
before that run; so does a build run that ended before its apply (its plan failed, or its
approval never came) on a cluster an older run tells about, and that run is shown beside
the status as the change that was not made. Whoever answers a plan labels the run `mchub.answer` (approved or
rejected), so a run resumed with an approval shows as building at once, while it goes
through its finished steps again before it reaches the apply.

A run a person cancelled (Prefect's Cancelled state, other than a rejection) leaves the
cluster `cancelled` once it had started changing the cloud (its apply, or a destroy's); one
cancelled before its apply changed nothing, and is passed over like a failed plan.

The one status not from the runs: a cluster that is up shows `drifted` when the drift check
(mchub.cluster.drift) found its cloud changed behind Terraform's back since its latest run.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from mchub.cluster.drift import DriftCheck

PHASE_LABEL = "mchub.phase"
HOSTNAME_LABEL = "mchub.hostname"
PROGRESS_LABEL = "mchub.progress"
ANSWER_LABEL = "mchub.answer"
CANCEL_LABEL = "mchub.cancelled-by"
ANSWERED_BY_LABEL = "mchub.answered_by"
CLUSTER_TAG_PREFIX = "cluster:"

BUILD_FLOW = "build-cluster"
DESTROY_FLOW = "destroy-cluster"
CLUSTER_FLOWS = (BUILD_FLOW, DESTROY_FLOW)

StateType = Literal[
    "SCHEDULED", "PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING"
]
Phase = Literal["plan", "approval", "build", "provisioning", "destroy-plan", "destroy"]
Answer = Literal["approved", "rejected"]
Audited = Literal["created", "approved", "rejected", "modified", "cancelled", "destroyed"]
"""The actions the audit trail records, each as the Prefect event `mchub.cluster.<action>`."""
AUDIT_EVENT_PREFIX = "mchub.cluster."

# The phases of a run before its apply, the labels a resumed run may still have.
_BEFORE_APPLY = frozenset({"plan", "destroy-plan", "approval"})
BUSY_STATES: frozenset[StateType] = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})
FINAL_STATES: frozenset[StateType] = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


class Status(StrEnum):
    CREATED = "created"
    PLAN_RUNNING = "plan_running"
    PLAN_ERROR = "plan_error"
    AWAITING_APPROVAL = "awaiting_approval"
    BUILD_RUNNING = "build_running"
    BUILD_ERROR = "build_error"
    PROVISIONING_RUNNING = "provisioning_running"
    PROVISIONING_SUCCESS = "provisioning_success"
    PROVISIONING_ERROR = "provisioning_error"
    DESTROY_RUNNING = "destroy_running"
    DESTROY_ERROR = "destroy_error"
    DESTROYED = "destroyed"
    CANCELLED = "cancelled"
    DRIFTED = "drifted"
    NOT_FOUND = "not_found"


class RunView(BaseModel):
    """What the status of a cluster needs to know of one flow run."""

    id: UUID
    name: str
    flow_name: str
    state_type: StateType
    state_name: str
    state_message: str | None = None
    phase_label: str | None = None
    """The `mchub.phase` label as the flow last wrote it; `phase` reads it with the run's state."""
    progress: str | None = None
    answer: str | None = None
    """How its plan was answered (the `mchub.answer` label), None before an answer."""
    cancelled_by: str | None = None
    """Who asked for it to be cancelled (the `mchub.cancelled-by` label): Prefect writes its own
    message on a run it cancels."""
    answered_by: str | None = None
    """Who answered its plan, as the flow recorded them once it had checked their right to."""
    created: datetime
    hostname: str

    @property
    def busy(self) -> bool:
        """The run still acts on its cluster (waiting for approval included)."""
        return self.state_type in BUSY_STATES

    @property
    def final(self) -> bool:
        return self.state_type in FINAL_STATES

    @property
    def awaiting_approval(self) -> bool:
        """Suspended until someone answers its plan. A build also suspends once its apply has
        ended, while the prober waits for the cluster's services (flows/provisioning.py): that
        run is provisioning, and no answer applies to it."""
        return self.state_type == "PAUSED" and self.phase_label != "provisioning"

    @property
    def rejected(self) -> bool:
        """Its plan was rejected: the flow ends a rejected run as cancelled in phase approval
        (and a run answered with a rejection is on its way there)."""
        if self.state_type == "PAUSED":
            return False
        return self.answer == "rejected" or (
            self.state_type == "CANCELLED" and self.phase_label == "approval" and self.answer != "approved"
        )

    @property
    def cancelled(self) -> bool:
        """Someone cancelled the run (a rejection also ends in Cancelled, but is not one)."""
        return self.state_type == "CANCELLED" and not self.rejected

    @property
    def ended_before_apply(self) -> bool:
        """A run that ended without applying anything: a build-cluster run whose plan failed,
        or was never answered (Prefect fails a run whose approval timed out), or any run
        cancelled before its apply. Like a rejected one, it changed nothing."""
        if self.cancelled:
            return self.phase in (None, *_BEFORE_APPLY)
        return (
            self.flow_name == BUILD_FLOW
            and self.state_type in ("FAILED", "CRASHED")
            and self.phase in (None, "plan", "approval")
        )

    @property
    def phase(self) -> str | None:
        """The phase the run is in. A paused run waits for approval (the flows label the
        phase `approval` only once answered), unless it is provisioning. An approved plan
        counts as the start of its apply: a resumed run goes through its finished steps again
        before it moves on."""
        if self.awaiting_approval:
            return "approval"
        if self.answer == "approved" and self.phase_label in _BEFORE_APPLY:
            return "destroy" if self.flow_name == DESTROY_FLOW else "build"
        return self.phase_label

    @property
    def reason(self) -> str | None:
        """Why the run ended as it did, as a person says it: who cancelled it, else its state's message."""
        if self.cancelled and self.cancelled_by:
            return f"cancelled by {self.cancelled_by}"
        return self.state_message

    def describe(self) -> str:
        """"build-cluster run 'brave-otter' (Running)", for messages naming the run."""
        return f"{self.flow_name} run {self.name!r} ({self.state_name})"


def answer_label(approve: bool) -> Answer:
    return "approved" if approve else "rejected"


def answered_labels(approve: bool) -> dict[str, str]:
    """The labels a flow gives itself once it reads the answer to its plan."""
    return {PHASE_LABEL: "approval", ANSWER_LABEL: answer_label(approve)}


def cluster_tag(hostname: str) -> str:
    return f"{CLUSTER_TAG_PREFIX}{hostname}"


def hostname_of_tags(tags: Sequence[str]) -> str | None:
    """The hostname a run's `cluster:<hostname>` tag names, None for a run of no cluster."""
    for tag in tags:
        if tag.startswith(CLUSTER_TAG_PREFIX):
            return tag.removeprefix(CLUSTER_TAG_PREFIX)
    return None


def artifact_key(kind: str, hostname: str) -> str:
    """An artifact key for a cluster ("plan-hpc1-sandbox-mchub-dev"): Prefect allows only
    lowercase letters, digits and dashes."""
    return f"{kind}-{hostname.replace('.', '-')}"


# The phase a status names (`<phase>_running`, `<phase>_error`) for each phase of a run. The
# destroy flow's approval is part of destroying, so a destroy-cluster run's phases all map to destroy.
_STATUS_PHASE = {
    "plan": "plan",
    "approval": "plan",
    "build": "build",
    "provisioning": "provisioning",
    "destroy-plan": "destroy",
    "destroy": "destroy",
}
_RUNNING = {
    "plan": Status.PLAN_RUNNING,
    "build": Status.BUILD_RUNNING,
    "provisioning": Status.PROVISIONING_RUNNING,
    "destroy": Status.DESTROY_RUNNING,
}
_ERROR = {
    "plan": Status.PLAN_ERROR,
    "build": Status.BUILD_ERROR,
    "provisioning": Status.PROVISIONING_ERROR,
    "destroy": Status.DESTROY_ERROR,
}


def cluster_status(runs: Sequence[RunView], drift: DriftCheck | None = None) -> Status:
    """The status of a cluster from its runs (any order): that of `current_run`; not_found
    when there is none. A cluster that is up is `drifted` when its latest drift check, made
    after that run, found its cloud no longer matching: until a run acts on it again."""
    current = current_run(runs)
    if current is None:
        return Status.NOT_FOUND
    status = run_status(current)
    if status == Status.PROVISIONING_SUCCESS and drift is not None and drift.drifted and drift.checked_at > current.created:
        return Status.DRIFTED
    return status


def current_run(runs: Sequence[RunView]) -> RunView | None:
    """The run a cluster's status comes from: the newest whose plan was not rejected, passing
    over the build runs that ended before their apply when an older run tells what the
    cluster is (for a cluster never built, its failed plan is all there is)."""
    standing = _standing(runs)
    return next((run for run in standing if not run.ended_before_apply), standing[0] if standing else None)


def failed_change(runs: Sequence[RunView]) -> RunView | None:
    """The newest run, when it is a change that ended before its apply and the status comes
    from an older run: shown beside the status."""
    standing = _standing(runs)
    return standing[0] if standing and standing[0] is not current_run(standing) else None


def _standing(runs: Sequence[RunView]) -> list[RunView]:
    """The runs whose plan was not rejected, newest first."""
    return [run for run in sorted(runs, key=lambda r: r.created, reverse=True) if not run.rejected]


def run_status(run: RunView) -> Status:
    """The status a cluster has while `run` is its latest run."""
    if run.awaiting_approval:
        return Status.AWAITING_APPROVAL
    if run.state_type == "COMPLETED":
        return Status.DESTROYED if run.flow_name == DESTROY_FLOW else Status.PROVISIONING_SUCCESS
    if run.cancelled:
        return Status.CANCELLED
    phase = _status_phase(run)
    if run.state_type in ("FAILED", "CRASHED"):
        return _ERROR[phase or "plan"]
    # SCHEDULED, PENDING, RUNNING, CANCELLING, PAUSED while provisioning: under way in its phase.
    return _RUNNING[phase] if phase else Status.CREATED


def _status_phase(run: RunView) -> str | None:
    if run.flow_name == DESTROY_FLOW:
        return "destroy"
    return _STATUS_PHASE.get(run.phase or "")
