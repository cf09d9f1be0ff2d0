"""Drift detection on the session's live stack: real Terraform plans a cluster's applied spec
against the sandbox cloud after one of its servers was deleted through the cloud's API (as
a person does in Horizon); the cluster shows drifted with the plan's summary on the CLI, its
page and the list; Repair plans the server back, and approving it brings the cluster back up.
The screenshot of the drifted cluster's page goes to build/screenshots/drift/.
"""

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from mchub.cluster.drift import DRIFT_FILE, last_check_of
from mchub.cluster.workspace import open_existing
from mchub.orchestration import runs
from mchub.orchestration.stack import page_parts
from mchub.status import Status, cluster_status
from tests.harness import LiveStack
from tests.signing_in import sign_in
from tests.test_flows import build, cluster_spec, ended, paused, servers_of, submit_build, with_nodes
from tests.test_ui_pages import button, page, texts

pytestmark = pytest.mark.live

SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots" / "drift"


def run_drift_check(stack: LiveStack) -> str:
    """Run the detect-drift deployment as its schedule does; its final message."""
    with stack.client() as client:
        deployment = client.read_deployment_by_name("detect-drift/detect-drift")
        run_id = client.create_flow_run_from_deployment(deployment.id).id
    checked = ended(run_id, timeout=300)
    assert checked.state_type == "COMPLETED", checked.state_message
    return checked.state_message or ""


def drifted_in(message: str) -> list[str]:
    """The hostnames a drift check's final message names as drifted."""
    count, _, rest = message.partition(" drifted")
    return rest.removeprefix(" (").partition(")")[0].split(", ") if count != "0" else []


def status_of(hostname: str) -> Status:
    return cluster_status(runs.runs_of(hostname), last_check_of(hostname))


def folder_files(stack: LiveStack, hostname: str) -> dict[str, bytes]:
    """What the drift check must leave as it was: configuration, specs, plans, state."""
    root = open_existing(stack.clusters_dir, hostname).root
    return {
        path.name: path.read_bytes()
        for path in root.iterdir()
        if path.is_file() and path.name != DRIFT_FILE and not path.name.startswith(".")
    }


def delete_server(stack: LiveStack, hostname: str, name: str) -> None:
    with stack.sandbox.connect() as conn:
        [server] = [s for s in conn.compute.servers() if s.metadata.get("cluster") == hostname and s.name == name]
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)


def test_a_server_deleted_behind_terraforms_back_shows_drifted_and_repair_builds_it_again(
    live_stack: LiveStack, browser: Browser
) -> None:
    spec = cluster_spec()
    hostname = spec.hostname
    assert build(spec).state_type == "COMPLETED"
    node = f"{spec.cluster_name}-node1"
    assert node in servers_of(live_stack, hostname)
    before = folder_files(live_stack, hostname)

    delete_server(live_stack, hostname, node)
    message = run_drift_check(live_stack)
    # Clusters of earlier tests whose servers a sandbox reset removed may be counted too.
    assert hostname in drifted_in(message), message

    assert status_of(hostname) == Status.DRIFTED
    check = last_check_of(hostname)
    assert check is not None and check.summary.lines() == ["-/+ replace instance node1"]
    assert folder_files(live_stack, hostname) == before  # planned, never applied nor kept
    assert runs.statuses()[hostname] == Status.DRIFTED  # the list's
    shown = live_stack.mchub("status", hostname)
    assert f"{hostname}: drifted" in shown.stdout and "-/+ replace instance node1" in shown.stdout, shown.stdout

    cluster_page = page("cluster.py", hostname=hostname)
    assert "drifted" in texts(cluster_page)
    assert "The cloud no longer matches this cluster" in texts(cluster_page)
    assert "instance node1" in texts(cluster_page)
    listed = page("clusters.py")
    assert "replace instance node1" in texts(listed)  # the caption escapes - and +
    _screenshot(live_stack, browser, hostname)

    button(cluster_page, "Repair")().run()
    [repair] = [run for run in runs.runs_of(hostname) if run.busy]
    paused(repair.id)
    plan = runs.plan_markdown(runs.read_run(repair.id)) or ""
    assert "-/+ replace instance node1" in plan, plan
    assert status_of(hostname) == Status.AWAITING_APPROVAL
    runs.approve(hostname)
    assert ended(repair.id, timeout=300).state_type == "COMPLETED"
    assert status_of(hostname) == Status.PROVISIONING_SUCCESS
    assert node in servers_of(live_stack, hostname)

    # The repaired cluster matches again: the next check leaves it up.
    run_drift_check(live_stack)
    assert status_of(hostname) == Status.PROVISIONING_SUCCESS


def _screenshot(stack: LiveStack, browser: Browser, hostname: str) -> None:
    """The drifted cluster's page in headless Chromium, seen by the hub's admin, with the pages
    and the sandbox's identity provider started on this stack."""
    parts = page_parts(stack.settings)
    for part in parts:
        stack.parts.start(part)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        tab = context.new_page()
        sign_in(tab, stack.ui_url, "ada")
        tab.goto(f"{stack.ui_url}/cluster?hostname={hostname}")
        expect(tab.locator(".st-key-cluster-status")).to_contain_text("drifted", timeout=90_000)
        expect(tab.locator(".st-key-drift")).to_contain_text("instance node1", timeout=30_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=SHOTS / "drifted.png", full_page=True)
        tab.goto(f"{stack.ui_url}/")
        # Other tests' clusters may have drifted too: this one's summary is the line alone.
        expect(tab.get_by_text("-/+ replace instance node1", exact=True).first).to_be_visible(timeout=60_000)
        tab.screenshot(path=SHOTS / "drifted-list.png", full_page=True)
        context.close()
    finally:
        for part in reversed(parts):
            stack.stop_part(part.name)


def test_a_cluster_without_drift_and_one_waiting_for_approval_stay_as_they_are(live_stack: LiveStack) -> None:
    matching, changing = cluster_spec(), cluster_spec()
    assert build(matching).state_type == "COMPLETED"
    assert build(changing).state_type == "COMPLETED"
    waiting = paused(submit_build(with_nodes(changing, 2), new=False))
    before = folder_files(live_stack, changing.hostname)

    run_drift_check(live_stack)
    check = last_check_of(matching.hostname)
    assert check is not None and not check.drifted
    assert status_of(matching.hostname) == Status.PROVISIONING_SUCCESS
    # A change waiting for approval: not planned from, its proposal and configuration untouched.
    assert last_check_of(changing.hostname) is None
    assert folder_files(live_stack, changing.hostname) == before
    assert status_of(changing.hostname) == Status.AWAITING_APPROVAL
    runs.reject(changing.hostname)
    ended(waiting.id)
