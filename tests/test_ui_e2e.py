"""The web pages end to end, in a real headless Chromium, against the product started the
way the README starts it (`mchub up`: sandbox cloud, Prefect server, deployments, worker,
Streamlit), on free ports and a temporary home.

A person's journey: open /create-cluster, fill the form, Apply, read the plan, OK, watch
build_running → provisioning_running → provisioning_success and the success dialog; then
modify the node count, see what the cluster is made of and its runs' logs, destroy it,
and read its logs from the list once it is gone. Also two forms refused on the page: one over
quota, one with a bad SSH key; a build cancelled halfway; the expiry reminders and Extend. Each step's screenshot goes to `build/screenshots/e2e/` (the
folder is printed); the README shows one of them.
"""

import re
import shutil
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Locator, Page, expect

from mchub.spec.model import default_spec_data
from tests.harness import LiveStack
from tests.signing_in import sign_in
from tests.test_lifecycle import HELD_IN_BUILD_SECONDS

pytestmark = pytest.mark.live  # on the whole product, `mchub up` (conftest.py, mchub_up)

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots" / "e2e"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH instructor@laptop"
STEP_TIMEOUT_MS = 90_000
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@pytest.fixture(scope="module")
def product(mchub_up: LiveStack) -> LiveStack:
    """`mchub up` (shared with test_identity) on its sandbox emptied, its clusters' services
    answering as soon as their servers exist."""
    mchub_up.sandbox.reset()
    mchub_up.sandbox.set_knobs(boot_seconds=0)
    return mchub_up


@pytest.fixture(autouse=True)
def knobs_let_go(product: LiveStack) -> Iterator[None]:
    """Whatever a test held in the sandbox (a build, a boot), the next starts on one that
    answers at once."""
    yield
    product.sandbox.set_knobs(build_seconds=0, boot_seconds=0)


@pytest.fixture(scope="module")
def shots() -> Path:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    print(f"screenshots: {SHOTS}")
    return SHOTS


def snap(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png", full_page=True)


def open_form(page: Page, product: LiveStack) -> None:
    """The create form, signed in as alice (a member of physics)."""
    sign_in(page, product.ui_url, "alice")
    page.goto(f"{product.ui_url}/create-cluster")
    # The first page a fresh product draws takes a while on a busy machine.
    expect(page.get_by_role("heading", name="Create a cluster")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Quotas", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Cluster name")).not_to_have_value("")  # a pet name


def fill(field: Locator, text: str) -> None:
    """Type into a Streamlit text field and commit it (Streamlit reads it on blur)."""
    field.fill(text)
    field.press("Tab")


def set_count(page: Page, row: int, count: int) -> None:
    """Set the count of the form's instance row `row` (0: mgmt, 1: login, 2: node): Streamlit
    marks each widget's container with its key, which ends in row-<row>-count."""
    fill(page.locator(f"[class*='-row-{row}-count'] input"), str(count))


def cluster_name(page: Page) -> str:
    return page.get_by_role("textbox", name="Cluster name").input_value()


def expect_in_audit_trail(page: Page, entry: str) -> None:
    """Open the cluster page's audit trail (shown to admins) until it holds `entry`: Prefect
    stores an event within seconds of the action."""
    shown = page.locator(".st-key-audit-trail").get_by_text(entry)
    for _ in range(30):
        page.get_by_text("Audit trail").click()
        if shown.is_visible() or (time.sleep(1) or shown.is_visible()):
            break
        page.reload()
    expect(shown).to_be_visible()


def wait_for_status(page: Page, status: str) -> None:
    """Wait until the cluster page's status chip says `status` (in words, after its icon's name)."""
    chip = page.locator(".st-key-cluster-status")
    expect(chip).to_have_text(re.compile(rf"(^|\s){re.escape(status.replace('_', ' '))}$"), timeout=STEP_TIMEOUT_MS)


def test_create_watch_modify_and_destroy_a_cluster(page: Page, product: LiveStack, shots: Path) -> None:
    open_form(page, product)
    hostname = f"{cluster_name(page)}.sandbox.mchub.dev"
    fill(page.get_by_role("textbox", name="SSH public keys, one per line"), PUBLIC_KEY)
    expect(page.get_by_text("give at least one SSH public key")).to_have_count(0)
    snap(page, shots, "01-form")

    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"/cluster\?hostname="))
    expect(page.get_by_role("heading", name=hostname, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="OK")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    wait_for_status(page, "awaiting_approval")
    plan = page.get_by_text(re.compile(r"\+\d+ instances? "))
    expect(plan.first).to_be_visible()
    snap(page, shots, "02-plan")

    # The servers stay in BUILD, then booting, until let go: each step lasts long enough to be
    # watched, however busy the machine.
    product.sandbox.set_knobs(build_seconds=HELD_IN_BUILD_SECONDS, boot_seconds=HELD_IN_BUILD_SECONDS)
    page.get_by_role("button", name="OK").click()
    wait_for_status(page, "build_running")
    expect(page.get_by_role("button", name="OK")).to_have_count(0)  # the answered plan is gone
    snap(page, shots, "03-build-running")
    product.sandbox.set_knobs(build_seconds=0)
    wait_for_status(page, "provisioning_running")
    # Each probe's last answer: the sandbox's services say 503 until the machines have booted.
    expect(page.get_by_text(re.compile(r"freeipa http://\S+/freeipa: HTTP 503"))).to_be_visible()
    snap(page, shots, "04-provisioning-running")
    product.sandbox.set_knobs(boot_seconds=0)
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Your cluster is ready")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(dialog.get_by_text("JupyterHub", exact=True)).to_be_visible()
    expect(dialog.get_by_text("FreeIPA", exact=True)).to_be_visible()
    expect(dialog.get_by_text("user[01-10]")).to_be_visible()
    # Mokey, where the guests set their password: a link that answers; and who FreeIPA's admin is.
    mokey = dialog.get_by_role("link", name=re.compile(r"clusters.\S+.mokey$"))
    expect(mokey).to_be_visible()
    assert httpx.get(str(mokey.get_attribute("href"))).status_code == 200
    dialog.get_by_text("FreeIPA's administrator: admin").click()
    expect(dialog.get_by_text("profile::freeipa::server::admin_password")).to_be_visible()
    snap(page, shots, "05-success-dialog")
    page.keyboard.press("Escape")
    wait_for_status(page, "provisioning_success")

    page.get_by_role("link", name="Clusters", exact=True).click()
    # The cluster page (its heading names the cluster too) stays until the list replaces it.
    expect(page.get_by_role("heading", name="Clusters", exact=True)).to_be_visible()
    listed = page.get_by_text(hostname, exact=True)
    expect(listed).to_be_visible()
    expect(page.get_by_text(re.compile(r"provisioning success$")).first).to_be_visible()
    snap(page, shots, "06-clusters-list")
    page.goto(f"{product.ui_url}/cluster?hostname={hostname}")
    wait_for_status(page, "provisioning_success")

    page.get_by_role("link", name="Modify").click()
    page.wait_for_url(re.compile(r"/modify-cluster\?hostname="))
    expect(page.get_by_role("textbox", name="Cluster name")).to_be_disabled()
    expect(page.get_by_role("textbox", name="Cluster name")).to_have_value(hostname.split(".")[0])
    set_count(page, 2, 2)
    expect(page.get_by_text("4 of 20", exact=True)).to_be_visible()  # the instances bar counts the new node
    snap(page, shots, "07-modify-form")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"/cluster\?hostname="))
    expect(page.get_by_role("button", name="OK")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"\+1 instance node2")).first).to_be_visible()
    snap(page, shots, "08-modify-plan")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("dialog").get_by_text("Your cluster is ready")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    page.keyboard.press("Escape")
    wait_for_status(page, "provisioning_success")
    # What it is made of now, from Terraform's state: the new node among the rest.
    page.get_by_text("What the cluster is made of").click()
    made_of = page.locator(".st-key-made-of")
    for row in ("node2", "p2-3gb", "mgmt1", "p4-6gb", "nfs-home"):
        expect(made_of).to_contain_text(row)
    expect(made_of).to_contain_text(re.compile(r"login1\s*p2-3gb\s*login, public, proxy\s*100\.\d+\.\d+\.\d+"))
    made_of.scroll_into_view_if_needed()
    snap(page, shots, "08b-made-of")
    # The modification's own log: who approved it, and the probes' answers.
    page.locator("summary").filter(has_text="Runs").click()
    run_log = page.locator(".st-key-run-log")
    expect(run_log).to_contain_text("approved by Alice Martin <alice@example.org>")
    expect(run_log).to_contain_text(re.compile(r"jupyterhub is up at http\S+: HTTP 200"))
    run_log.scroll_into_view_if_needed()
    snap(page, shots, "08c-run-log")

    page.get_by_role("button", name="Destroy").click()
    confirm = page.get_by_label(f"Type {hostname} to destroy it")
    expect(confirm).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"-\d+ instances? ")).first).to_be_visible()
    destroy = page.get_by_role("button", name="Destroy").last
    expect(destroy).to_be_disabled()
    fill(confirm, hostname)
    expect(destroy).to_be_enabled()
    snap(page, shots, "09-destroy-plan")
    destroy.click()
    wait_for_status(page, "destroyed")
    snap(page, shots, "10-destroyed")
    # Gone, its logs stay readable from the list: they are kept in its archived folder.
    page.get_by_role("link", name="Clusters", exact=True).click()
    page.get_by_text("Show destroyed clusters").click()
    page.get_by_role("link", name=hostname, exact=True).click()
    wait_for_status(page, "destroyed")
    page.locator("summary").filter(has_text="Terraform logs").click()
    destroyed = re.compile(r"Apply complete! Resources: 0 added, 0 changed, \d+ destroyed")
    expect(page.locator(".st-key-terraform-log")).to_contain_text(destroyed)
    snap(page, shots, "10b-destroyed-logs")
    usage = product.sandbox.admin().get("/usage").json()
    assert hostname not in usage["clusters"]
    assert not any(usage["in_use"].values()), f"the sandbox still holds {usage['in_use']}"


def test_an_over_quota_request_is_refused_on_the_page(page: Page, product: LiveStack, shots: Path) -> None:
    open_form(page, product)
    fill(page.get_by_role("textbox", name="SSH public keys, one per line"), PUBLIC_KEY)
    set_count(page, 2, 40)
    # How many are free depends on what the test before left in the quota cache (20 s).
    shortfall = re.compile(r"instances: the cluster needs 42, the project has \d+ free")
    expect(page.locator(".shortfall").filter(has_text=shortfall)).to_be_visible()  # under the red bar
    expect(page.get_by_text(shortfall).last).to_be_visible()  # and beside the form
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Nothing was submitted")).to_be_visible()
    snap(page, shots, "11-over-quota")
    assert page.url.endswith("/create-cluster")
    assert not list(product.clusters_dir.glob(f"{cluster_name(page)}*"))


def test_a_bad_ssh_key_is_refused_beside_the_field(page: Page, product: LiveStack, shots: Path) -> None:
    open_form(page, product)
    fill(page.get_by_role("textbox", name="SSH public keys, one per line"), "-----BEGIN OPENSSH PRIVATE KEY-----")
    expect(page.get_by_text(re.compile(r"this is a PRIVATE key; paste the .pub file instead")).first).to_be_visible()
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Nothing was submitted")).to_be_visible()
    snap(page, shots, "12-bad-ssh-key")
    assert not list(product.clusters_dir.glob(f"{cluster_name(page)}*"))


def test_cancel_stops_a_build_and_the_page_says_what_is_left_in_the_cloud(
    page: Page, product: LiveStack, shots: Path
) -> None:
    open_form(page, product)
    fill(page.get_by_role("textbox", name="SSH public keys, one per line"), PUBLIC_KEY)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"/cluster\?hostname="))
    expect(page.get_by_role("button", name="OK")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    product.sandbox.set_knobs(build_seconds=HELD_IN_BUILD_SECONDS)  # the apply waits: cancelled halfway
    page.get_by_role("button", name="OK").click()
    wait_for_status(page, "build_running")
    expect(page.get_by_text(re.compile(r"\b[1-9]\d*/\d+ resources")).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel").click()
    wait_for_status(page, "cancelled")
    cancelled = page.locator(".st-key-cancelled")
    expect(cancelled).to_contain_text("was cancelled by Alice Martin <alice@example.org> during its build")
    expect(cancelled).to_contain_text(re.compile(r"left in the cloud \(from Terraform's state\): (volume|instance)"))
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)  # nothing acts on it any more
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    snap(page, shots, "13-cancelled")
    # Try again plans the cluster's spec again, and the plan waits for an answer as any other.
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("button", name="OK")).to_be_visible(timeout=STEP_TIMEOUT_MS)


def test_the_page_shows_the_reminders_sent_and_extend_moves_the_date(
    page: Page, product: LiveStack, shots: Path, tmp_path: Path
) -> None:
    tomorrow = date.today() + timedelta(days=1)
    spec = {**default_spec_data(domain="sandbox.mchub.dev"), "public_keys": [PUBLIC_KEY],
            "volumes": {"nfs": {"home": {"size": 10}}}, "expiration_date": tomorrow.isoformat()}
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    hostname = f"{spec['cluster_name']}.sandbox.mchub.dev"
    created = product.mchub("create", str(spec_file), "--approve", timeout=300)
    assert created.returncode == 0, created.stderr
    # It expires in a day and a half: the cull sends the 7-day reminder (the 1-day one is not due).
    with httpx.Client(base_url=product.api_url, auth=product.http_auth()) as api:
        deployment = api.get("/deployments/name/cull-expired-clusters/cull-expired-clusters").json()["id"]
        cull = api.post(f"/deployments/{deployment}/create_flow_run", json={}).json()["id"]
        deadline = time.monotonic() + 120
        while (state := api.get(f"/flow_runs/{cull}").json()["state"]["type"]) not in FINAL and time.monotonic() < deadline:
            time.sleep(0.5)
        assert state == "COMPLETED"

    # Made with the CLI, the cluster is the operator's: the hub's admin sees it.
    sign_in(page, product.ui_url, "ada")
    page.goto(f"{product.ui_url}/cluster?hostname={hostname}")
    wait_for_status(page, "provisioning_success")
    expiry = page.locator(".st-key-expiry")
    expect(expiry).to_contain_text(f"Expires at the end of {tomorrow.isoformat()} (UTC)")
    expect(expiry).to_contain_text(re.compile(r"Reminder 7 days before: sent \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(expiry).to_contain_text("Reminder 1 day before: due")
    expiry.scroll_into_view_if_needed()
    snap(page, shots, "14-expiry-reminder-sent")

    proposed = tomorrow + timedelta(days=14)  # MCHUB_CLUSTER_LIFETIME_DAYS further
    expiry.get_by_role("button", name="Extend").click()
    expect(expiry).to_contain_text(f"Expires at the end of {proposed.isoformat()} (UTC)", timeout=STEP_TIMEOUT_MS)
    expect(expiry).not_to_contain_text("sent")  # a new date starts the reminders over
    expect(expiry.locator("input").first).to_have_value((proposed + timedelta(days=14)).isoformat())
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)  # no run was started
    snap(page, shots, "15-extended")
    expect_in_audit_trail(page, f"modified by Ada Lovelace <ada@example.org>: expiration date moved to {proposed}")
    shown = product.mchub("status", hostname)
    assert "provisioning_success" in shown.stdout
