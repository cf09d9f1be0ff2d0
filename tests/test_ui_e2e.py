"""The web pages end to end, in a real headless Chromium, against the product started the
way the README starts it (`mchub up`: sandbox cloud, Prefect server, deployments, worker,
Streamlit), on free ports and a temporary home.

A person's journey: open /create-cluster, fill the form, Apply, read the plan, OK, watch
build_running → provisioning_running → provisioning_success and the success dialog; then
modify the node count and destroy the cluster. Also two forms refused on the page: one over
quota, one with a bad SSH key. Each step's screenshot goes to `build/screenshots/e2e/` (the
folder is printed); the README shows one of them.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from sandbox.launcher import admin_client

pytestmark = pytest.mark.live  # starts the whole product with `mchub up`

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots" / "e2e"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH instructor@laptop"
# Seconds the sandbox cluster's services take to answer, counted from its first server: long
# enough that provisioning_running (and a probe told 503) is seen even on a busy machine.
BOOT_SECONDS = 15
STEP_TIMEOUT_MS = 90_000


@dataclass
class Product:
    url: str
    sandbox_url: str
    home: Path

    def sandbox_admin(self) -> httpx.Client:
        """A client of the sandbox's admin API (`mchub up` keeps the sandbox's data in home/sandbox)."""
        return admin_client(self.sandbox_url, self.home / "sandbox")

    def knobs(self, **knobs: object) -> None:
        with self.sandbox_admin() as admin:
            admin.put("/knobs", json=knobs).raise_for_status()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str | None:
    """Debian's chromium if installed (Playwright's own download is not always possible),
    else None: Playwright's browser (`python -m playwright install chromium`)."""
    return os.environ.get("MCHUB_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    home = tmp_path_factory.mktemp("e2e-home")
    ui_port = _free_port()
    sandbox_port = _free_port()
    env = {
        **os.environ,
        "MCHUB_HOME": str(home),
        "MCHUB_CLUSTERS_DIR": str(home / "clusters"),
        "MCHUB_CLOUDS_YAML": str(home / "clouds.yaml"),
        "MCHUB_SANDBOX_PORT": str(sandbox_port),
        "MCHUB_SANDBOX_BOOT_SECONDS": str(BOOT_SECONDS),
        "MCHUB_PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api",
        "MCHUB_UI_PORT": str(ui_port),
        "MCHUB_UI_REFRESH_SECONDS": "0.5",
    }
    (home / "clusters").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "mchub.cli", "up"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        printed = []
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line)
            if line.startswith("MC Hub is up"):
                break
        else:
            pytest.fail("mchub up did not start:\n" + "".join(printed))
        yield Product(url=f"http://localhost:{ui_port}", sandbox_url=f"http://127.0.0.1:{sandbox_port}", home=home)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--headless", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    print(f"screenshots: {SHOTS}")
    return SHOTS


def snap(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png", full_page=True)


def open_form(page: Page, product: Product) -> None:
    page.goto(f"{product.url}/create-cluster")
    expect(page.get_by_role("heading", name="Create a cluster")).to_be_visible()
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


def wait_for_status(page: Page, status: str) -> None:
    """Wait until the cluster page's status chip says `status` (in words, after its icon's name)."""
    chip = page.locator(".st-key-cluster-status")
    expect(chip).to_have_text(re.compile(rf"(^|\s){re.escape(status.replace('_', ' '))}$"), timeout=STEP_TIMEOUT_MS)


def test_create_watch_modify_and_destroy_a_cluster(page: Page, product: Product, shots: Path) -> None:
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

    # Slow the cloud down so that the build lasts long enough to be watched.
    product.knobs(latency_seconds=0.4)
    page.get_by_role("button", name="OK").click()
    wait_for_status(page, "build_running")
    expect(page.get_by_role("button", name="OK")).to_have_count(0)  # the answered plan is gone
    snap(page, shots, "03-build-running")
    product.knobs(latency_seconds=0)
    wait_for_status(page, "provisioning_running")
    # Each probe's last answer: the sandbox's services say 503 until the machines have booted.
    expect(page.get_by_text(re.compile(r"freeipa http://\S+/freeipa: HTTP 503"))).to_be_visible()
    snap(page, shots, "04-provisioning-running")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Your cluster is ready")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(dialog.get_by_text("JupyterHub", exact=True)).to_be_visible()
    expect(dialog.get_by_text("FreeIPA", exact=True)).to_be_visible()
    expect(dialog.get_by_text("user[01-10]")).to_be_visible()
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
    page.goto(f"{product.url}/cluster?hostname={hostname}")
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
    with product.sandbox_admin() as admin:
        usage = admin.get("/usage").json()
    assert hostname not in usage["clusters"]
    assert not any(usage["in_use"].values()), f"the sandbox still holds {usage['in_use']}"


def test_an_over_quota_request_is_refused_on_the_page(page: Page, product: Product, shots: Path) -> None:
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
    assert not list((product.home / "clusters").glob(f"{cluster_name(page)}*"))


def test_a_bad_ssh_key_is_refused_beside_the_field(page: Page, product: Product, shots: Path) -> None:
    open_form(page, product)
    fill(page.get_by_role("textbox", name="SSH public keys, one per line"), "-----BEGIN OPENSSH PRIVATE KEY-----")
    expect(page.get_by_text(re.compile(r"this is a PRIVATE key; paste the .pub file instead")).first).to_be_visible()
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Nothing was submitted")).to_be_visible()
    snap(page, shots, "12-bad-ssh-key")
    assert not list((product.home / "clusters").glob(f"{cluster_name(page)}*"))
