"""A cluster's folder (mchub.cluster.workspace): never taken over, never deleted while it holds
resources, archived rather than erased, secrets readable by its owner only.

Terraform here is real, on a configuration of plain terraform_data resources, so the state
files and plan files are the ones Terraform writes.
"""

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from mchub.cloud.quota import Allocation
from mchub.cluster import lifecycle
from mchub.cluster.state import ClusterState, left_summary
from mchub.cluster.workspace import ARCHIVE, Workspace, WorkspaceError, create
from mchub.spec.model import SpecError, default_spec_data, parse_spec
from mchub.terraform.runner import Terraform
from tests.test_spec import default_spec

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"
SECRET = "secret-in-the-configuration"


MODULE = 'variable "count_of" {}\nvariable "secret" {}\nresource "terraform_data" "thing" {\n  count = var.count_of\n  input = var.secret\n}\n'


def config(count: int, source: str = "./things") -> dict:
    """main.tf.json shaped like MC Hub's: one module given the cluster's inputs."""
    return {"module": {"cluster": {"source": source, "count_of": count, "secret": SECRET}}}


@pytest.fixture
def clusters_dir(tmp_path: Path) -> Path:
    return tmp_path / "clusters"


@pytest.fixture
def ws(clusters_dir: Path) -> Workspace:
    workspace = create(clusters_dir, default_spec([PUBLIC_KEY], name="folder", domain="example.org"))
    for module in ("things", "other-things"):
        (workspace.root / module).mkdir()
        (workspace.root / module / "main.tf").write_text(MODULE)
    write_config(workspace, config(2))
    return workspace


@pytest.fixture
def tf(ws: Workspace, tmp_path: Path) -> Terraform:
    return Terraform(ws.root, log_dir=ws.logs, home=tmp_path / "home", timeout=120, grace_period=10)


def write_config(ws: Workspace, document: dict) -> None:
    ws.main_tf.write_text(json.dumps(document))


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def apply(ws: Workspace, tf: Terraform, *, destroy: bool = False) -> None:
    lifecycle.init(ws, tf)
    record, _ = lifecycle.plan(ws, tf, destroy=destroy)
    lifecycle.apply(ws, tf, record)


def test_a_new_cluster_never_takes_over_an_existing_folder(clusters_dir: Path) -> None:
    spec = default_spec([PUBLIC_KEY], name="busy", domain="example.org")
    folder = clusters_dir / spec.hostname
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")

    with pytest.raises(WorkspaceError, match="cluster_name: a cluster named busy.example.org already exists"):
        create(clusters_dir, spec)

    assert [p.name for p in folder.iterdir()] == ["notes.txt"] and (folder / "notes.txt").read_text() == "mine"


def test_a_folder_is_archived_only_once_its_state_holds_no_resources(ws: Workspace, tf: Terraform) -> None:
    apply(ws, tf)
    assert ws.why_not_archived()

    with pytest.raises(WorkspaceError, match="still holds resources; destroy the cluster before archiving"):
        ws.archive()
    assert ws.state_file.exists() and (ws.logs / "apply.log").exists()

    apply(ws, tf, destroy=True)
    assert not ws.why_not_archived()
    archived = ws.archive()

    assert not ws.root.exists()
    assert archived.parent == ws.root.parent / ARCHIVE
    assert {"init.log", "plan.log", "apply.log", "destroy-plan.log", "destroy.log"} <= {
        p.name for p in (archived / "logs").iterdir()
    }
    assert mode(archived / "terraform.tfstate") == 0o600  # Terraform writes it 0644; it holds outputs


def test_a_state_that_cannot_be_read_counts_as_holding_resources(ws: Workspace) -> None:
    ws.state_file.write_text('{"resources": [{"mode": "managed", "instan')

    assert ws.why_not_archived()
    with pytest.raises(WorkspaceError, match="still holds resources"):
        ws.archive()


def test_archives_of_a_name_made_in_the_same_second_sit_side_by_side(clusters_dir: Path) -> None:
    spec = default_spec([PUBLIC_KEY], name="twice", domain="example.org")
    first = create(clusters_dir, spec).archive()
    second = create(clusters_dir, spec).archive()

    assert first != second and first.parent == second.parent == clusters_dir / ARCHIVE
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir()) == ["logs"]


def test_a_new_plan_replaces_the_files_of_the_previous_one_kept_for_the_owner_only(
    ws: Workspace, tf: Terraform
) -> None:
    lifecycle.init(ws, tf)
    first, _ = lifecycle.plan(ws, tf)
    assert mode(ws.root / first.plan_file) == mode(ws.root / first.plan_json) == 0o600
    assert SECRET in (ws.root / first.plan_json).read_text()

    write_config(ws, config(3))
    second, summary = lifecycle.plan(ws, tf)

    assert summary.counts.add == 3
    assert sorted(p.name for p in (ws.root / "plans").iterdir()) == sorted(
        Path(name).name for name in (second.plan_file, second.plan_json)
    )
    assert ws.plan_record() == second


def test_init_runs_again_only_when_what_it_installs_changes(ws: Workspace, tf: Terraform) -> None:
    assert lifecycle.init(ws, tf) is True
    write_config(ws, config(5))
    assert lifecycle.init(ws, tf) is False  # new inputs: nothing to install

    write_config(ws, config(5, source="./other-things"))
    assert lifecycle.init(ws, tf) is True
    (ws.root / ".terraform").rename(ws.root / "gone")
    assert lifecycle.init(ws, tf) is True


def test_cluster_json_keeps_the_guest_password_for_its_owner_only(ws: Workspace) -> None:
    assert ws.cluster_state() is None
    state = ClusterState(
        hostname=ws.hostname, instances=[], volumes=[], public_ip=None, guest_usernames="user[01-02]",
        guest_password=SecretStr("kept-for-the-owner"), sudoer="centos", service_urls={}, held=Allocation(),
    )

    ws.save_cluster_state(state)

    assert mode(ws.cluster_state_file) == 0o600
    assert "kept-for-the-owner" in ws.cluster_state_file.read_text()
    assert "kept-for-the-owner" not in repr(state) + state.model_dump_json()
    assert Workspace(ws.root).cluster_state() == state


def test_a_proposal_waits_beside_the_applied_spec_and_its_archive_keeps_no_password(clusters_dir: Path) -> None:
    applied = parse_spec({**default_spec_data(domain="example.org", name="prop"), "public_keys": [PUBLIC_KEY],
                          "guest_passwd": "proposal-guest-password"})
    proposal = applied.model_copy(update={"nb_users": 20})
    ws = create(clusters_dir, applied)
    with pytest.raises(SpecError, match="no such file"):
        ws.spec()

    ws.propose(applied)
    assert ws.spec() == ws.proposed_spec() == applied  # never applied: its proposal is all it has
    ws.adopt_proposal()
    assert (ws.spec(), ws.proposed_spec()) == (applied, None)
    ws.propose(proposal)
    assert (ws.spec(), ws.proposed_spec()) == (applied, proposal)
    assert mode(ws.spec_file) == mode(ws.proposal_file) == 0o600
    with pytest.raises(WorkspaceError, match="cluster_name/domain: this folder belongs to prop.example.org"):
        ws.propose(applied.model_copy(update={"cluster_name": "other"}))

    archived = ws.archive()
    assert "proposal-guest-password" not in (archived / ws.proposal_file.name).read_text()
    assert "nb_users: 20" in (archived / ws.proposal_file.name).read_text()


def test_what_a_cancelled_cluster_left_in_the_cloud_is_read_from_its_state(ws: Workspace) -> None:
    assert ws.left_in_cloud() == []  # never applied: no state, nothing in the cloud
    ws.state_file.write_text(json.dumps({"resources": [
        {"mode": "managed", "type": "openstack_compute_instance_v2", "name": "instances",
         "instances": [{"index_key": "mgmt1", "attributes": {"flavor_name": "p4-6gb"}}]},
        {"mode": "managed", "type": "openstack_blockstorage_volume_v3", "name": "volumes",
         "instances": [{"index_key": "nfs-home", "attributes": {"size": 100}}]},
        {"mode": "managed", "type": "openstack_networking_secgroup_v2", "name": "external",
         "instances": [{"attributes": {}}]},
        {"mode": "data", "type": "openstack_images_image_v2", "name": "image", "instances": [{}]},
    ]}))
    assert ws.left_in_cloud() == ["instance mgmt1", "volume nfs-home"]
    assert left_summary(ws.left_in_cloud()) == (
        "left in the cloud (from Terraform's state): instance mgmt1, volume nfs-home"
    )
    ws.state_file.write_text('{"resources": [{"mode": "managed", "instan')
    assert ws.left_in_cloud() is None
    assert "unknown" in left_summary(None)
