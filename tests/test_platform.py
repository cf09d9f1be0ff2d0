"""The Prefect platform against a real server: prefect.yaml's deployments, the worker, the
client the CLI and the web front end use (status, busy check, approvals), and the
reconciliation of runs left unfinished by a dead worker.

Runs of made-up clusters are created here in the state a test needs (never started, or
already ended) so that no flow acts on them; each test deletes its runs afterwards.
"""

import contextvars
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
import yaml
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import SetStateStatus
from prefect.input.run_input import Keyset, keyset_from_paused_state
from prefect.states import (
    Cancelled,
    Completed,
    Failed,
    Paused,
    Running,
    Scheduled,
    State,
    Suspended,
)

from mchub.cluster.lifecycle import REQUESTS
from mchub.orchestration import runs
from mchub.orchestration.deployments import live_flow_runs, reconcile_orphaned_runs
from mchub.orchestration.stack import ROOT, WORK_POOL, StartError, prefect_parts
from mchub.settings import Settings
from mchub.status import (
    BUILD_FLOW,
    CLUSTER_FLOWS,
    DESTROY_FLOW,
    HOSTNAME_LABEL,
    PHASE_LABEL,
    Status,
    cluster_status,
    cluster_tag,
)
from sandbox.launcher import SandboxCloud
from flows.approval import Approval
from mchub.access.people import operator
from tests.approval_probe import approval_probe
from tests.harness import LiveStack
from tests.test_flows import cluster_spec

MakeRun = Callable[..., FlowRun]


def not_started() -> State:
    """Scheduled a day ahead: the worker leaves it alone, yet it holds its cluster."""
    return Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))


def hostname() -> str:
    return f"t{uuid4().hex[:8]}.sandbox.mchub.dev"


@pytest.fixture
def make_run(live_stack: LiveStack) -> Iterator[MakeRun]:
    """make_run(hostname, flow, state, phase=None, labels=None): a run of a cluster in that state."""
    made: list[UUID] = []
    with live_stack.client() as client:
        deployments = {flow: client.read_deployment_by_name(f"{flow}/{flow}").id for flow in CLUSTER_FLOWS}

        def make(host: str, flow: str, state: State, phase: str | None = None, labels: dict | None = None) -> FlowRun:
            parameters = (
                {"request_file": "/nonexistent.yaml", "hostname": host, "new": True}
                if flow == BUILD_FLOW
                else {"hostname": host}
            )
            run = client.create_flow_run_from_deployment(
                deployments[flow],
                parameters=parameters,
                state=state,
                tags=[cluster_tag(host)],
                labels={HOSTNAME_LABEL: host, **({PHASE_LABEL: phase} if phase else {}), **(labels or {})},
            )
            made.append(run.id)
            return run

        yield make
        for run_id in made:
            client.delete_flow_run(run_id)


def test_deployments_come_from_prefect_yaml_with_the_hourly_cull(live_stack: LiveStack) -> None:
    with live_stack.client() as client:
        found = {
            name: client.read_deployment_by_name(f"{name}/{name}")
            for name in (BUILD_FLOW, DESTROY_FLOW, "cull-expired-clusters")
        }
    assert {name: d.entrypoint for name, d in found.items()} == {
        BUILD_FLOW: "flows/build.py:build_cluster",
        DESTROY_FLOW: "flows/destroy.py:destroy_cluster",
        "cull-expired-clusters": "flows/cull.py:cull_expired_clusters",
    }
    assert {d.work_pool_name for d in found.values()} == {WORK_POOL}
    assert not found[BUILD_FLOW].schedules and not found[DESTROY_FLOW].schedules
    [cull] = found["cull-expired-clusters"].schedules
    assert (cull.schedule.cron, cull.schedule.timezone, cull.active) == ("0 * * * *", "UTC", True)


def test_the_worker_runs_a_deployment_soon_after_it_is_submitted(live_stack: LiveStack) -> None:
    with live_stack.client() as client:
        deployment = client.read_deployment_by_name("cull-expired-clusters/cull-expired-clusters")
        submitted = time.monotonic()
        run = client.create_flow_run_from_deployment(deployment.id)
        picked_up: list[float] = []

        def note(view: runs.RunView) -> None:
            if view.state_type != "SCHEDULED" and not picked_up:
                picked_up.append(time.monotonic() - submitted)

        ended = runs.wait(run.id, note, poll_seconds=0.1, client=client)
        finished = time.monotonic() - submitted
        flow_run = client.read_flow_run(run.id)
        client.delete_flow_run(run.id)
    assert ended.state_type == "COMPLETED", ended.state_message
    started = (flow_run.start_time - flow_run.created).total_seconds()
    print(f"\nworker pick-up {picked_up[0]:.1f} s, flow started {started:.1f} s, ended {finished:.1f} s after submission")
    assert picked_up[0] < 10


def test_status_of_each_cluster_is_that_of_its_latest_run(live_stack: LiveStack, make_run: MakeRun) -> None:
    up, broken, kept, gone, waiting = hostname(), hostname(), hostname(), hostname(), hostname()
    make_run(up, BUILD_FLOW, Completed(), "provisioning")
    make_run(broken, BUILD_FLOW, Completed(), "provisioning")
    make_run(broken, BUILD_FLOW, Failed(message="apply failed"), "build")
    make_run(kept, BUILD_FLOW, Completed(), "provisioning")
    make_run(kept, DESTROY_FLOW, Cancelled(message="not yet"), "approval")
    make_run(gone, BUILD_FLOW, Completed(), "provisioning")
    make_run(gone, DESTROY_FLOW, Completed(), "destroy")
    make_run(waiting, BUILD_FLOW, Paused(), "approval")
    rejected_new = hostname()
    make_run(rejected_new, BUILD_FLOW, Cancelled(message="too big"), "approval")

    found = runs.statuses()
    assert {h: found.get(h) for h in (up, broken, kept, gone, waiting)} == {
        up: Status.PROVISIONING_SUCCESS,
        broken: Status.BUILD_ERROR,
        kept: Status.PROVISIONING_SUCCESS,
        gone: Status.DESTROYED,
        waiting: Status.AWAITING_APPROVAL,
    }
    assert rejected_new not in found
    assert cluster_status(runs.runs_of(rejected_new)) == Status.NOT_FOUND
    assert cluster_status(runs.runs_of(hostname())) == Status.NOT_FOUND
    history = runs.runs_of(broken)
    assert [(r.flow_name, r.state_type, r.phase, r.state_message) for r in history] == [
        (BUILD_FLOW, "FAILED", "build", "apply failed"),
        (BUILD_FLOW, "COMPLETED", "provisioning", None),
    ]


def test_statuses_cost_the_same_requests_for_any_number_of_clusters(
    live_stack: LiveStack, make_run: MakeRun
) -> None:
    def requests_for_statuses() -> tuple[int, dict[str, Status]]:
        sent: list[httpx.Request] = []
        with live_stack.client(event_hooks={"request": [sent.append]}) as client:
            found = runs.statuses(client=client)
        # A new client first fetches a CSRF token, once; the rest is statuses()'s own work.
        return len([r for r in sent if not r.url.path.endswith("/csrf-token")]), found

    clusters = [hostname() for _ in range(3)]
    for host in clusters:
        make_run(host, BUILD_FLOW, Completed(), "provisioning")
    few, found = requests_for_statuses()
    assert all(found[h] == Status.PROVISIONING_SUCCESS for h in clusters)

    clusters += [hostname() for _ in range(12)]
    for host in clusters[3:]:
        make_run(host, BUILD_FLOW, Completed(), "provisioning")
        make_run(host, DESTROY_FLOW, Failed(), "destroy")
    many, found = requests_for_statuses()
    assert all(found[h] == Status.DESTROY_ERROR for h in clusters[3:])
    assert many == few == 2  # the cluster flows' ids, then all their runs


def test_a_busy_cluster_refuses_a_second_action_naming_the_run(
    live_stack: LiveStack, make_run: MakeRun
) -> None:
    host = hostname()
    (live_stack.clusters_dir / host).mkdir()
    make_run(host, BUILD_FLOW, Completed(), "provisioning")
    holder = make_run(host, BUILD_FLOW, not_started())
    with pytest.raises(runs.ClusterBusy, match=rf"{host} is busy: build-cluster run '{holder.name}' \(Scheduled\)"):
        runs.submit_destroy(host)
    with pytest.raises(runs.ClusterBusy, match=rf"'{holder.name}' \(Scheduled\)"):
        runs.submit_build(Path("/nonexistent.yaml"), host, new=False)

    with live_stack.client() as client:
        client.set_flow_run_state(holder.id, Running(), force=True)
        client.update_flow_run_labels(holder.id, {PHASE_LABEL: "build"})
        with pytest.raises(runs.ClusterBusy, match=rf"'{holder.name}' \(Running\) is acting on it; wait for it"):
            runs.submit_destroy(host, client=client)
        client.set_flow_run_state(holder.id, Paused(), force=True)
    with pytest.raises(runs.ClusterBusy, match=rf"'{holder.name}' \(Paused\).*`mchub approve {host}`"):
        runs.submit_destroy(host)

    # The same refusal from the command line, with the exit code a script can test.
    cli = subprocess.run(
        [sys.executable, "-m", "mchub.cli", "destroy", host], cwd=ROOT, env=os.environ, capture_output=True, text=True
    )
    assert cli.returncode == 1
    assert f"build-cluster run '{holder.name}' (Paused)" in cli.stderr
    assert len(runs.runs_of(host)) == 2  # nothing was submitted


def test_a_refused_submission_leaves_no_request_behind(live_stack: LiveStack, make_run: MakeRun) -> None:
    """What the create form, the page's Try again and `mchub create` submit through: the
    request holds the guest password, so a refused one is taken away at once."""
    spec = cluster_spec()
    holder = make_run(spec.hostname, BUILD_FLOW, not_started())
    requests = live_stack.clusters_dir / REQUESTS
    before = sorted(requests.iterdir()) if requests.exists() else []
    with pytest.raises(runs.ClusterBusy, match=rf"'{holder.name}' \(Scheduled\)"):
        runs.submit_spec(spec, new=True)
    assert sorted(requests.iterdir()) == before
    assert not (live_stack.clusters_dir / spec.hostname).exists()


def test_approving_needs_a_plan_waiting(live_stack: LiveStack, make_run: MakeRun) -> None:
    host = hostname()
    with pytest.raises(runs.NotAwaitingApproval, match=f"{host} has no plan waiting for approval: it has no runs"):
        runs.approve(host)
    done = make_run(host, BUILD_FLOW, Completed(), "provisioning")
    with pytest.raises(runs.NotAwaitingApproval, match=rf"latest run is build-cluster run '{done.name}' \(Completed\)"):
        runs.reject(host, comment="no")


@pytest.fixture(scope="module")
def approval_probe_deployment(live_stack: LiveStack) -> UUID:
    """A deployment whose runs only wait for an answer, suspended as the cluster flows are."""
    deployment = approval_probe.from_source(str(ROOT), "tests/approval_probe.py:approval_probe")
    return deployment.deploy(
        name="approval-probe", work_pool_name=WORK_POOL, print_next_steps=False, ignore_warnings=True
    )


def wait_until_paused(run_id: UUID, timeout: float = 60.0) -> runs.RunView:
    deadline = time.monotonic() + timeout
    while (run := runs.read_run(run_id)).state_type != "PAUSED":
        assert not run.final and time.monotonic() < deadline, f"{run.describe()} never waited for approval"
        time.sleep(0.3)
    return run


def test_a_plan_is_approved_or_rejected_with_who_and_why(
    live_stack: LiveStack, approval_probe_deployment: UUID
) -> None:
    approved, rejected = hostname(), hostname()
    with live_stack.client() as client:
        run_ids = {
            host: client.create_flow_run_from_deployment(approval_probe_deployment, tags=[cluster_tag(host)]).id
            for host in (approved, rejected)
        }
        for host, run_id in run_ids.items():
            assert wait_until_paused(run_id).phase == "approval"
            assert cluster_status(runs.runs_of(host, client=client)) == Status.AWAITING_APPROVAL

        cli = subprocess.run(
            [sys.executable, "-m", "mchub.cli", "approve", approved, "--comment", "looks right"],
            cwd=ROOT, env=os.environ, capture_output=True, text=True,
        )
        assert cli.returncode == 0, cli.stderr
        assert f"approved by {operator().name} (the hub's operator)" in cli.stdout
        runs.reject(rejected, comment="too big for a workshop", client=client)

        ended = {host: runs.wait(run_id, client=client) for host, run_id in run_ids.items()}
        for run_id in run_ids.values():
            client.delete_flow_run(run_id)
    assert (ended[approved].state_type, ended[approved].state_message) == ("COMPLETED", f"approved by {operator().name}: looks right")
    assert (ended[rejected].state_type, ended[rejected].state_message) == ("CANCELLED", "too big for a workshop")
    assert ended[rejected].rejected


def suspended_without_its_form(client, deployment: UUID, host: str) -> tuple[FlowRun, Keyset]:
    """A run as suspend_flow_run leaves it between pausing and saving its input schema."""
    run = client.create_flow_run_from_deployment(deployment, state=Running(), tags=[cluster_tag(host)])
    state = Suspended(timeout_seconds=600, pause_key="probe")
    keyset = keyset_from_paused_state(state)
    state.state_details.run_input_keyset = keyset
    # Through the server's rules, as the flow's own suspend: they record the key it paused on.
    assert client.set_flow_run_state(run.id, state).status == SetStateStatus.ACCEPT
    return run, keyset


def test_an_answer_given_before_the_run_saved_its_form_waits_for_it(
    live_stack: LiveStack, approval_probe_deployment: UUID
) -> None:
    host = hostname()
    with live_stack.client() as client:
        run, keyset = suspended_without_its_form(client, approval_probe_deployment, host)
        # The schema lands late, as on a busy server (seen under bench/scale.py's 20 clusters).
        save_form = partial(contextvars.copy_context().run, Approval.save, keyset, flow_run_id=run.id)
        late_form = threading.Timer(1.5, save_form)
        late_form.start()
        try:
            runs.approve(host, comment="answered at once")
        finally:
            late_form.join()
        ended = runs.wait(run.id, client=client)
        client.delete_flow_run(run.id)
    assert (ended.state_type, ended.state_message) == ("COMPLETED", f"approved by {operator().name}: answered at once")


def test_an_answer_to_a_run_that_never_saves_its_form_says_where_to_look(
    live_stack: LiveStack, approval_probe_deployment: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "ANSWERABLE_WITHIN_SECONDS", 1.0)
    host = hostname()
    with live_stack.client() as client:
        run, _ = suspended_without_its_form(client, approval_probe_deployment, host)
        try:
            with pytest.raises(runs.RunsError, match=rf"has not saved the form of its answer .*`mchub logs {host}`"):
                runs.approve(host)
            assert client.read_flow_run(run.id).state.is_paused()
        finally:
            client.delete_flow_run(run.id)


def test_destroying_a_cluster_without_a_folder_is_refused(live_stack: LiveStack) -> None:
    host = hostname()
    with pytest.raises(runs.RunsError, match=f"{host}: there is no cluster folder"):
        runs.submit_destroy(host)
    assert runs.runs_of(host) == []


def test_reconciliation_crashes_the_runs_whose_process_is_gone(
    live_stack: LiveStack, make_run: MakeRun
) -> None:
    dead_worker = f"worker-{uuid4().hex[:6]}"
    host = hostname()
    (live_stack.clusters_dir / host).mkdir()
    orphan = make_run(host, BUILD_FLOW, Running(), "build", labels={"prefect.worker.name": dead_worker})
    alive = make_run(hostname(), BUILD_FLOW, Running(), "build", labels={"prefect.worker.name": dead_worker})
    elsewhere = make_run(hostname(), BUILD_FLOW, Running(), "build", labels={"prefect.worker.name": "another-machine"})
    # A process of the run still going (a flow run's engine, or its Terraform) keeps it running.
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], env={**os.environ, "PREFECT__FLOW_RUN_ID": str(alive.id)}
    )
    try:
        assert alive.id in live_flow_runs()
        crashed = reconcile_orphaned_runs(dead_worker)
        assert [run.id for run in crashed] == [orphan.id]
        assert [r.state_type for r in map(runs.read_run, (orphan.id, alive.id, elsewhere.id))] == [
            "CRASHED", "RUNNING", "RUNNING"
        ]
        assert cluster_status(runs.runs_of(host)) == Status.BUILD_ERROR
        # The cluster can be acted on again: its crashed run no longer holds it.
        runs.refuse_if_busy(runs.runs_of(host), host)
    finally:
        process.kill()
        process.wait()
    assert alive.id not in live_flow_runs()
    assert [run.id for run in reconcile_orphaned_runs(dead_worker)] == [alive.id]
    assert runs.read_run(alive.id).state_type == "CRASHED"


def test_an_unreachable_prefect_is_reported_with_what_to_do() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    with runs.connect(closed) as client, pytest.raises(runs.PrefectUnreachable, match=f"{closed} does not answer.*mchub up"):
        runs.statuses(client=client)


def test_mchub_up_starts_prefect_only_on_this_machine() -> None:
    with pytest.raises(StartError, match="MCHUB_PREFECT_API_URL='http://prefect.example.org:4200/api'.*loopback"):
        prefect_parts(Settings(prefect_api_url="http://prefect.example.org:4200/api"))


def test_create_and_destroy_from_the_command_line(
    live_stack: LiveStack, clean_sandbox: SandboxCloud, tmp_path: Path
) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "cluster.yaml").read_text())
    spec.update(cluster_name=f"c{uuid4().hex[:8]}", volumes={"nfs": {"home": {"size": 10}}})
    spec["instances"]["node"]["count"] = 1
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    host = f"{spec['cluster_name']}.{spec['domain']}"

    created = mchub("create", str(spec_file), "--approve")
    assert created.returncode == 0, created.stdout + created.stderr
    shown = created.stdout
    assert shown.index("awaiting_approval") < shown.index("plan approved") < shown.index(f"{host}: provisioning_success")
    assert "Plan: " in shown and "instance" in shown  # the plan summary was shown before approving
    assert cluster_status(runs.runs_of(host)) == Status.PROVISIONING_SUCCESS

    status = mchub("status", host)
    assert status.returncode == 0 and status.stdout.startswith(f"{host}: provisioning_success")

    destroyed = mchub("destroy", host, "--approve")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert f"{host}: destroyed" in destroyed.stdout
    assert f"{host}" not in mchub("list").stdout
    assert f"{host:<50} destroyed" in mchub("list", "--all").stdout


def mchub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mchub.cli", *args], cwd=ROOT, env=os.environ, capture_output=True, text=True, timeout=300
    )


def test_prefects_dashboard_form_and_rest_api_answer_a_plan(
    live_stack: LiveStack, approval_probe_deployment: UUID
) -> None:
    """The dashboard draws its form from the JSON schema the run stored; any HTTP client
    can answer with a plain POST to the run's resume endpoint, as the dashboard does."""
    host = hostname()
    with live_stack.client() as client:
        run_id = client.create_flow_run_from_deployment(approval_probe_deployment, tags=[cluster_tag(host)]).id
        wait_until_paused(run_id)
        keyset = client.read_flow_run(run_id).state.state_details.run_input_keyset
    api, auth = live_stack.api_url, live_stack.http_auth()
    schema = httpx.get(f"{api}/flow_runs/{run_id}/input/{keyset['schema']}", timeout=10, auth=auth)
    assert schema.status_code == 200
    form = json.loads(schema.json()) if isinstance(schema.json(), str) else schema.json()
    assert {"approve", "comment", "person"} <= set(form["properties"])
    assert form["required"] == ["approve"]

    answer = {"run_input": {"approve": True, "comment": "from curl"}}
    resumed = httpx.post(f"{api}/flow_runs/{run_id}/resume", json=answer, timeout=10, auth=auth)
    assert resumed.status_code in (200, 201) and resumed.json()["status"] == "ACCEPT", resumed.text
    done = runs.wait(run_id)
    assert (done.state_type, done.state_message) == ("COMPLETED", "approved by an unsigned person: from curl")
