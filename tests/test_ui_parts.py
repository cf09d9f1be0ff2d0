"""The web front end's pure parts: flavor choice per role, where the form shows each
problem, the quota bars' numbers, the plan's highlighting, the phases and the probe answers."""

from datetime import UTC, datetime
from uuid import uuid4

from mchub.cloud.quota import QuotaLine
from mchub.cloud.resources import Flavor, Quota
from mchub.spec.model import FieldProblem, default_spec_data
from mchub.status import RunView
from ui.flavor_choice import flavors_for, too_small
from ui.form_values import FormValues, place, row_target, volume_target
from ui.phases import steps_of
from ui.plan_view import plan_blocks
from ui.probes import LogLine, last_answers
from ui.quota_bars import bar_html, bar_of
from ui.text import literal

SANDBOX_FLAVORS = [
    Flavor(name="p1-1.5gb", vcpus=1, ram_mb=1536, disk_gb=0),
    Flavor(name="p2-3gb", vcpus=2, ram_mb=3072, disk_gb=0),
    Flavor(name="p4-6gb", vcpus=4, ram_mb=6144, disk_gb=0),
    Flavor(name="c8-30gb", vcpus=8, ram_mb=30720, disk_gb=20),
    Flavor(name="m1-8gb", vcpus=1, ram_mb=8192, disk_gb=20),
]


def _names(flavors: list[Flavor]) -> list[str]:
    return [flavor.name for flavor in flavors]


# --- flavors per role -------------------------------------------------------------------


def test_each_role_is_offered_only_flavors_big_enough_smallest_first():
    assert _names(flavors_for(SANDBOX_FLAVORS, ["mgmt", "puppet", "nfs"])) == ["p4-6gb", "c8-30gb"]
    assert _names(flavors_for(SANDBOX_FLAVORS, ["login", "public", "proxy"])) == ["p2-3gb", "p4-6gb", "c8-30gb"]
    # A node needs 2 GB but one vCPU is enough: the 1-vCPU, 8 GB flavor suits it, not the 1.5 GB one.
    assert _names(flavors_for(SANDBOX_FLAVORS, ["node"])) == ["p2-3gb", "p4-6gb", "m1-8gb", "c8-30gb"]


def test_a_row_with_two_roles_needs_the_larger_minimum_of_each():
    # mgmt wants 6 GB, login wants 2 vCPU: the 1-vCPU 8 GB flavor fails login's minimum.
    assert _names(flavors_for(SANDBOX_FLAVORS, ["mgmt", "login"])) == ["p4-6gb", "c8-30gb"]


def test_a_row_without_a_known_role_is_sized_as_a_node():
    assert _names(flavors_for(SANDBOX_FLAVORS, ["dtn"])) == _names(flavors_for(SANDBOX_FLAVORS, ["node"]))


def test_a_too_small_flavor_says_what_the_role_needs():
    reason = too_small(SANDBOX_FLAVORS[1], ["mgmt", "puppet"])
    assert reason is not None
    assert "p2-3gb" in reason and "mgmt" in reason and "6 GB" in reason
    assert too_small(SANDBOX_FLAVORS[2], ["mgmt"]) is None


# --- the form's rows and problems -------------------------------------------------------


def _values(**changes) -> FormValues:
    return FormValues.from_spec_data(default_spec_data(name="demo")).model_copy(update=changes)


def test_each_spec_problem_is_placed_at_its_row_and_column():
    values = _values()
    mgmt, login, node = values.rows
    home = values.volumes[0]
    problems = [
        FieldProblem(field="instances.node.count", message="too many"),
        FieldProblem(field="instances.login.tags", message="two logins"),
        FieldProblem(field="instances.mgmt", message="bad prefix"),
        FieldProblem(field="volumes.nfs.home.size", message="too small"),
        FieldProblem(field="public_keys[1]", message="bad key"),
        FieldProblem(field="spec", message="whole spec"),
    ]
    assert place(problems, values) == {
        row_target(node.uid, "count"): ["too many"],
        row_target(login.uid, "tags"): ["two logins"],
        row_target(mgmt.uid, "prefix"): ["bad prefix"],
        volume_target(home.uid, "size"): ["too small"],
        "public_keys": ["bad key"],
        "spec": ["whole spec"],
    }


def test_the_longest_matching_prefix_owns_a_problem():
    values = _values()
    extra = values.rows[2].model_copy(update={"uid": 9, "prefix": "node-gpu"})
    values = values.model_copy(update={"rows": [*values.rows, extra]})
    placed = place([FieldProblem(field="instances.node-gpu.type", message="no such flavor")], values)
    assert placed == {row_target(9, "type"): ["no such flavor"]}


def test_two_rows_with_one_prefix_are_refused_at_the_second():
    values = _values()
    twin = values.rows[2].model_copy(update={"uid": 7})
    data, problems = values.model_copy(update={"rows": [*values.rows, twin]}).to_spec_data()
    assert list(data["instances"]) == ["mgmt", "login", "node"]
    assert list(problems) == [row_target(7, "prefix")]
    assert "already used" in problems[row_target(7, "prefix")][0]


def test_public_keys_are_one_per_line_blank_lines_ignored():
    values = _values(public_keys="ssh-ed25519 AAAA one\n\n  ssh-rsa BBBB two  \n")
    assert values.to_spec_data()[0]["public_keys"] == ["ssh-ed25519 AAAA one", "ssh-rsa BBBB two"]


def test_the_quota_request_counts_rows_even_while_other_fields_are_wrong():
    values = _values(cluster_name="Not A Name!", public_keys="")
    request = values.quota_request({"p4-6gb", "p2-3gb"})
    assert {prefix: group.count for prefix, group in request.instances.items()} == {"mgmt": 1, "login": 1, "node": 1}
    assert sum(v.size for named in request.volumes.values() for v in named.values()) == 300


# --- quota bars -------------------------------------------------------------------------


def test_a_bar_shows_others_this_cluster_and_free_in_gb():
    line = QuotaLine(quota=Quota(name="ram", unit="MB", used=10240, limit=51200), held=2048, needed=6144)
    bar = bar_of(line)
    assert (bar.title, bar.unit, bar.limit, bar.others, bar.cluster, bar.free) == ("RAM", "GB", 50, 8, 6, 36)
    assert bar.shortfall is None
    assert "others 8 GB · this cluster 6 GB · 36 GB free" in bar_html(bar)


def test_a_request_that_does_not_fit_turns_its_bar_red_with_the_shortfall():
    line = QuotaLine(quota=Quota(name="cores", unit="vCPU", used=60, limit=64), held=0, needed=8)
    html = bar_html(bar_of(line))
    assert 'class="mchub-quota over"' in html
    assert "cores: the cluster needs 8 vCPU, the project has 4 vCPU free" in html


def test_an_unlimited_quota_has_no_limit_to_fill():
    bar = bar_of(QuotaLine(quota=Quota(name="instances", unit="", used=3, limit=-1), held=0, needed=5))
    assert bar.limit is None and bar.shortfall is None
    assert "no limit" in bar.legend()


# --- the plan ---------------------------------------------------------------------------

PLAN = """### Plan: demo.sandbox.mchub.dev

**2 to add, 1 to change, 2 to destroy.**

**Instances**
- `+1 instance node2 (p2-3gb)`
- `-/+ replace instance node1 p2-3gb → p4-6gb`

**Volumes**
- `~ resize volume nfs-home 100 → 200 GB`
- `-1 volume nfs-scratch 100 GB`

> **Warning: this plan destroys things.**
>
> - data on volume nfs-scratch will be lost: it is deleted
> - instance node1 will be deleted and created again (p2-3gb → p4-6gb): what is on its disk is lost"""


def test_destructive_changes_are_red_and_bold_the_others_coloured_by_action():
    blocks = plan_blocks(PLAN)
    text = "\n".join(block.markdown for block in blocks if block.kind == "text")
    assert f"- :green[{literal('+1 instance node2 (p2-3gb)')}]" in text
    assert f"- **:red[{literal('-/+ replace instance node1 p2-3gb → p4-6gb')}]**" in text
    assert f"- :orange[{literal('~ resize volume nfs-home 100 → 200 GB')}]" in text
    assert f"- **:red[{literal('-1 volume nfs-scratch 100 GB')}]**" in text


def test_the_plans_warning_is_a_block_of_its_own():
    warnings = [block for block in plan_blocks(PLAN) if block.kind == "warning"]
    assert len(warnings) == 1
    assert warnings[0].markdown.startswith("**Warning: this plan destroys things.**")
    assert "data on volume nfs-scratch will be lost" in warnings[0].markdown


# --- phases -----------------------------------------------------------------------------


def _run(flow: str, state: str, phase: str | None, answer: str | None = None) -> RunView:
    return RunView(
        id=uuid4(), name="r", flow_name=flow, state_type=state, state_name=state.title(),
        phase_label=phase, answer=answer, created=datetime.now(UTC), hostname="demo.sandbox.mchub.dev",
    )


def test_phases_show_done_current_and_coming_steps():
    steps = steps_of(_run("build-cluster", "RUNNING", "build"))
    assert [(s.title, s.state) for s in steps] == [
        ("Plan", "done"), ("Approval", "done"), ("Build", "running"), ("Provisioning", "todo"), ("Ready", "todo"),
    ]


def test_a_failed_phase_and_a_wait_for_approval_are_told_apart():
    failed = steps_of(_run("build-cluster", "FAILED", "provisioning"))
    assert [s.state for s in failed][3:] == ["failed", "todo"]
    waiting = steps_of(_run("destroy-cluster", "PAUSED", "approval"))
    assert [(s.title, s.state) for s in waiting] == [
        ("Plan", "done"), ("Approval", "waiting"), ("Destroy", "todo"), ("Destroyed", "todo"),
    ]


def test_an_approved_plan_moves_the_steps_on_to_the_build():
    steps = steps_of(_run("build-cluster", "SCHEDULED", "approval", answer="approved"))
    assert [(s.title, s.state) for s in steps][1:3] == [("Approval", "done"), ("Build", "running")]


def test_a_completed_run_has_every_step_done():
    assert {s.state for s in steps_of(_run("build-cluster", "COMPLETED", "provisioning"))} == {"done"}


# --- probes -----------------------------------------------------------------------------

URLS = {
    "jupyterhub": "http://127.0.0.1:8795/sandbox/clusters/demo.sandbox.mchub.dev/jupyterhub",
    "freeipa": "http://127.0.0.1:8795/sandbox/clusters/demo.sandbox.mchub.dev/freeipa",
}


def _log(message: str, second: int) -> LogLine:
    return LogLine(message=message, timestamp=datetime(2026, 1, 1, 12, 0, second, tzinfo=UTC))


def test_each_service_shows_its_newest_answer():
    # The lines the probe task logs to the build run (tasks/probe.py), among others.
    logs = [
        _log(f"jupyterhub at {URLS['jupyterhub']}: HTTP 503 'jupyterhub of demo is booting: ready in 5 s'", 1),
        _log(f"freeipa at {URLS['freeipa']}: no answer (ConnectError: refused)", 2),
        _log("apply of demo.sandbox.mchub.dev: 12/12 created", 2),
        _log(f"jupyterhub is up at {URLS['jupyterhub']}: HTTP 200 'jupyterhub of demo is up'", 3),
    ]
    answers = {a.service: a for a in last_answers(URLS, logs)}
    assert answers["jupyterhub"].answer == "HTTP 200 'jupyterhub of demo is up'"
    assert answers["jupyterhub"].up
    assert answers["freeipa"].answer == "no answer (ConnectError: refused)"
    assert not answers["freeipa"].up


def test_a_service_not_probed_yet_says_so():
    answers = last_answers(URLS, [_log("terraform init done", 1)])
    assert [a.answer for a in answers] == ["not probed yet", "not probed yet"]
