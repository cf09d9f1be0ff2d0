"""Workers on two machines, standing for two: machine A runs `mchub up`'s Prefect part (the
server on PostgreSQL, a worker, the prober), machine B only `mchub worker`'s parts, each with a
home and a clusters folder of its own; they share the server and the store
(MCHUB_SHARED_STORE_URL, a PostgreSQL database of its own). Each step runs on one machine
alone, its other worker stopped, so that it is known where each run ran.
"""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mchub.access.signed import KEY_FILE, key_file
from mchub.cluster.shared_store import SharedStore
from mchub.cluster.workspace import ARCHIVE, open_existing
from mchub.orchestration import prefect_auth, runs
from mchub.orchestration.stack import worker_stack_parts
from mchub.status import Status, artifact_key, cluster_status
from mchub.terraform.config import backend_schema
from sandbox.launcher import start_sandbox
from bench.tools import process_tree, wait_until
from tests import postgres
from tests.harness import LiveStack, acting_on, parts_on, prefect_part
from tests.test_lifecycle import HELD_IN_BUILD_SECONDS
from tests.test_security_terraform import sandbox_objects
from tests.test_flows import (
    cluster_spec,
    ended,
    latest_artifact,
    paused,
    processes_in,
    servers_of,
    submit_build,
    with_nodes,
)

pytestmark = pytest.mark.live
WORKER = "prefect worker"


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, LiveStack, str]]:
    """Machines A and B on a sandbox of their own (its latency is turned up), and the store's database."""
    postgres.required()
    prefect_database = postgres.new_database_url()
    store_database = postgres.new_database_url()
    store_url = store_database.replace("postgresql+asyncpg", "postgresql", 1) + "?sslmode=disable"
    # The same depth on both, as the same paths on two machines: the sandbox's module is named
    # relative to the cluster's folder.
    root = tmp_path_factory.mktemp("two-machines")
    sandbox_cloud = start_sandbox(root / "sandbox" / "data", root / "sandbox")
    try:
        SharedStore(store_url, root / "a" / "clusters").ensure()  # as `mchub up` does first
        with prefect_part(
            root / "a", sandbox_cloud, database_url=prefect_database, shared_store_url=store_url, worker_name="machine-a"
        ) as a:
            # What an operator copies from A's MCHUB_HOME (the credential is given as a setting).
            (root / "b").mkdir()
            shutil.copy2(key_file(a.settings), root / "b" / KEY_FILE)
            with parts_on(
                sandbox_cloud, root / "b", worker_stack_parts,
                prefect_api_url=a.api_url, prefect_auth_string=prefect_auth.auth_string(a.settings),
                shared_store_url=store_url, worker_name="machine-b",
            ) as b:
                yield a, b, postgres.database_of(store_database)
    finally:
        sandbox_cloud.stop()
        postgres.drop(postgres.database_of(prefect_database))
        postgres.drop(postgres.database_of(store_database))


def only_worker_on(running: LiveStack, stopped: LiveStack) -> None:
    if stopped.worker_running():
        stopped.stop_part(WORKER)
    if not running.worker_running():
        running.start_part(WORKER)


def state_in_store(database: str, hostname: str) -> dict:
    [row] = asyncio.run(postgres.query(database, f"SELECT data FROM {backend_schema(hostname)}.states WHERE name = 'default'"))
    return json.loads(row["data"])


def test_a_plan_made_on_one_machine_is_applied_on_the_other_and_either_changes_and_destroys_the_cluster(
    two_machines: tuple[LiveStack, LiveStack, str],
) -> None:
    a, b, store = two_machines
    spec = cluster_spec()
    hostname = spec.hostname
    b.stop_part(WORKER)
    with acting_on(a):
        # Planned on A; A's worker is stopped before the approval, B's takes the resumed run.
        # Stopped as soon as the run is paused, maybe while its engine is still saving the
        # form of its answer: the engine finishes that first.
        run_id = submit_build(spec)
        paused(run_id)
        planned = open_existing(a.clusters_dir, hostname).plan_record()
        assert planned is not None and (a.clusters_dir / hostname / planned.plan_file).exists()
        assert not (b.clusters_dir / hostname).exists()
        only_worker_on(b, a)
        runs.approve(hostname)
        built = ended(run_id, timeout=300)
        assert built.state_type == "COMPLETED", built.state_message
        assert cluster_status(runs.runs_of(hostname)) == Status.PROVISIONING_SUCCESS
        assert len(servers_of(a, hostname)) == 3

        # B applied exactly A's plan file, and Terraform's state is in PostgreSQL.
        on_b = open_existing(b.clusters_dir, hostname)
        applied = on_b.plan_record()
        assert applied is not None and applied.plan_file == planned.plan_file and applied.applied
        assert "Apply complete!" in (on_b.logs / "apply.log").read_text()
        assert not (a.clusters_dir / hostname / "logs" / "apply.log").exists()  # A has not pulled since
        built_state = state_in_store(store, hostname)
        assert len([r for r in built_state["resources"] if r["mode"] == "managed"]) > 0
        assert json.loads(on_b.state_file.read_text())["serial"] == built_state["serial"]
        assert not (b.clusters_dir / hostname / "terraform.tfstate").exists()

        # Changed on A: its Terraform reads B's state, so only the new node is planned.
        only_worker_on(a, b)
        run_id = submit_build(with_nodes(spec, 2), new=False)
        paused(run_id)
        plan = latest_artifact(a, artifact_key("plan", hostname)).data
        assert "**2 to add, 0 to change, 0 to destroy.**" in plan, plan
        runs.approve(hostname)
        changed = ended(run_id, timeout=300)
        assert changed.state_type == "COMPLETED", changed.state_message
        assert len(servers_of(a, hostname)) == 4

    # Listed and destroyed on B, by its command line, as an operator there does.
    only_worker_on(b, a)
    listed = b.mchub("list")
    assert hostname in listed.stdout and "provisioning_success" in listed.stdout, listed.stdout + listed.stderr
    destroyed = b.mchub("destroy", hostname, "--approve", timeout=300)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    with acting_on(a):
        assert cluster_status(runs.runs_of(hostname)) == Status.DESTROYED
        assert "**0 to add, 0 to change, 10 to destroy.**" in latest_artifact(a, artifact_key("plan", hostname)).data
    assert servers_of(a, hostname) == []
    assert not (b.clusters_dir / hostname).exists()
    assert not asyncio.run(postgres.query(store, "SELECT 1 FROM pg_namespace WHERE nspname = $1", backend_schema(hostname)))

    # A's folder of the cluster goes at its next pull, and the archive, logs and all, comes.
    assert (a.clusters_dir / hostname).exists()
    assert a.mchub("list").returncode == 0
    assert not (a.clusters_dir / hostname).exists()
    [archived] = (a.clusters_dir / ARCHIVE).glob(f"{hostname}-*")
    assert "Apply complete!" in (archived / "logs" / "destroy.log").read_text()
    assert (archived / "logs" / "apply.log").exists()  # B's apply of the plan A made
    assert spec.guest_passwd.get_secret_value() not in _text_of(archived)


def _text_of(folder: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file())


def test_a_machine_dying_mid_apply_leaves_the_other_its_mark_and_a_retry_there_builds_the_cluster(
    two_machines: tuple[LiveStack, LiveStack, str],
) -> None:
    """Machine A's worker, warm engines, run and Terraform frozen and killed at once while its
    apply makes the first server, as a machine that dies; its server and the store live on."""
    a, b, store = two_machines
    spec = cluster_spec()
    hostname = spec.hostname
    only_worker_on(a, b)
    with acting_on(a):
        run_id = submit_build(spec)
        paused(run_id)
        a.sandbox.set_knobs(build_seconds=HELD_IN_BUILD_SECONDS)
        runs.approve(hostname)
        wait_until(lambda: bool(a.sandbox.admin().get("/usage").json()["clusters"].get(hostname)), 120, "a first server")
        die(a, a.clusters_dir / hostname)
        a.sandbox.set_knobs(build_seconds=0)

    # Machine B: the run is reconciled by the dead worker's name; the folder it pulls is marked.
    b.start_part(WORKER)
    reconciled = b.mchub("reconcile", "--worker", a.settings.worker_name or "")
    assert reconciled.returncode == 0 and f"({run_id})" in reconciled.stdout, reconciled.stdout + reconciled.stderr
    shown = b.mchub("status", hostname)
    assert f"{hostname}: build_error" in shown.stdout, shown.stdout
    on_b = open_existing(b.clusters_dir, hostname)
    assert on_b.unfinished_apply() is not None and on_b.why_not_archived()

    # A retry on B plans from Terraform's state in PostgreSQL, builds the cluster, destroys it.
    with acting_on(b):
        run_id = runs.submit_repair(hostname)
        paused(run_id)
        runs.approve(hostname)
        retried = ended(run_id, timeout=300)
        assert retried.state_type == "COMPLETED", retried.state_message
        assert open_existing(b.clusters_dir, hostname).unfinished_apply() is None
    leaked = {name: ids for name, ids in sandbox_objects(b.sandbox, hostname).items() if len(ids) > 1}
    print(f"\nleft twice in the cloud after the retry (made by the dead apply, not in its state): {sorted(leaked)}")
    destroyed = b.mchub("destroy", hostname, "--approve", timeout=300)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    left = sandbox_objects(b.sandbox, hostname)
    assert sorted(left) == sorted(leaked)  # what the dead apply made and never saved, one each


def die(machine: LiveStack, folder: Path) -> None:
    """Freeze, then kill, the worker, the warm engines, everything they started, and every
    process working in `folder`: none is told (kill_all_in's reasons)."""
    roots = [machine.pid_of(WORKER), machine.pid_of("warm engines")]
    while pids := [pid for pid in process_tree(roots) + processes_in(folder) if not _ended(pid)]:
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        time.sleep(0.05)
    for name in (WORKER, "warm engines"):
        machine.forget_part(name)


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent to read its end."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
