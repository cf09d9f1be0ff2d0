"""The cluster flows on a real Prefect server and worker (live_stack), with real Terraform
applying the sandbox module to the sandbox cloud: each test builds its own clusters through
the same client the CLI uses (mchub.orchestration.runs) and looks at what a user would: the cluster's
status, its plan and progress, its folder, its cloud objects, its services.
"""

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from flows.cluster_lock import lock_name
from flows.reports import ApplyReport
from flows.run_labels import current_run
from mchub.access.people import Person, Role, operator
from mchub.access.rights import AccessDenied, default_project
from mchub.access.signed import signed
from mchub.cluster import lifecycle
from mchub.cluster.expiration import expired
from mchub.cluster.workspace import ARCHIVE, open_existing
from mchub.orchestration import audit, runs, warm_engines
from mchub.spec.model import ClusterSpec, default_spec_data, dump_spec, parse_spec
from mchub.status import (
    BUILD_FLOW,
    HOSTNAME_LABEL,
    RunView,
    Status,
    artifact_key,
    cluster_status,
    cluster_tag,
    failed_change,
)
from mchub.terraform.progress import ApplyProgress
from sandbox.catalog import QuotaSizes
from tests.harness import LiveStack, prefect_database_files
from tests.reliability_helpers import mchub
from tests.test_lifecycle import HELD_IN_BUILD_SECONDS, state_locked, with_volume

DOMAIN = "sandbox.mchub.dev"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"
# Every cluster here gets this guest password; the last test looks for it in what Prefect stored.
GUEST_PASSWORD = "Guest-pw-7d41c9e2"
SANDBOX_OS_PASSWORD = "sandbox-password"  # the sandbox clouds.yaml's password (OS_PASSWORD for Terraform)


def cluster_spec(name: str | None = None, **changes: Any) -> ClusterSpec:
    data = {
        **default_spec_data(domain=DOMAIN, name=name or f"f{uuid4().hex[:8]}"),
        "public_keys": [PUBLIC_KEY],
        "guest_passwd": GUEST_PASSWORD,
        "volumes": {"nfs": {"home": {"size": 10}}},
    }
    return parse_spec({**data, **changes})


def submit_build(spec: ClusterSpec, *, new: bool = True, env: dict[str, str] | None = None) -> UUID:
    """Start build-cluster as the CLI does; with `env` (settings for this run only), from a
    deployment of build-cluster that sets them: the worker refuses a run's own job variables."""
    request = lifecycle.new_cluster_request(spec, new=new)
    if env is None:
        return runs.submit_build(request, spec.hostname, new)
    with runs.connect() as client:
        build_cluster = client.read_deployment_by_name(f"{BUILD_FLOW}/{BUILD_FLOW}")
        deployment = client.create_deployment(
            flow_id=build_cluster.flow_id,
            name=f"{BUILD_FLOW}-with-" + "-".join(f"{key}={value}" for key, value in sorted(env.items())),
            entrypoint=build_cluster.entrypoint,
            path=build_cluster.path,
            pull_steps=build_cluster.pull_steps,
            parameter_openapi_schema=build_cluster.parameter_openapi_schema,
            enforce_parameter_schema=build_cluster.enforce_parameter_schema,
            work_pool_name=build_cluster.work_pool_name,
            job_variables={"env": {**build_cluster.job_variables["env"], **env}},
        )
        return client.create_flow_run_from_deployment(
            deployment,
            parameters={
                "request_file": str(request), "hostname": spec.hostname, "new": new,
                "person": signed(operator(), spec.hostname, "build"),
                "project": default_project(operator()) if new else "",
            },
            tags=[cluster_tag(spec.hostname)],
            labels={HOSTNAME_LABEL: spec.hostname},
        ).id


def wait_for(run_id: UUID, done: Callable[[RunView], bool], timeout: float = 90.0) -> RunView:
    deadline = time.monotonic() + timeout
    with runs.connect() as client:  # one connection for the whole wait
        while True:
            run = runs.read_run(run_id, client=client)
            if done(run):
                return run
            if run.final or time.monotonic() > deadline:
                raise AssertionError(f"run {run.describe()} ({run.phase}: {run.state_message}) did not get there")
            time.sleep(0.2)


def logs_with(run_id: UUID, line: str, timeout: float = 30.0) -> str:
    """The run's log once `line` is in it. A run's process sends its log lines in batches
    (every 2 s) and the last batch can arrive after the run's final state."""
    deadline = time.monotonic() + timeout
    while True:
        logs = "\n".join(log.message for log in runs.run_logs(run_id))
        if line in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.5)


def paused(run_id: UUID) -> RunView:
    return wait_for(run_id, lambda run: run.state_type == "PAUSED")


def ended(run_id: UUID, timeout: float = 120.0) -> RunView:
    return wait_for(run_id, lambda run: run.final, timeout)


def build(spec: ClusterSpec, *, new: bool = True) -> RunView:
    """Submit, approve the plan, and wait for the end of the run."""
    run_id = submit_build(spec, new=new)
    paused(run_id)
    runs.approve(spec.hostname)
    return ended(run_id)


def destroy(hostname: str) -> RunView:
    run_id = runs.submit_destroy(hostname)
    paused(run_id)
    runs.approve(hostname)
    return ended(run_id)


def servers_of(stack: LiveStack, hostname: str) -> list[str]:
    with stack.sandbox.connect() as conn:
        return sorted(s.name for s in conn.compute.servers() if s.metadata.get("cluster") == hostname)


def processes_of_run(run_id: UUID) -> list[int]:
    """The processes running this flow run (the worker starts each with its id in the environment)."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or not ours
    return found


def command_line(pid: int) -> bytes:
    """The process's command line, empty once it has ended (a provisioner may end any time)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def processes_left(run_id: UUID, within: float = 30.0) -> list[int]:
    """The run's processes still alive after waiting up to `within` seconds for them to exit
    (a suspended run's engine exits once it has sent its last logs; slower on a busy machine)."""
    deadline = time.monotonic() + within
    while (found := processes_of_run(run_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def latest_artifact(stack: LiveStack, key: str) -> Any:
    with stack.client() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1
        )
    assert found, f"no artifact {key}"
    return found[0]


@pytest.fixture(scope="module", autouse=True)
def roomy_sandbox(live_stack: LiveStack) -> Iterator[None]:
    """The clusters built here are left standing: quotas without limits, so they all fit."""
    live_stack.sandbox.set_knobs(quotas={name: -1 for name in QuotaSizes.model_fields})
    yield
    live_stack.sandbox.set_knobs(quotas=QuotaSizes().model_dump())


@pytest.fixture
def sandbox_knobs(live_stack: LiveStack) -> Iterator[Callable[..., None]]:
    """set(**knobs) on the session's sandbox; boot and build times, latency and faults are put back after."""
    yield live_stack.sandbox.set_knobs
    live_stack.sandbox.set_knobs(
        boot_seconds=0, build_seconds=0, latency_seconds=0, fail_next_server_creates=0, fail_next_requests=0
    )


def test_a_new_cluster_is_planned_approved_built_and_probed(live_stack: LiveStack) -> None:
    spec = cluster_spec()
    hostname = spec.hostname
    submitted = time.monotonic()
    run_id = submit_build(spec)

    waiting = paused(run_id)
    to_approval = time.monotonic() - submitted
    assert cluster_status(runs.runs_of(hostname)) == Status.AWAITING_APPROVAL
    assert waiting.phase == "approval"
    plan = latest_artifact(live_stack, artifact_key("plan", hostname)).data
    assert "**8 to add, 0 to change, 0 to destroy.**" in plan
    assert "+1 instance mgmt1 (p4-6gb)" in plan and "+1 floating IP login1" in plan
    # Waiting for a person holds no process: the run's engine has exited.
    assert processes_left(run_id) == []

    approved = time.monotonic()
    runs.approve(hostname, comment="looks right")
    resumed = wait_for(run_id, lambda run: run.state_type == "RUNNING")
    resume_latency = time.monotonic() - approved
    done = ended(run_id)
    total = time.monotonic() - submitted
    print(f"\nbuild: plan shown after {to_approval:.1f} s, resumed {resume_latency:.1f} s after approval, "
          f"done {total:.1f} s after submission")

    assert done.state_type == "COMPLETED", done.state_message
    assert cluster_status(runs.runs_of(hostname)) == Status.PROVISIONING_SUCCESS
    assert done.phase == "provisioning"
    assert resumed.id == run_id
    assert servers_of(live_stack, hostname) == [f"{spec.cluster_name}-{n}" for n in ("login1", "mgmt1", "node1")]
    progress = latest_artifact(live_stack, artifact_key("apply", hostname))
    assert progress.data == 100.0
    assert "apply complete" in progress.description
    state = open_existing(live_stack.clusters_dir, hostname).cluster_state()
    assert state is not None and state.guest_password.get_secret_value() == GUEST_PASSWORD
    for url in state.service_urls.values():
        assert httpx.get(url).status_code == 200
    approved_by = f"approved by {operator().label()}"
    assert f"{approved_by}: looks right" in logs_with(run_id, approved_by)


def with_nodes(spec: ClusterSpec, count: int) -> ClusterSpec:
    data = spec.to_data(include_secrets=True)
    data["instances"]["node"]["count"] = count
    return parse_spec(data)


def test_a_modification_adds_only_the_new_node_and_a_destroy_leaves_nothing(live_stack: LiveStack) -> None:
    spec = cluster_spec()
    hostname = spec.hostname
    assert build(spec).state_type == "COMPLETED"

    run_id = submit_build(with_nodes(spec, 2), new=False)
    paused(run_id)
    plan = latest_artifact(live_stack, artifact_key("plan", hostname)).data
    assert "**2 to add, 0 to change, 0 to destroy.**" in plan
    assert "+1 instance node2 (p2-3gb)" in plan
    runs.approve(hostname)
    done = ended(run_id)
    assert done.state_type == "COMPLETED", done.state_message
    assert cluster_status(runs.runs_of(hostname)) == Status.PROVISIONING_SUCCESS
    assert len(servers_of(live_stack, hostname)) == 4

    started = time.monotonic()
    gone = destroy(hostname)
    print(f"\ndestroy (approval included): {time.monotonic() - started:.1f} s")
    assert gone.state_type == "COMPLETED", gone.state_message
    assert cluster_status(runs.runs_of(hostname)) == Status.DESTROYED
    assert "**0 to add, 0 to change, 10 to destroy.**" in latest_artifact(live_stack, artifact_key("plan", hostname)).data
    assert servers_of(live_stack, hostname) == []
    assert not (live_stack.clusters_dir / hostname).exists()
    assert list((live_stack.clusters_dir / ARCHIVE).glob(f"{hostname}-*/logs/destroy.log"))
    # Every step of the three runs took the cluster's lock, created by the first only: no
    # refused creation left a traceback in Prefect's server log (it logs each one).
    assert f"'name': '{lock_name(hostname)}'" not in (live_stack.log_dir / "prefect-server.log").read_text()


def test_a_rejected_new_cluster_builds_nothing_and_frees_its_name(live_stack: LiveStack) -> None:
    spec = cluster_spec()
    run_id = submit_build(spec)
    paused(run_id)
    runs.reject(spec.hostname, comment="too big for a workshop")
    done = ended(run_id)

    assert (done.state_type, done.state_message) == ("CANCELLED", "too big for a workshop")
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.NOT_FOUND
    assert servers_of(live_stack, spec.hostname) == []
    assert not (live_stack.clusters_dir / spec.hostname).exists()
    lifecycle.new_cluster_request(spec).unlink()  # the name can be used again


def test_an_approval_that_never_comes_fails_the_run(live_stack: LiveStack) -> None:
    spec = cluster_spec()
    run_id = submit_build(spec, env={"MCHUB_APPROVAL_TIMEOUT_SECONDS": "1"})
    paused(run_id)
    done = ended(run_id, timeout=30)

    assert done.state_type == "FAILED"
    assert "never resumed" in (done.state_message or "")
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.PLAN_ERROR
    assert servers_of(live_stack, spec.hostname) == []


def test_a_change_rejected_never_answered_or_failing_its_plan_leaves_the_cluster_as_it_was(
    live_stack: LiveStack,
) -> None:
    in_a_month = date.today() + timedelta(days=30)
    spec = cluster_spec(expiration_date=in_a_month.isoformat())
    hostname = spec.hostname
    assert build(spec).state_type == "COMPLETED"
    ws = open_existing(live_stack.clusters_dir, hostname)
    config = {name: (ws.root / name).read_bytes() for name in ("main.tf.json", "terraform.tfvars.json")}
    change = with_volume(spec, "extra", expiration_date=(in_a_month + timedelta(days=60)).isoformat())

    def as_it_was(ending: str) -> None:
        history = runs.runs_of(hostname)
        assert cluster_status(history) == Status.PROVISIONING_SUCCESS, ending
        assert ws.spec() == spec, ending  # what the Modify form opens with (ui/modify.py)
        # The cull reads the same spec (flows/cull.py): it still expires on the applied date.
        culled_on = open_existing(live_stack.clusters_dir, hostname).spec()
        assert expired(culled_on, today=in_a_month + timedelta(days=1)), ending
        assert {name: (ws.root / name).read_bytes() for name in config} == config, ending
        assert b"extra" not in config["terraform.tfvars.json"]

    rejected = submit_build(change, new=False)
    paused(rejected)
    runs.reject(hostname, comment="not this week")
    assert ended(rejected).rejected
    as_it_was("rejected")
    assert failed_change(runs.runs_of(hostname)) is None  # a rejection is said on its own

    never_answered = submit_build(change, new=False, env={"MCHUB_APPROVAL_TIMEOUT_SECONDS": "1"})
    paused(never_answered)
    assert ended(never_answered, timeout=30).state_type == "FAILED"
    as_it_was("approval timed out")
    shown = failed_change(runs.runs_of(hostname))
    assert shown is not None and shown.id == never_answered and "never resumed" in (shown.state_message or "")

    # Another change (the same one would get its plan, made and never applied, back at once),
    # while another Terraform run holds the state: its plan fails.
    with state_locked(ws):
        failed_plan = submit_build(with_volume(change, "other"), new=False)
        assert (ended(failed_plan).state_type, runs.read_run(failed_plan).phase) == ("FAILED", "plan")
    as_it_was("plan failed")
    shown = failed_change(runs.runs_of(hostname))
    assert shown is not None and shown.id == failed_plan and "state lock" in (shown.state_message or "")
    status = mchub("status", hostname)
    assert status.code == 0 and status.out.startswith(f"{hostname}: provisioning_success\n")
    assert f"change not made (the cluster is as it was): {shown.describe()}: " in status.out

    # The volume that was never added is not kept: a change without it goes through, and the
    # cluster's status and spec follow it.
    later = with_nodes(spec, 2)
    assert build(later, new=False).state_type == "COMPLETED"
    assert cluster_status(runs.runs_of(hostname)) == Status.PROVISIONING_SUCCESS
    assert failed_change(runs.runs_of(hostname)) is None
    assert ws.spec() == later and ws.proposed_spec() is None
    assert len(servers_of(live_stack, hostname)) == 4


def test_services_not_up_in_time_end_in_provisioning_error_with_their_last_answers(
    live_stack: LiveStack, sandbox_knobs: Callable[..., None]
) -> None:
    sandbox_knobs(boot_seconds=600)
    spec = cluster_spec()
    run_id = submit_build(spec, env={"MCHUB_PROVISIONING_TIMEOUT_SECONDS": "3"})
    paused(run_id)
    runs.approve(spec.hostname)
    done = ended(run_id)

    assert (done.state_type, done.phase) == ("FAILED", "provisioning")
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.PROVISIONING_ERROR
    message = done.state_message or ""
    assert "within 3 s of the end of the apply" in message
    for service in ("jupyterhub", "freeipa"):
        assert f"{service} at http" in message
        assert f"HTTP 503 '{service} of {spec.hostname} is booting" in message


def forks_of_warm_engines(stack: LiveStack) -> set[int]:
    """The flow-run engines alive now: the forks of this platform's warm engines, which
    have its command line, as their parent has."""
    command = [b"mchub.orchestration.warm_engines", str(warm_engines.socket_path(stack.settings)).encode()]
    parents = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and all(part in (proc / "cmdline").read_bytes().split(b"\0") for part in command):
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # gone meanwhile
    return {pid for pid, parent in parents.items() if parent in parents}


def test_a_runs_engine_is_a_warm_fork_and_a_provisioning_cluster_holds_no_process(
    live_stack: LiveStack, sandbox_knobs: Callable[..., None]
) -> None:
    """While the apply runs, the run is the worker's launcher standing for a warm fork; once
    the cluster waits for its services, none of its processes is left, and the prober ends
    the run at the deadline."""
    sandbox_knobs(boot_seconds=600, build_seconds=HELD_IN_BUILD_SECONDS)  # the apply waits: time to look
    spec = cluster_spec()
    run_id = submit_build(spec, env={"MCHUB_PROVISIONING_TIMEOUT_SECONDS": "15"})
    paused(run_id)
    before = forks_of_warm_engines(live_stack)  # another run's (the hourly cull's), if any
    runs.approve(spec.hostname)
    wait_for(run_id, lambda run: run.phase == "build" and bool(run.progress))

    [launcher] = [pid for pid in processes_of_run(run_id) if b"engine_launcher.py" in command_line(pid)]
    [engine] = forks_of_warm_engines(live_stack) - before
    assert os.getpgid(engine) == engine, "the engine is not in a process group of its own"

    sandbox_knobs(build_seconds=0)
    provisioning = wait_for(run_id, lambda run: run.phase == "provisioning")
    assert cluster_status([provisioning]) == Status.PROVISIONING_RUNNING
    assert processes_left(run_id, within=30) == [], "a provisioning cluster holds a process"
    deadline = time.monotonic() + 30
    while engine in forks_of_warm_engines(live_stack):
        assert time.monotonic() < deadline, "the engine outlived its apply"
        time.sleep(0.2)
    assert runs.read_run(run_id).state_type == "PAUSED"
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.PROVISIONING_RUNNING

    done = ended(run_id)
    assert (done.state_type, done.phase) == ("FAILED", "provisioning")
    assert "within 15 s of the end of the apply" in (done.state_message or "")


def test_a_terraform_failure_is_a_build_error_and_a_retry_builds_the_rest(
    live_stack: LiveStack, sandbox_knobs: Callable[..., None]
) -> None:
    sandbox_knobs(fail_next_server_creates=1)
    spec = cluster_spec()
    failed = build(spec)

    assert (failed.state_type, failed.phase) == ("FAILED", "build")
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.BUILD_ERROR
    assert "injected by fail_next_server_creates" in (failed.state_message or "")
    assert len(servers_of(live_stack, spec.hostname)) == 2

    retried = build(spec, new=False)
    assert retried.state_type == "COMPLETED", retried.state_message
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.PROVISIONING_SUCCESS
    assert len(servers_of(live_stack, spec.hostname)) == 3


def test_progress_the_server_refuses_is_a_warning_in_the_log_not_a_stopped_apply(live_stack: LiveStack) -> None:
    # A real refusal: the report's progress artifact deleted under it (HTTP 404), as a server
    # too busy to take the update (HTTP 503 after its client's retries) would refuse it.
    hostname = f"progress{uuid4().hex[:6]}.sandbox.mchub.dev"

    @flow(name="progress-probe", persist_result=False)
    def report_without_its_artifact() -> UUID:
        report = ApplyReport(hostname)
        with get_client(sync_client=True) as client:
            for artifact in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key("apply", hostname)]))
            ):
                client.delete_artifact(artifact.id)
        report(ApplyProgress())
        return current_run().id

    run_id = report_without_its_artifact()
    assert f"progress of {hostname} (0/0 resources, 0% — waiting) not recorded" in logs_with(run_id, "not recorded")


def processes_in(folder: Path) -> list[int]:
    """The processes working in `folder` (Terraform, its guard, its provisioners)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder.resolve():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie has ended
                    found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or not ours
    return found


def provisioners_in(folder: Path, operation: bytes) -> list[int]:
    """The sandbox module's provisioners running `operation` (create-server, ...) in `folder`."""
    return [pid for pid in processes_in(folder) if operation in command_line(pid)]


def test_cancelling_mid_apply_stops_terraform_cleanly_and_a_later_build_completes(
    live_stack: LiveStack, sandbox_knobs: Callable[..., None]
) -> None:
    sandbox_knobs(build_seconds=HELD_IN_BUILD_SECONDS)
    spec = cluster_spec()
    folder = live_stack.clusters_dir / spec.hostname
    run_id = submit_build(spec)
    paused(run_id)
    runs.approve(spec.hostname)
    # Cancelled as the servers are made, not as a volume is done (see test_security_terraform).
    midway = wait_for(run_id, lambda run: bool(provisioners_in(folder, b"create-server")))
    cancelled = time.monotonic()
    answer = mchub("cancel", spec.hostname)  # follows the run to its end
    print(f"\ncancel: run ended {time.monotonic() - cancelled:.1f} s after the cancel")
    done = runs.read_run(run_id)

    assert midway.phase == "build"
    assert answer.code == 0, answer.err
    assert (done.state_type, done.phase) == ("CANCELLED", "build")
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.CANCELLED
    workspace = open_existing(live_stack.clusters_dir, spec.hostname)
    assert processes_in(workspace.root) == []
    apply_log = (workspace.logs / "apply.log").read_text()
    assert '"stopped": "cancelled"' in apply_log and '"killed": false' in apply_log
    assert workspace.why_not_archived()  # what was created before the cancel is in the saved state
    left = workspace.left_in_cloud()
    assert left and all(item.split()[0] in ("instance", "volume", "floating") for item in left)
    assert f"{spec.hostname}: cancelled" in answer.out and f"left in the cloud (from Terraform's state): {left[0]}" in answer.out
    assert "left in the cloud" in mchub("status", spec.hostname).out

    sandbox_knobs(build_seconds=0)
    again = build(spec, new=False)
    assert again.state_type == "COMPLETED", again.state_message
    assert len(servers_of(live_stack, spec.hostname)) == 3


def recorded(hostname: str, action: str, timeout: float = 30) -> audit.AuditEntry:
    """The newest `action` in `hostname`'s audit trail, once Prefect has stored its event."""
    deadline = time.monotonic() + timeout
    while True:
        with runs.connect() as client:
            found = [entry for entry in audit.audit_trail(client, hostname) if entry.action == action]
        if found or time.monotonic() > deadline:
            assert found, f"no {action} event for {hostname} within {timeout:.0f} s"
            return found[0]
        time.sleep(0.5)


def test_a_cancel_while_the_plan_waits_ends_the_run_and_changes_nothing(live_stack: LiveStack) -> None:
    new = cluster_spec()
    waiting = paused(submit_build(new))
    # Someone who may not act on the cluster is refused, whatever page or command they use.
    stranger = Person(subject="bob", name="Bob Chen", projects={default_project(operator()): Role.MEMBER})
    with pytest.raises(AccessDenied, match=f"Bob Chen may not cancel {re.escape(new.hostname)}"):
        runs.cancel(new.hostname, stranger)
    assert runs.runs_of(new.hostname)[0].awaiting_approval

    answer = mchub("cancel", new.hostname)
    assert answer.code == 0, answer.err
    assert f"{new.hostname}: cancelled" in answer.out and "nothing of it is left in the cloud" in answer.out
    assert ended(waiting.id).cancelled
    assert cluster_status(runs.runs_of(new.hostname)) == Status.CANCELLED
    assert recorded(new.hostname, "cancelled").by == operator().label()

    # A modification cancelled while its plan waits leaves the cluster up, the change beside it.
    built = cluster_spec()
    assert build(built).state_type == "COMPLETED"
    change = paused(submit_build(with_nodes(built, 2), new=False))
    assert mchub("cancel", built.hostname).code == 0
    history = runs.runs_of(built.hostname)
    assert cluster_status(history) == Status.PROVISIONING_SUCCESS
    shown = failed_change(history)
    assert shown is not None and shown.id == change.id and shown.cancelled
    assert open_existing(live_stack.clusters_dir, built.hostname).spec().instances["node"].count == 1

    refused = mchub("cancel", built.hostname)
    assert refused.code == 1 and f"{built.hostname} has no run to cancel" in refused.err


def test_a_busy_cluster_refuses_a_second_action_naming_the_run_that_holds_it(live_stack: LiveStack) -> None:
    spec = cluster_spec()
    holder = paused(submit_build(spec))

    # Past the client's own check (a run started from Prefect's dashboard): the flow refuses.
    with live_stack.client() as client:
        deployment = client.read_deployment_by_name("destroy-cluster/destroy-cluster")
        second = client.create_flow_run_from_deployment(
            deployment.id, parameters={"hostname": spec.hostname}, tags=[cluster_tag(spec.hostname)]
        ).id
    refused = ended(second)

    assert refused.state_type == "FAILED"
    assert f"{spec.hostname} is busy: build-cluster run {holder.name!r} (Suspended)" in (refused.state_message or "")
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.AWAITING_APPROVAL  # the refusal hides nothing
    runs.reject(spec.hostname)
    ended(holder.id)


def expire(hostname: str, clusters_dir: Path) -> None:
    """Set the cluster's expiration date to yesterday, as if that day had passed."""
    workspace = open_existing(clusters_dir, hostname)
    yesterday = date.today() - timedelta(days=1)
    dump_spec(workspace.spec().model_copy(update={"expiration_date": yesterday}), workspace.spec_file)


def run_cull(stack: LiveStack) -> RunView:
    with stack.client() as client:
        deployment = client.read_deployment_by_name("cull-expired-clusters/cull-expired-clusters")
        cull = client.create_flow_run_from_deployment(deployment.id).id
    culled = ended(cull)
    assert culled.state_type == "COMPLETED", culled.state_message
    return culled


def reminder_events(stack: LiveStack, hostname: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The `mchub.cluster.expiry-reminder` events Prefect's server holds for `hostname`, once
    there are `count` (events reach the server a moment after the run that emits them)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.post(
            f"{stack.api_url}/events/filter",
            json={"filter": {"event": {"name": ["mchub.cluster.expiry-reminder"]},
                             "resource": {"id": [f"mchub.cluster.{hostname}"]}}, "limit": 50},
            auth=stack.http_auth(),
        )
        answer.raise_for_status()
        found = answer.json()["events"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def reminded_long_ago(hostname: str, clusters_dir: Path) -> None:
    """Date the reminders that went out two hours back, as if the cull had run then."""
    path = open_existing(clusters_dir, hostname).reminders_file
    record = json.loads(path.read_text())
    record["sent"] = {lead: (datetime.fromisoformat(when) - timedelta(hours=2)).isoformat()
                      for lead, when in record["sent"].items()}
    path.write_text(json.dumps(record))


def test_the_cull_warns_first_then_destroys_expired_clusters_and_leaves_busy_ones(live_stack: LiveStack) -> None:
    expired, busy = cluster_spec(), cluster_spec()
    assert build(expired).state_type == "COMPLETED"
    waiting = paused(submit_build(busy))
    expire(expired.hostname, live_stack.clusters_dir)
    expire(busy.hostname, live_stack.clusters_dir)

    # Expired but never warned: the last reminder goes out, and nothing is destroyed yet.
    warned = run_cull(live_stack)
    assert (warned.state_message or "").startswith("0 expired cluster(s) being destroyed")
    [event] = reminder_events(live_stack, expired.hostname, 1)
    assert event["payload"]["lead_hours"] == 1.0
    assert f"{expired.hostname} expires at" in event["payload"]["message"]
    assert cluster_status(runs.runs_of(expired.hostname)) == Status.PROVISIONING_SUCCESS
    # Each reminder goes out once.
    run_cull(live_stack)
    assert len(reminder_events(live_stack, expired.hostname, 2, timeout=5)) == 1

    reminded_long_ago(expired.hostname, live_stack.clusters_dir)
    reminded_long_ago(busy.hostname, live_stack.clusters_dir)
    culled = run_cull(live_stack)
    # Only the expired cluster: those of the other tests here have no expiration date.
    assert (culled.state_message or "").startswith(f"1 expired cluster(s) being destroyed: {expired.hostname};")
    assert f"busy, left for the next cull: {busy.hostname}" in (culled.state_message or "")
    destroying = runs.runs_of(expired.hostname)[0]
    assert destroying.flow_name == "destroy-cluster"
    assert ended(destroying.id).state_type == "COMPLETED"
    assert cluster_status(runs.runs_of(expired.hostname)) == Status.DESTROYED
    assert servers_of(live_stack, expired.hostname) == []
    assert cluster_status(runs.runs_of(busy.hostname)) == Status.AWAITING_APPROVAL
    runs.reject(busy.hostname)
    ended(waiting.id)


def test_modify_and_extend_from_the_command_line(live_stack: LiveStack, tmp_path: Path) -> None:
    spec = cluster_spec(expiration_date=date.today() + timedelta(days=3))
    assert build(spec).state_type == "COMPLETED"
    workspace = open_existing(live_stack.clusters_dir, spec.hostname)
    config_before = workspace.main_tf.read_bytes()
    runs_before = len(runs.runs_of(spec.hostname))

    later = date.today() + timedelta(days=20)
    extended = mchub("extend", spec.hostname, "--until", later.isoformat())
    assert extended.code == 0, extended.err
    assert "no Terraform run was needed" in extended.out
    assert workspace.spec().expiration_date == later
    assert workspace.main_tf.read_bytes() == config_before and len(runs.runs_of(spec.hostname)) == runs_before
    assert re.search(rf"expires: end of {later.isoformat()} \(UTC\), in about 2[01] days", mchub("status", spec.hostname).out)
    past = mchub("extend", spec.hostname, "--until", date.today().isoformat())
    assert past.code == 1 and f"--until: {date.today().isoformat()} is not in the future" in past.err
    assert "is not a date: give it as YYYY-MM-DD" in mchub("extend", spec.hostname, "--until", "31/01/2027").err

    # The same path as the Modify form: plan, approval, apply; a spec file need not repeat the password.
    changed = with_nodes(spec, 2).to_data(include_secrets=True)
    changed["guest_passwd"] = ""
    changed["expiration_date"] = later.isoformat()
    spec_file = tmp_path / "changed.yaml"
    spec_file.write_text(yaml.safe_dump(changed))
    submitted = mchub("modify", spec.hostname, str(spec_file), "--no-wait")
    assert submitted.code == 0, submitted.err
    change = paused(runs.runs_of(spec.hostname)[0].id)
    busy = mchub("extend", spec.hostname, "--until", (later + timedelta(days=1)).isoformat())
    assert busy.code == 1 and f"{spec.hostname} is busy: {change.describe()}" in busy.err
    runs.approve(spec.hostname)
    assert ended(change.id).state_type == "COMPLETED"
    assert len(servers_of(live_stack, spec.hostname)) == 4
    assert workspace.spec().guest_passwd.get_secret_value() == GUEST_PASSWORD

    renamed = dict(changed, cluster_name="someone-else")
    spec_file.write_text(yaml.safe_dump(renamed))
    refused = mchub("modify", spec.hostname, str(spec_file))
    assert refused.code == 1 and f"it describes someone-else.{DOMAIN}, not {spec.hostname}" in refused.err


def test_nothing_prefect_stored_holds_a_secret(live_stack: LiveStack) -> None:
    """Last in this file, so that everything the tests above made Prefect store is searched too."""
    spec = cluster_spec(guest_passwd="")  # the module generates the password
    assert build(spec).state_type == "COMPLETED"
    state = open_existing(live_stack.clusters_dir, spec.hostname).cluster_state()
    assert state is not None
    generated = state.guest_password.get_secret_value()
    secrets = [GUEST_PASSWORD, generated, SANDBOX_OS_PASSWORD]

    stored = prefect_database_files(live_stack)
    with live_stack.client() as client:
        artifacts = [str(a.data) + str(a.description) for a in runs.all_pages(
            lambda offset: client.read_artifacts(limit=runs.PAGE_SIZE, offset=offset))]
        logs = [log.message for log in runs.all_pages(
            lambda offset: client.read_logs(limit=runs.PAGE_SIZE, offset=offset))]
    assert any(str(spec.hostname) in text for text in artifacts + logs)  # the search sees this cluster's runs
    for secret in secrets:
        for path in [*stored, *live_stack.log_dir.iterdir()]:
            assert secret.encode() not in path.read_bytes(), f"{path} holds a secret"
        assert not [text for text in artifacts + logs if secret in text]
