"""A cluster's status from its flow runs: the mapping front ends and the CLI rely on."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from mchub.cluster.drift import DriftCheck
from mchub.terraform.plan import PlanSummary, ResourceChange
from mchub.status import (
    BUILD_FLOW,
    DESTROY_FLOW,
    RunView,
    Status,
    artifact_key,
    cluster_status,
    current_run,
    failed_change,
    hostname_of_tags,
    run_status,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def run(flow: str, state: str, phase: str | None = None, minutes: int = 0, answer: str | None = None) -> RunView:
    return RunView(
        id=uuid4(),
        name=f"run-{minutes}",
        flow_name=flow,
        state_type=state,
        state_name=state.capitalize(),
        phase_label=phase,
        answer=answer,
        created=T0 + timedelta(minutes=minutes),
        hostname="hpc1.sandbox.mchub.dev",
    )


@pytest.mark.parametrize(
    ("flow", "state", "phase", "status"),
    [
        (BUILD_FLOW, "SCHEDULED", None, Status.CREATED),
        (BUILD_FLOW, "PENDING", None, Status.CREATED),
        (BUILD_FLOW, "RUNNING", None, Status.CREATED),
        (BUILD_FLOW, "RUNNING", "plan", Status.PLAN_RUNNING),
        (BUILD_FLOW, "RUNNING", "approval", Status.PLAN_RUNNING),
        (BUILD_FLOW, "PAUSED", "approval", Status.AWAITING_APPROVAL),
        (BUILD_FLOW, "PAUSED", "plan", Status.AWAITING_APPROVAL),  # the flows label it once answered
        (BUILD_FLOW, "SCHEDULED", "approval", Status.PLAN_RUNNING),  # resumed, waiting for the worker
        (BUILD_FLOW, "RUNNING", "build", Status.BUILD_RUNNING),
        (BUILD_FLOW, "CANCELLING", "build", Status.BUILD_RUNNING),
        (BUILD_FLOW, "RUNNING", "provisioning", Status.PROVISIONING_RUNNING),
        (BUILD_FLOW, "COMPLETED", "provisioning", Status.PROVISIONING_SUCCESS),
        (BUILD_FLOW, "COMPLETED", "plan", Status.PROVISIONING_SUCCESS),
        (BUILD_FLOW, "FAILED", None, Status.PLAN_ERROR),
        (BUILD_FLOW, "FAILED", "plan", Status.PLAN_ERROR),
        (BUILD_FLOW, "FAILED", "approval", Status.PLAN_ERROR),  # the approval timed out
        (BUILD_FLOW, "CRASHED", "plan", Status.PLAN_ERROR),
        (BUILD_FLOW, "FAILED", "build", Status.BUILD_ERROR),
        (BUILD_FLOW, "CRASHED", "build", Status.BUILD_ERROR),
        (BUILD_FLOW, "CANCELLED", "build", Status.CANCELLED),  # cancelled mid-apply
        (BUILD_FLOW, "CANCELLED", "plan", Status.CANCELLED),  # cancelled before it (passed over when built)
        (BUILD_FLOW, "CANCELLED", "provisioning", Status.CANCELLED),
        (BUILD_FLOW, "FAILED", "provisioning", Status.PROVISIONING_ERROR),
        (BUILD_FLOW, "CRASHED", "provisioning", Status.PROVISIONING_ERROR),
        (DESTROY_FLOW, "SCHEDULED", None, Status.DESTROY_RUNNING),
        (DESTROY_FLOW, "RUNNING", "destroy-plan", Status.DESTROY_RUNNING),
        (DESTROY_FLOW, "PAUSED", "approval", Status.AWAITING_APPROVAL),
        (DESTROY_FLOW, "PAUSED", "destroy-plan", Status.AWAITING_APPROVAL),
        (DESTROY_FLOW, "RUNNING", "destroy", Status.DESTROY_RUNNING),
        (DESTROY_FLOW, "COMPLETED", "destroy", Status.DESTROYED),
        (DESTROY_FLOW, "FAILED", "destroy-plan", Status.DESTROY_ERROR),
        (DESTROY_FLOW, "FAILED", "approval", Status.DESTROY_ERROR),
        (DESTROY_FLOW, "CRASHED", "destroy", Status.DESTROY_ERROR),
        (DESTROY_FLOW, "CANCELLED", "destroy", Status.CANCELLED),
        (DESTROY_FLOW, "CANCELLED", "destroy-plan", Status.CANCELLED),
    ],
)
def test_latest_run_gives_the_status(flow: str, state: str, phase: str | None, status: Status) -> None:
    latest = run(flow, state, phase, minutes=5)
    assert run_status(latest) == status
    older = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    # A build that ended before its apply changed nothing: the cluster is as the older run left it.
    shown = Status.PROVISIONING_SUCCESS if latest.ended_before_apply else status
    assert cluster_status([older, latest]) == shown


def test_every_status_is_reachable_from_a_single_run() -> None:
    reached = {
        cluster_status([run(flow, state, phase)])
        for flow in (BUILD_FLOW, DESTROY_FLOW)
        for state in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING")
        for phase in (None, "plan", "approval", "build", "provisioning", "destroy-plan", "destroy")
    }
    # not_found: a new cluster's rejected plan; drifted needs a drift check besides the runs
    assert reached == set(Status) - {Status.DRIFTED}


def check(minutes: int, changes: list[ResourceChange]) -> DriftCheck:
    return DriftCheck(checked_at=T0 + timedelta(minutes=minutes), summary=PlanSummary(resources=changes))


GONE = [ResourceChange(address='module.cluster.terraform_data.instance["node1"]', kind="instance", name="node1",
                       resource_type="terraform_data", action="replace", flavor="p2-3gb")]
SAME = [GONE[0].model_copy(update={"action": "no-op"})]


def test_a_cluster_that_is_up_shows_drifted_after_a_check_found_changes() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    assert cluster_status([built], check(60, GONE)) == Status.DRIFTED
    assert cluster_status([built], check(60, SAME)) == Status.PROVISIONING_SUCCESS
    assert cluster_status([built], None) == Status.PROVISIONING_SUCCESS


def test_a_run_after_the_check_ends_the_drift_unless_it_changed_nothing() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    drifted = check(60, GONE)
    repair_waiting = run(BUILD_FLOW, "PAUSED", "plan", minutes=70)
    assert cluster_status([built, repair_waiting], drifted) == Status.AWAITING_APPROVAL
    repaired = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=70)
    assert cluster_status([built, repaired], drifted) == Status.PROVISIONING_SUCCESS
    # A rejected repair, or one whose plan failed, left the cloud as the check found it.
    rejected = run(BUILD_FLOW, "CANCELLED", "approval", minutes=70, answer="rejected")
    assert cluster_status([built, rejected], drifted) == Status.DRIFTED
    failed = run(BUILD_FLOW, "FAILED", "plan", minutes=70)
    assert cluster_status([built, failed], drifted) == Status.DRIFTED


def test_only_a_cluster_that_is_up_shows_drifted() -> None:
    for latest in (run(BUILD_FLOW, "FAILED", "provisioning"), run(DESTROY_FLOW, "COMPLETED", "destroy"),
                   run(BUILD_FLOW, "CANCELLED", "build")):
        assert cluster_status([latest], check(60, GONE)) == run_status(latest)


@pytest.mark.parametrize(
    ("flow", "state", "status"),
    [
        (BUILD_FLOW, "SCHEDULED", Status.BUILD_RUNNING),  # resumed, waiting for the worker
        (BUILD_FLOW, "RUNNING", Status.BUILD_RUNNING),  # going through its finished steps again
        (BUILD_FLOW, "FAILED", Status.BUILD_ERROR),
        (DESTROY_FLOW, "RUNNING", Status.DESTROY_RUNNING),
    ],
)
def test_an_approved_plan_shows_as_its_apply_at_once(flow: str, state: str, status: Status) -> None:
    approved = run(flow, state, "approval", minutes=5, answer="approved")
    assert cluster_status([run(BUILD_FLOW, "COMPLETED", "provisioning"), approved]) == status
    assert approved.phase == ("build" if flow == BUILD_FLOW else "destroy")


def test_a_paused_run_is_at_its_approval_whatever_its_phase_label() -> None:
    for flow, phase in ((BUILD_FLOW, "plan"), (DESTROY_FLOW, "destroy-plan")):
        waiting = run(flow, "PAUSED", phase)
        assert waiting.phase == "approval" and not waiting.rejected


def test_an_answer_counts_before_the_flow_has_labelled_its_phase() -> None:
    """The client that answers labels only the answer; the resumed run still says `plan`."""
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    approved = run(BUILD_FLOW, "SCHEDULED", "plan", minutes=5, answer="approved")
    assert approved.phase == "build" and cluster_status([built, approved]) == Status.BUILD_RUNNING
    destroying = run(DESTROY_FLOW, "RUNNING", "destroy-plan", minutes=5, answer="approved")
    assert destroying.phase == "destroy"
    rejected = run(BUILD_FLOW, "RUNNING", "plan", minutes=5, answer="rejected")
    assert rejected.rejected and cluster_status([built, rejected]) == Status.PROVISIONING_SUCCESS


def test_an_approval_does_not_take_a_run_back_from_its_apply() -> None:
    assert run(BUILD_FLOW, "RUNNING", "provisioning", answer="approved").phase == "provisioning"


def test_a_plan_asked_again_after_an_approval_waits_for_its_own() -> None:
    """A resumed run that found a different plan suspends again: the old answer does not count."""
    asked_again = run(BUILD_FLOW, "PAUSED", "approval", answer="approved")
    assert cluster_status([asked_again]) == Status.AWAITING_APPROVAL
    assert asked_again.phase == "approval" and not asked_again.rejected


def test_a_rejected_run_on_its_way_to_its_end_already_changes_nothing() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    ending = run(BUILD_FLOW, "RUNNING", "approval", minutes=10, answer="rejected")
    assert ending.rejected and ending.busy
    assert cluster_status([ending, built]) == Status.PROVISIONING_SUCCESS


def test_no_runs_is_not_found() -> None:
    assert cluster_status([]) == Status.NOT_FOUND


def test_a_rejected_modification_keeps_the_status_before_it() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    rejected = run(BUILD_FLOW, "CANCELLED", "approval", minutes=10)
    assert cluster_status([rejected, built]) == Status.PROVISIONING_SUCCESS


def test_a_rejected_destroy_keeps_the_cluster_up() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    rejected = run(DESTROY_FLOW, "CANCELLED", "approval", minutes=10)
    assert cluster_status([built, rejected]) == Status.PROVISIONING_SUCCESS


def test_a_new_cluster_whose_only_plan_was_rejected_is_not_found() -> None:
    assert cluster_status([run(BUILD_FLOW, "CANCELLED", "approval")]) == Status.NOT_FOUND


def test_the_newest_run_counts_whatever_the_order_given() -> None:
    failed = run(BUILD_FLOW, "FAILED", "build", minutes=0)
    retried = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=30)
    assert cluster_status([failed, retried]) == Status.PROVISIONING_SUCCESS
    assert cluster_status([retried, failed]) == Status.PROVISIONING_SUCCESS
    rebuilt_after_destroy = run(BUILD_FLOW, "RUNNING", "build", minutes=60)
    destroyed = run(DESTROY_FLOW, "COMPLETED", "destroy", minutes=45)
    assert cluster_status([destroyed, rebuilt_after_destroy, retried]) == Status.BUILD_RUNNING


def test_busy_runs_are_the_unfinished_ones() -> None:
    assert {s for s in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING") if run(BUILD_FLOW, s).busy} == {
        "SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"
    }
    assert not any(run(BUILD_FLOW, s).busy for s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"))


def test_names_shared_with_the_flows() -> None:
    assert hostname_of_tags(["other", "cluster:hpc1.sandbox.mchub.dev"]) == "hpc1.sandbox.mchub.dev"
    assert hostname_of_tags(["other"]) is None
    assert artifact_key("plan", "hpc1.sandbox.mchub.dev") == "plan-hpc1-sandbox-mchub-dev"


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        # The plan failed, or its approval never came (Prefect fails the suspended run, whose
        # phase label the flow writes only once answered).
        ("FAILED", "plan"),
        ("FAILED", None),  # before its first step
        ("CRASHED", "plan"),
        ("CANCELLED", "plan"),
    ],
)
def test_a_change_that_ended_before_its_apply_leaves_the_cluster_up_and_shows_beside_it(
    state: str, phase: str | None
) -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    rejected = run(BUILD_FLOW, "CANCELLED", "approval", minutes=3, answer="rejected")
    change = run(BUILD_FLOW, state, phase, minutes=5)

    assert cluster_status([change, rejected, built]) == Status.PROVISIONING_SUCCESS
    assert current_run([change, built]) is built and failed_change([rejected, change, built]) is change
    # A later change that went through takes the status on, and no failed change is shown.
    again = run(BUILD_FLOW, "RUNNING", "build", minutes=9, answer="approved")
    assert cluster_status([again, change, built]) == Status.BUILD_RUNNING
    assert failed_change([again, change, built]) is None


def test_a_change_is_shown_beside_the_status_of_a_failed_build_too() -> None:
    failed_build = run(BUILD_FLOW, "FAILED", "build", minutes=0)
    change = run(BUILD_FLOW, "FAILED", "plan", minutes=5)
    assert cluster_status([failed_build, change]) == Status.BUILD_ERROR
    assert failed_change([failed_build, change]) is change


def test_a_cluster_whose_only_plans_failed_is_in_plan_error() -> None:
    first, second = run(BUILD_FLOW, "FAILED", "plan", minutes=0), run(BUILD_FLOW, "FAILED", "plan", minutes=5)
    assert cluster_status([first, second]) == Status.PLAN_ERROR
    assert current_run([first, second]) is second and failed_change([first, second]) is None


def test_an_approved_change_that_failed_is_a_build_error() -> None:
    """Approved, it went on to its apply (a refused stale plan included): not passed over."""
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    approved = run(BUILD_FLOW, "FAILED", "approval", minutes=5, answer="approved")
    assert cluster_status([built, approved]) == Status.BUILD_ERROR
    assert failed_change([built, approved]) is None


def test_a_destroy_that_failed_is_not_passed_over() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    assert cluster_status([built, run(DESTROY_FLOW, "FAILED", "destroy-plan", minutes=5)]) == Status.DESTROY_ERROR


def test_a_cancelled_apply_leaves_the_cluster_cancelled_not_in_error() -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    for cancelled in (
        run(BUILD_FLOW, "CANCELLED", "build", minutes=5),
        # Approved, then cancelled before the worker took it up again: a cancel, not a rejection.
        run(BUILD_FLOW, "CANCELLED", "approval", minutes=5, answer="approved"),
        run(DESTROY_FLOW, "CANCELLED", "destroy", minutes=5),
    ):
        assert cancelled.cancelled and not cancelled.rejected
        assert cancelled.model_copy(update={"cancelled_by": "ana"}).reason == "cancelled by ana"
        assert cluster_status([built, cancelled]) == Status.CANCELLED
        assert failed_change([built, cancelled]) is None


@pytest.mark.parametrize("flow", [BUILD_FLOW, DESTROY_FLOW])
def test_a_change_cancelled_while_its_plan_waits_leaves_the_cluster_as_it_was(flow: str) -> None:
    built = run(BUILD_FLOW, "COMPLETED", "provisioning", minutes=0)
    # A suspended run is labelled approval only once answered: cancelled, it is still in its plan phase.
    cancelled = run(flow, "CANCELLED", "plan" if flow == BUILD_FLOW else "destroy-plan", minutes=5)
    assert cancelled.cancelled and cancelled.ended_before_apply
    assert cluster_status([built, cancelled]) == Status.PROVISIONING_SUCCESS
    assert failed_change([built, cancelled]) is cancelled


def test_a_new_cluster_cancelled_while_its_plan_waits_is_cancelled() -> None:
    assert cluster_status([run(BUILD_FLOW, "CANCELLED", "plan")]) == Status.CANCELLED


def test_a_rejection_is_not_a_cancel() -> None:
    for rejected in (run(BUILD_FLOW, "CANCELLED", "approval"), run(BUILD_FLOW, "CANCELLED", "approval", answer="rejected")):
        assert rejected.rejected and not rejected.cancelled
