"""People, projects and roles in real Chromium against the whole product (`mchub up`, with the
sandbox's identity provider and its demo accounts): two members of physics (alice, bob), a
member of chemistry (carol), physics's admin (pat) and a hub admin (ada).

What each sees and may do; that bob's attempts on alice's cluster are refused through the page,
a crafted URL and Prefect's API (a resume the flow refuses, the plan still waiting); that the
approver is recorded by name; that no page of another member holds the guest password;
signing in, out, and a session that expires; and signing in at a public address.
"""

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from mchub.access.people import person_from_claims
from mchub.access.signed import Mandate, answer_act, hub_key, sign
from mchub.orchestration import runs
from mchub.orchestration.identity import DEMO_ACCOUNTS
from mchub.orchestration.stack import Stack, child_env
from mchub.status import Status, cluster_status
from sandbox.launcher import SandboxCloud, free_port
from tests.conftest import launch_chromium
from tests.harness import LiveStack, acting_on, web_pages_alone
from tests.signing_in import sign_in, sign_out
from tests.test_ui_e2e import PUBLIC_KEY, STEP_TIMEOUT_MS, cluster_name, expect_in_audit_trail, fill, wait_for_status

pytestmark = pytest.mark.live

SCREENS = Path("/work/notes/screens")
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def product(mchub_up: LiveStack) -> Iterator[LiveStack]:
    """`mchub up` (shared with test_ui_e2e) on its sandbox emptied, booting in a second."""
    mchub_up.sandbox.reset()
    mchub_up.sandbox.set_knobs(boot_seconds=1)
    # This process acts on it with its parts' environment (Prefect's API and credential included).
    with acting_on(replace(mchub_up, parts=Stack(env=child_env(mchub_up.settings), log_dir=mchub_up.log_dir))):
        yield mchub_up


def person_of(subject: str, product: LiveStack):
    [account] = [account for account in DEMO_ACCOUNTS if account.subject == subject]
    return person_from_claims(account.claims(), product.settings)


def as_person(browser: Browser, product: LiveStack, who: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
    page.set_default_timeout(30_000)
    sign_in(page, product.ui_url, who)
    return page


def shoot(page: Page, role: str) -> None:
    if SCREENS.is_dir():
        page.screenshot(path=SCREENS / f"identity-{role}.png", full_page=True)


def paused_key(product: LiveStack, hostname: str) -> tuple[str, str]:
    """The id and the pause key of the run waiting for approval on `hostname`, once it waits."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    with product.client() as client:
        while time.monotonic() < deadline:
            found = runs.runs_of(hostname, client=client)
            if found and found[0].state_type == "PAUSED":
                run = client.read_flow_run(found[0].id)
                keyset = run.state.state_details.run_input_keyset
                if keyset and run.state.state_details.pause_key:
                    try:
                        client.read_flow_run_input(run.id, keyset["schema"])
                        return str(run.id), run.state.state_details.pause_key
                    except httpx.HTTPStatusError:
                        pass
            time.sleep(0.3)
    raise AssertionError(f"{hostname} never waited for approval")


def resume_through_prefect(product: LiveStack, run_id: str, person: str) -> None:
    answer = {"run_input": {"approve": True, "comment": "", "person": person}}
    response = httpx.post(f"{product.api_url}/flow_runs/{run_id}/resume", json=answer, auth=product.http_auth())
    assert response.status_code in (200, 201), response.text
    assert response.json()["status"] == "ACCEPT", response.json()


def test_members_and_admins_see_and_act_on_what_they_may(browser: Browser, product: LiveStack) -> None:
    # alice (physics) asks for a cluster; its plan waits for approval.
    alice = as_person(browser, product, "alice")
    # Her name where the pages say who is signed in (the list may name her too: the clusters
    # test_ui_e2e made as her on this product).
    expect(alice.get_by_role("strong").get_by_text("Alice Martin", exact=True)).to_be_visible()
    alice.goto(f"{product.ui_url}/create-cluster")
    expect(alice.get_by_role("textbox", name="Cluster name")).not_to_have_value("")
    expect(alice.get_by_role("combobox", name="Project")).to_have_value("physics")  # her one project
    hostname = f"{cluster_name(alice)}.sandbox.mchub.dev"
    fill(alice.get_by_role("textbox", name="SSH public keys, one per line"), PUBLIC_KEY)
    alice.get_by_role("button", name="Apply").click()
    alice.wait_for_url(re.compile(r"/cluster\?hostname="))
    expect(alice.get_by_role("button", name="OK")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(alice.get_by_text("Owner: Alice Martin <alice@example.org> · project physics")).to_be_visible()
    owner = (product.clusters_dir / hostname / "owner.json")
    assert owner.stat().st_mode & 0o777 == 0o600 and '"project": "physics"' in owner.read_text()

    # bob (physics too) does not see it, through the list, a crafted URL or the modify form.
    bob = as_person(browser, product, "bob")
    expect(bob.get_by_text("No clusters yet that you may see.")).to_be_visible()
    expect(bob.get_by_text(hostname)).to_have_count(0)
    for path in ("cluster", "modify-cluster"):
        bob.goto(f"{product.ui_url}/{path}?hostname={hostname}")
        expect(bob.get_by_text(re.compile(rf"There is no cluster named {re.escape(hostname)} that you may"))).to_be_visible()
        expect(bob.get_by_role("button", name="OK")).to_have_count(0)

    # Through Prefect's API: an unsigned answer, a forged one, and bob's own signed one are refused;
    # the plan goes on waiting.
    bob_person = person_of("bob", product)
    run_id, key = paused_key(product, hostname)
    forged = sign(Mandate(person=person_of("ada", product), hostname=hostname, act=answer_act(key)), b"not the hub's key" * 3)
    for refused in ("", forged, sign(Mandate(person=bob_person, hostname=hostname, act=answer_act(key)), hub_key(product.settings))):
        resume_through_prefect(product, run_id, refused)
        run_id, new_key = paused_key(product, hostname)
        assert new_key != key, "a refused answer must leave the plan waiting under a new key"
        key = new_key

    # alice approves on the page; the run records her by name.
    alice.reload()
    expect(alice.get_by_role("button", name="OK")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    alice.get_by_role("button", name="OK").click()
    expect(alice.get_by_role("dialog").get_by_text("Your cluster is ready")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    alice.keyboard.press("Escape")
    wait_for_status(alice, "provisioning_success")
    expect(alice.get_by_text("Plan approved by Alice Martin <alice@example.org>")).to_be_visible()
    expect(alice.get_by_text("is built and its services answer")).to_be_visible()
    expect(alice.get_by_text("Audit trail")).to_have_count(0)  # a member is no admin
    shoot(alice, "member-alice")
    # Once it is up, a run bob starts with his own signed person (what a forged page request
    # amounts to) is refused by the flow, and leaves the cluster's status as it was.
    refused_run = runs.wait(runs.submit_destroy(hostname, person=bob_person))
    assert cluster_status(runs.runs_of(hostname)) == Status.PROVISIONING_SUCCESS
    assert refused_run.state_type == "FAILED" and "Bob Chen may not destroy" in (refused_run.state_message or "")
    assert (product.clusters_dir / hostname).is_dir()
    password = json.loads((product.clusters_dir / hostname / "cluster.json").read_text())["guest_password"]
    assert len(password) >= 8

    # bob and carol: the list and the crafted URL show nothing of it, and never its password.
    carol = as_person(browser, product, "carol")
    for other in (bob, carol):
        other.goto(f"{product.ui_url}/")
        expect(other.get_by_text("No clusters yet that you may see.")).to_be_visible()
        other.goto(f"{product.ui_url}/cluster?hostname={hostname}")
        expect(other.get_by_text("that you may see")).to_be_visible()
        assert password not in other.content()
    shoot(bob, "member-bob")
    carol.goto(f"{product.ui_url}/create-cluster")
    expect(carol.get_by_role("textbox", name="Cluster name")).not_to_have_value("")
    shoot(carol, "member-carol")
    for other in (bob, carol):
        other.context.close()  # an open page keeps re-reading its cluster: CPU the rest needs

    # pat (physics's admin) and ada (hub admin) see it, its owner and project, and its audit trail.
    for admin, role in ((as_person(browser, product, "pat"), "project-admin-pat"), (as_person(browser, product, "ada"), "hub-admin-ada")):
        admin.goto(f"{product.ui_url}/")
        expect(admin.get_by_text(hostname, exact=True)).to_be_visible()
        expect(admin.get_by_text("Alice Martin").first).to_be_visible()
        admin.goto(f"{product.ui_url}/cluster?hostname={hostname}")
        wait_for_status(admin, "provisioning_success")
        # The audit trail: Prefect's events, which reach its database within seconds of the action.
        expect_in_audit_trail(admin, "approved by Alice Martin <alice@example.org>")
        expect(admin.get_by_text("Guest usernames")).to_be_visible()
        admin.wait_for_timeout(1000)  # the code blocks draw last
        shoot(admin, role)
        admin.context.close()

    # The modify form never holds the current password: an empty field keeps it.
    alice.goto(f"{product.ui_url}/modify-cluster?hostname={hostname}")
    expect(alice.get_by_role("textbox", name="Guest password")).to_have_value("")
    assert password not in alice.content()


def test_sign_in_out_and_an_expired_session(browser: Browser, sandbox_cloud: SandboxCloud, tmp_path: Path) -> None:
    with web_pages_alone(tmp_path, sandbox_cloud, session_seconds=6) as pages:
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        sign_in(page, pages.ui_url, "carol")
        expect(page.get_by_text("Carol Diaz")).to_be_visible()
        sign_out(page)
        expect(page.get_by_text("Carol Diaz")).to_have_count(0)
        sign_in(page, pages.ui_url, "carol")
        time.sleep(7)
        page.reload()
        expect(page.get_by_text("Your session has expired: sign in again.")).to_be_visible()
        expect(page.get_by_text("Carol Diaz")).to_have_count(0)
        shoot(page, "session-expired")


def test_behind_a_public_name_people_sign_in_there(browser: Browser, sandbox_cloud: SandboxCloud, tmp_path: Path) -> None:
    """MCHUB_PUBLIC_URL as a reverse proxy that keeps the Host header gives it: the browser
    resolves the public name to the pages' own address."""
    port = free_port()
    public = f"http://hub.test:{port}"
    with web_pages_alone(tmp_path, sandbox_cloud, ui_port=port, public_url=public):
        mapped = launch_chromium(browser.browser_type, "--host-resolver-rules=MAP hub.test 127.0.0.1")
        try:
            page = mapped.new_context().new_page()
            page.set_default_timeout(30_000)
            sign_in(page, public, "carol")
            expect(page.get_by_text("Carol Diaz")).to_be_visible()
            assert page.url.startswith(f"{public}/")  # the sign-in came back to the public address
        finally:
            mapped.close()
