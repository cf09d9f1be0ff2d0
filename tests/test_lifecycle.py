"""A cluster's life through mchub.cluster.lifecycle, on the real sandbox cloud with real Terraform.

Every cluster goes the way the flows take it: a request file, prepare, init, plan, apply of
the saved plan, state read back, destroy and archive. What the cloud holds is checked with
the sandbox's admin usage API and openstacksdk, not with what the hub believes.
"""

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mchub.cloud.quota import allocation_of
from mchub.cloud.resources import Flavor, ResourceReader
from mchub.cluster import lifecycle
from mchub.cluster.state import read_cluster_state
from mchub.cluster.workspace import ARCHIVE, PlanRecord, Workspace, WorkspaceError, open_existing
from mchub.settings import get_settings
from mchub.spec.model import ClusterSpec, SpecError, default_spec_data, dump_spec, parse_spec
from mchub.terraform.errors import TerraformCancelled, TerraformError
from mchub.terraform.plan import ChangeCounts
from mchub.terraform.progress import ApplyProgress
from mchub.terraform.runner import Terraform
from sandbox.launcher import SandboxCloud
from tests.test_terraform_runner import archived_logs

DOMAIN = "sandbox.mchub.dev"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"
PASSWORD = "guest-password-never-logged"
HELD_IN_BUILD_SECONDS = 300.0
"""A sandbox build_seconds that holds an apply at its servers (made, in BUILD, not recorded) until
a test sets it back to 0: longer than any test waits there; the provisioner itself waits 600 s."""
# The sandbox's usage keys and the Allocation fields they count.
USAGE_OF = {
    "instances": "instances", "cores": "cores", "ram": "ram",
    "volumes": "volumes", "gigabytes": "volume_gb", "floating_ips": "floating_ips",
}

T = TypeVar("T")


@dataclass
class Hub:
    clusters_dir: Path
    sandbox: SandboxCloud
    flavors: dict[str, Flavor]

    def spec(self, name: str, *, nodes: int = 1, **changes: Any) -> ClusterSpec:
        """The hub's default cluster with a guest password, `nodes` compute nodes and `changes`."""
        data = {**default_spec_data(domain=DOMAIN, name=name), "public_keys": [PUBLIC_KEY], "guest_passwd": PASSWORD}
        data["instances"]["node"]["count"] = nodes
        return parse_spec({**data, **changes})

    def prepare(self, spec: ClusterSpec, *, new: bool = True) -> Workspace:
        request = lifecycle.new_cluster_request(spec, new=new, clusters_dir=self.clusters_dir)
        return lifecycle.prepare(request, new=new)

    def planned(self, spec: ClusterSpec) -> tuple[Workspace, Terraform, PlanRecord]:
        """The new cluster of `spec` prepared, initialised and planned: its folder, its
        Terraform and the plan's record."""
        ws = self.prepare(spec)
        tf = lifecycle.terraform_for(ws)
        lifecycle.init(ws, tf)
        record, _ = lifecycle.plan(ws, tf)
        return ws, tf, record

    def build(self, spec: ClusterSpec) -> tuple[Workspace, Terraform]:
        """The cluster of `spec`, built: prepared, initialised, planned and applied."""
        ws, tf, record = self.planned(spec)
        lifecycle.apply(ws, tf, record)
        return ws, tf

    def usage(self) -> dict[str, int]:
        response = self.sandbox.admin().get("/usage")
        response.raise_for_status()
        return response.json()["in_use"]

    def usage_since(self, before: dict[str, int]) -> dict[str, int]:
        """What was added to the cloud's usage since `before`, by Allocation field."""
        now = self.usage()
        return {field: now[key] - before[key] for key, field in USAGE_OF.items()}


def destroy_and_archive(ws: Workspace, tf: Terraform) -> Path:
    """What destroy-cluster does without asking anyone: init, destroy plan, apply, then
    archive the folder; returns where the folder went."""
    lifecycle.init(ws, tf)
    record, _ = lifecycle.plan(ws, tf, destroy=True)
    lifecycle.apply(ws, tf, record)
    return ws.archive()


@contextmanager
def hub_on(sandbox_cloud: SandboxCloud, root: Path) -> Iterator[Hub]:
    """MC Hub's settings pointed at `sandbox_cloud`, with its own home (Terraform's plugin
    cache) and clusters folder under `root`, while the block lasts."""
    with pytest.MonkeyPatch.context() as env:
        # Only the credentials the hub hands Terraform may reach the module, not the shell's.
        for key in [key for key in os.environ if key.startswith("OS_")]:
            env.delenv(key)
        env.setenv("MCHUB_HOME", str(root / "home"))
        env.setenv("MCHUB_CLOUDS_YAML", str(sandbox_cloud.clouds_yaml))
        env.setenv("MCHUB_CLOUD", "sandbox")
        get_settings.cache_clear()
        flavors = ResourceReader("sandbox", sandbox_cloud.clouds_yaml).read().flavors
        yield Hub(root / "clusters", sandbox_cloud, {flavor.name: flavor for flavor in flavors})
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def hub(sandbox_cloud: SandboxCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with hub_on(sandbox_cloud, tmp_path_factory.mktemp("lifecycle")) as on_sandbox:
        yield on_sandbox


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def timed(call: Callable[[], T]) -> tuple[float, T]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def test_a_new_cluster_is_planned_applied_with_progress_and_read_back(fresh: Hub) -> None:
    before = fresh.usage()
    spec = fresh.spec("demo")
    request = lifecycle.new_cluster_request(spec, clusters_dir=fresh.clusters_dir)
    assert request.parent == fresh.clusters_dir / ".requests" and mode(request) == 0o600

    ws = lifecycle.prepare(request, new=True)

    assert ws.root == fresh.clusters_dir / "demo.sandbox.mchub.dev"
    assert not request.exists()  # it held the password; the folder has the spec now
    assert ws.spec() == spec
    # Nothing is applied yet: the spec is a proposal, the cluster's spec only once its apply starts.
    assert not ws.spec_file.exists()
    assert mode(ws.root) == 0o700 and mode(ws.proposal_file) == mode(ws.main_tf) == 0o600
    # A flow resumed after approval prepares again from the same, since removed, request.
    written = ws.main_tf.stat().st_mtime_ns
    assert lifecycle.prepare(request, new=True).root == ws.root
    assert ws.main_tf.stat().st_mtime_ns == written

    tf = lifecycle.terraform_for(ws)
    init_seconds, ran = timed(lambda: lifecycle.init(ws, tf))
    again_seconds, ran_again = timed(lambda: lifecycle.init(ws, tf))
    assert (ran, ran_again) == (True, False)
    plan_seconds, (record, summary) = timed(lambda: lifecycle.plan(ws, tf))

    assert summary.counts == ChangeCounts(add=10)
    assert summary.lines("instance") == ["+2 instances login1, node1 (p2-3gb)", "+1 instance mgmt1 (p4-6gb)"]
    assert summary.lines("floating_ip") == ["+1 floating IP login1"]
    assert not summary.destructive
    plan_json = ws.root / record.plan_json
    assert PASSWORD in plan_json.read_text()  # Terraform shows module inputs: hence 0600
    assert mode(plan_json) == mode(ws.root / record.plan_file) == 0o600
    # Planning again with nothing changed (a resumed flow) returns the same plan, runs nothing.
    assert lifecycle.plan(ws, tf) == (record, summary)
    assert archived_logs(ws.logs, "plan") == []

    seen: list[tuple[int, int]] = []
    apply_seconds, progress = timed(
        lambda: lifecycle.apply(ws, tf, record, on_progress=lambda p: seen.append((p.done, p.percent)))
    )
    print(
        f"\ndefault cluster: init {init_seconds:.2f} s (again: {again_seconds * 1000:.1f} ms, skipped), "
        f"plan {plan_seconds:.2f} s, apply {apply_seconds:.2f} s"
    )

    assert seen[0] == (0, 0) and seen == sorted(seen) and seen[-1] == (10, 100)
    assert not ws.proposal_file.exists() and ws.spec() == spec and mode(ws.spec_file) == 0o600
    assert progress.percent == 100 and progress.applied == ChangeCounts(add=10)
    assert fresh.usage_since(before) == allocation_of(spec, fresh.flavors).model_dump()

    state = read_cluster_state(tf, spec, fresh.flavors)
    ws.save_cluster_state(state)

    conn = fresh.sandbox.connect()
    addresses = {ip.description: ip.floating_ip_address for ip in conn.network.ips()}
    conn.close()
    assert {(i.name, i.flavor, i.public_ip) for i in state.instances} == {
        ("mgmt1", "p4-6gb", None),
        ("login1", "p2-3gb", addresses["demo.sandbox.mchub.dev login1"]),
        ("node1", "p2-3gb", None),
    }
    assert state.public_ip == addresses["demo.sandbox.mchub.dev login1"]
    assert {(v.name, v.size_gb) for v in state.volumes} == {
        ("nfs-home", 100), ("nfs-project", 100), ("nfs-scratch", 100),
        ("mgmt1 (boot)", 10), ("login1 (boot)", 10), ("node1 (boot)", 10),
    }
    assert (state.guest_usernames, state.guest_password.get_secret_value(), state.sudoer) == (
        "user[01-10]", PASSWORD, "centos",
    )
    assert {name: httpx.get(url).status_code for name, url in state.service_urls.items()} == {
        "jupyterhub": 200, "freeipa": 200,
    }
    assert state.held == allocation_of(spec, fresh.flavors)
    assert ws.cluster_state() == state and mode(ws.cluster_state_file) == 0o600
    assert PASSWORD not in repr(state) and PASSWORD not in state.model_dump_json()
    for log in ws.logs.iterdir():
        assert PASSWORD not in log.read_text(), log.name
    # A plan is applied once: its approval cannot start a second apply.
    with pytest.raises(WorkspaceError, match="was applied already, and a plan is applied only once; plan again"):
        lifecycle.apply(ws, tf, record)


def test_three_nodes_instead_of_one_plan_and_apply_node2_and_node3_only(fresh: Hub) -> None:
    ws, tf = fresh.build(fresh.spec("grow"))
    before = fresh.usage()
    written = ws.main_tf.stat().st_mtime_ns
    fresh.prepare(fresh.spec("grow"), new=False)  # a modification that changes nothing
    assert ws.main_tf.stat().st_mtime_ns == written
    grown = fresh.spec("grow", nodes=3)

    ws = fresh.prepare(grown, new=False)
    assert lifecycle.init(ws, tf) is False  # new counts need no new init
    record, summary = lifecycle.plan(ws, tf)

    assert summary.lines("instance") == ["+2 instances node2, node3 (p2-3gb)"]
    assert summary.counts == ChangeCounts(add=4)  # and their boot volumes
    assert not summary.destructive
    progress = lifecycle.apply(ws, tf, record)
    assert progress.percent == 100
    state = read_cluster_state(tf, grown, fresh.flavors)
    assert sorted(i.name for i in state.instances if "node" in i.tags) == ["node1", "node2", "node3"]
    assert state.held == allocation_of(grown, fresh.flavors)
    assert fresh.usage_since(before) == {
        "instances": 2, "cores": 4, "ram": 2 * 3072, "volumes": 2, "volume_gb": 20, "floating_ips": 0,
    }
    # Each step's earlier log is kept beside the new one, never overwritten.
    for step in ("plan", "apply"):
        assert archived_logs(ws.logs, step) == [ws.logs / f"{step}.1.log"]
        assert "node2" not in (ws.logs / f"{step}.1.log").read_text()
        assert "node2" in (ws.logs / f"{step}.log").read_text()


# Holds a file's fcntl lock, as Terraform's local backend holds its state's, until its stdin closes.
_LOCK_HOLDER = "import fcntl, sys; f = open(sys.argv[1], 'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print(flush=True); sys.stdin.read()"


@contextmanager
def state_locked(ws: Workspace) -> Iterator[None]:
    """Terraform's state held by another process, as by another Terraform run, so that a plan
    fails as it does then. Another process: this one drops its fcntl locks on a file whenever it
    closes any descriptor of it (reading the state does)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(ws.state_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdout.readline()
    try:
        yield
    finally:
        holder.stdin.close()
        holder.wait()


def with_volume(spec: ClusterSpec, name: str, **changes: Any) -> ClusterSpec:
    data = spec.to_data(include_secrets=True)
    data["volumes"]["nfs"][name] = {"size": 10}
    return parse_spec({**data, **changes})


def test_a_change_planned_but_never_applied_leaves_the_cluster_as_it_was(fresh: Hub) -> None:
    """Rejected, never answered, or its plan failed: the cluster's spec (what the Modify form
    and the cull read), main.tf.json and its values stay those of the applied spec."""
    in_a_month = date.today() + timedelta(days=30)
    spec = fresh.spec("undo", expiration_date=in_a_month.isoformat())
    ws, tf = fresh.build(spec)
    applied_config = {name: (ws.root / name).read_bytes() for name in ("main.tf.json", "terraform.tfvars.json")}

    def as_it_was() -> None:
        assert open_existing(fresh.clusters_dir, ws.hostname).spec() == spec
        assert {name: (ws.root / name).read_bytes() for name in applied_config} == applied_config
        assert b"extra" not in applied_config["main.tf.json"] + applied_config["terraform.tfvars.json"]

    later = (in_a_month + timedelta(days=60)).isoformat()
    change = with_volume(spec, "extra", expiration_date=later)
    request = lifecycle.new_cluster_request(change, new=False, clusters_dir=fresh.clusters_dir)
    ws = lifecycle.prepare(request, new=False)
    assert ws.proposed_spec() == change and mode(ws.proposal_file) == 0o600
    record, summary = lifecycle.plan(ws, tf)  # then rejected, or never answered: nothing more runs
    assert summary.lines("volume") == ["+1 volume nfs-extra 10 GB"]
    as_it_was()

    fresh.prepare(with_volume(spec, "other"), new=False)
    with state_locked(ws), pytest.raises(TerraformError, match="state lock"):
        lifecycle.plan(ws, tf)
    as_it_was()

    # The volume never applied may be left out of the next change; an applied one may not.
    lifecycle.new_cluster_request(spec, new=False, clusters_dir=fresh.clusters_dir).unlink()
    with pytest.raises(SpecError, match="removing a volume deletes it with its data"):
        fresh.prepare(fresh.spec("undo", volumes={"nfs": {"home": {"size": 100}}}), new=False)

    # A run resumed with an approval prepares and plans again: it finds its own proposal and
    # plan, and its apply makes the proposal the cluster's spec.
    approved = lifecycle.new_cluster_request(change, new=False, clusters_dir=fresh.clusters_dir)
    ws = lifecycle.prepare(approved, new=False)
    record, _ = lifecycle.plan(ws, tf)
    as_it_was()
    assert lifecycle.prepare(approved, new=False).root == ws.root and lifecycle.plan(ws, tf)[0] == record
    lifecycle.apply(ws, tf, record)
    assert ws.spec() == change and ws.proposed_spec() is None
    assert b"extra" in ws.variables_file.read_bytes()
    assert {v.name for v in read_cluster_state(tf, change, fresh.flavors).volumes} >= {"nfs-extra"}


def test_a_plan_made_before_the_configuration_changed_is_refused_and_nothing_applied(fresh: Hub) -> None:
    before = fresh.usage()
    ws, tf, approved = fresh.planned(fresh.spec("stale"))
    fresh.prepare(fresh.spec("stale", nodes=2), new=False)  # changed while the plan waited

    with pytest.raises(WorkspaceError, match="main.tf.json changed after the plan was made"):
        lifecycle.apply(ws, tf, approved)
    newer, _ = lifecycle.plan(ws, tf)
    with pytest.raises(WorkspaceError, match="no longer the latest plan"):
        lifecycle.apply(ws, tf, approved)

    assert fresh.usage() == before and not ws.state_file.exists()
    assert not (ws.logs / "apply.log").exists()
    assert not (ws.root / approved.plan_file).exists() and (ws.root / newer.plan_file).exists()


def test_an_apply_over_quota_fails_with_the_clouds_message_and_destroy_cleans_up(fresh: Hub) -> None:
    before = fresh.usage()
    fresh.sandbox.set_knobs(quotas={"cores": 6})  # the default cluster needs 8
    ws, tf, record = fresh.planned(fresh.spec("tight"))
    last: list[ApplyProgress] = []

    with pytest.raises(TerraformError) as refused:
        lifecycle.apply(ws, tf, record, on_progress=lambda p: last[:] or last.append(p))

    assert re.search(r"Quota exceeded for cores: Requested \d+, but already used \d+ of 6 cores", str(refused.value))
    assert PASSWORD not in str(refused.value)
    assert [r.label for r in last[0].failed if r.kind == "instance"]  # the progress shows which failed
    archived = destroy_and_archive(ws, tf)
    assert fresh.usage() == before
    assert archived.parent == fresh.clusters_dir / ARCHIVE


def test_a_cancelled_apply_leaves_a_state_that_a_later_plan_and_apply_complete(fresh: Hub) -> None:
    before = fresh.usage()
    spec = fresh.spec("halt")
    fresh.sandbox.set_knobs(build_seconds=HELD_IN_BUILD_SECONDS)
    ws, tf, record = fresh.planned(spec)

    def cancel_once_servers_are_being_made(progress: ApplyProgress) -> None:
        # Mid-apply: every volume made (the tag volumes wait for nothing, so a server can
        # start before they are), the servers building.
        resources = progress.resources.values()
        volumes_made = all(r.state == "done" for r in resources if r.kind == "volume")
        if volumes_made and any(r.kind == "instance" and r.state == "running" for r in resources):
            tf.cancel()

    started = time.monotonic()
    with pytest.raises(TerraformCancelled, match="stopped cleanly after SIGINT and saved its state"):
        lifecycle.apply(ws, tf, record, on_progress=cancel_once_servers_are_being_made)
    print(f"\ncancelled apply stopped after {time.monotonic() - started:.1f} s")

    partial = fresh.usage_since(before)
    assert partial["volumes"] >= 1 and partial["instances"] < 3
    assert ws.state_file.exists()
    fresh.sandbox.set_knobs(build_seconds=0)
    tf = lifecycle.terraform_for(ws)  # a new run; the cancelled Terraform starts nothing more
    retry, summary = lifecycle.plan(ws, tf)
    assert retry.plan_file != record.plan_file and summary.has_changes
    lifecycle.apply(ws, tf, retry)

    assert fresh.usage_since(before) == allocation_of(spec, fresh.flavors).model_dump()
    assert read_cluster_state(tf, spec, fresh.flavors).held == allocation_of(spec, fresh.flavors)
    _, again = lifecycle.plan(ws, tf)
    assert not again.has_changes


@pytest.mark.parametrize("after", [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
def test_an_apply_cancelled_at_any_moment_leaves_nothing_over_once_applied_again(fresh: Hub, after: float) -> None:
    """Cancelled while its volumes are being made, some of them finishing just then: those
    that Terraform counted as failed are deleted, not left in the cloud."""
    before = fresh.usage()
    spec = fresh.spec(f"moment{int(after * 10)}")
    ws, tf, record = fresh.planned(spec)
    threading.Timer(after, tf.cancel).start()
    with contextlib.suppress(TerraformCancelled):  # unless it was done by then
        lifecycle.apply(ws, tf, record)

    tf = lifecycle.terraform_for(ws)
    retry, _ = lifecycle.plan(ws, tf)
    lifecycle.apply(ws, tf, retry)
    assert fresh.usage_since(before) == allocation_of(spec, fresh.flavors).model_dump()


def test_destroy_gives_back_what_the_cluster_held_and_archives_its_folder_with_logs(fresh: Hub) -> None:
    before = fresh.usage()
    spec = fresh.spec("gone")
    ws, tf = fresh.build(spec)
    with pytest.raises(WorkspaceError, match="still holds resources; destroy the cluster"):
        ws.archive()
    assert ws.state_file.exists()

    lifecycle.init(ws, tf)
    record, summary = lifecycle.plan(ws, tf, destroy=True)
    assert summary.counts == ChangeCounts(destroy=10) and summary.destructive
    lifecycle.apply(ws, tf, record)
    archived = ws.archive()

    assert fresh.usage() == before
    assert not ws.root.exists()
    assert archived.parent == fresh.clusters_dir / ARCHIVE and archived.name.startswith("gone.sandbox.mchub.dev-")
    assert {"init.log", "plan.log", "apply.log", "destroy-plan.log", "destroy.log"} <= {
        log.name for log in (archived / "logs").iterdir()
    }
    assert (archived / "terraform.tfstate").exists()
    # The name is free for a new cluster.
    lifecycle.new_cluster_request(spec, clusters_dir=fresh.clusters_dir).unlink()


def test_a_new_cluster_whose_folder_exists_is_refused_and_the_folder_left_alone(hub: Hub) -> None:
    spec = hub.spec("taken")
    request = lifecycle.new_cluster_request(spec, clusters_dir=hub.clusters_dir)
    folder = hub.clusters_dir / spec.hostname
    folder.mkdir()  # appears while the request waits for its run
    (folder / "terraform.tfstate").write_text('{"resources": "of someone else"}')

    with pytest.raises(WorkspaceError, match="cluster_name: a cluster named taken.sandbox.mchub.dev already exists"):
        lifecycle.new_cluster_request(spec, clusters_dir=hub.clusters_dir)
    with pytest.raises(WorkspaceError, match="cluster_name: a cluster named taken.sandbox.mchub.dev already exists"):
        lifecycle.prepare(request, new=True)

    assert [p.name for p in folder.iterdir()] == ["terraform.tfstate"]
    assert (folder / "terraform.tfstate").read_text() == '{"resources": "of someone else"}'
    assert not request.exists()  # refused for good: the password it held is not left behind
    with pytest.raises(WorkspaceError, match="no cluster folder was prepared from it; submit the request again"):
        lifecycle.prepare(request, new=True)


def test_a_modification_of_a_cluster_without_folder_is_refused(hub: Hub) -> None:
    with pytest.raises(WorkspaceError, match="no cluster named ghost.sandbox.mchub.dev"):
        lifecycle.new_cluster_request(hub.spec("ghost"), new=False, clusters_dir=hub.clusters_dir)


@pytest.fixture(scope="module")
def locked(hub: Hub) -> Workspace:
    return hub.prepare(hub.spec("locked"))


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("cluster_name", {"cluster_name": "unlocked"}),
        ("domain", {"domain": "elsewhere.example"}),
        ("image", {"image": "AlmaLinux-9"}),
        ("guest_passwd", {"guest_passwd": "another-guest-password"}),
        ("volumes.nfs.scratch", {"volumes": {"nfs": {"home": {"size": 100}, "project": {"size": 100}}}}),
    ],
)
def test_a_modification_may_not_change_what_a_built_cluster_keeps(
    hub: Hub, locked: Workspace, field: str, changes: dict[str, Any]
) -> None:
    kept = locked.main_tf.read_bytes()
    changed = hub.spec("locked", **changes)

    with pytest.raises(SpecError) as at_request:
        lifecycle.new_cluster_request(changed, new=False, hostname=locked.hostname, clusters_dir=hub.clusters_dir)
    # A request written before the cluster changed is refused when the flow prepares it.
    request = hub.clusters_dir / lifecycle.REQUESTS / f"{uuid.uuid4()}.yaml"
    dump_spec(changed, request)
    with pytest.raises(SpecError) as at_prepare:
        lifecycle.prepare(request, new=False, hostname=locked.hostname)

    for refused in (at_request.value, at_prepare.value):
        assert [problem.field for problem in refused.problems] == [field]
        assert PASSWORD not in str(refused) and "another-guest-password" not in str(refused)
    assert locked.main_tf.read_bytes() == kept and not request.exists()
