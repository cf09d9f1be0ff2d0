"""Attacks on MC Hub's Prefect side and its pages (issue 13: findings 1, 4 and 5), each tried as
another user of the machine, or a web page open in the operator's browser, would try it:
against the session's real Prefect server, worker and sandbox cloud, real Streamlit and
headless Chromium. Each failed on 9ab0153; the docstring says what the attack gets now.

Screenshots of the dashboard's login and of a failing page go to build/screenshots/security/.
"""

import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from playwright.sync_api import Browser
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Cancelled, Scheduled

from mchub.access.people import operator
from mchub.access.signed import signed
from mchub.cluster import lifecycle
from mchub.orchestration import prefect_auth, runs
from mchub.orchestration.stack import ROOT, web_pages
from mchub.settings import Settings
from mchub.status import BUILD_FLOW, DESTROY_FLOW, HOSTNAME_LABEL, Status, cluster_status, cluster_tag
from sandbox.launcher import free_port
from tests.harness import LiveStack
from tests.test_flows import build, cluster_spec, destroy, ended, expire, logs_with, paused, servers_of

SHOTS = ROOT / "build" / "screenshots" / "security"
EVIL_ORIGIN = "http://evil.example"
DAY = 86400.0


def hostname() -> str:
    return f"s{uuid4().hex[:8]}.sandbox.mchub.dev"


def mchub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mchub.cli", *args], cwd=ROOT, env=env if env is not None else os.environ,
        capture_output=True, text=True, timeout=120,
    )


def deployment_id(stack: LiveStack, flow: str) -> UUID:
    with stack.client() as client:
        return client.read_deployment_by_name(f"{flow}/{flow}").id


def runs_tagged(stack: LiveStack, tag: str) -> list[Any]:
    with stack.client() as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


# --- finding 1: Prefect's API answered anyone -------------------------------------------


def test_the_api_refuses_a_caller_without_the_credential(live_stack: LiveStack) -> None:
    """Reading a deployment, and starting a run of it, without the credential: 401 / refused,
    and no run is created. The health check alone answers (as service managers need)."""
    api, build_cluster = live_stack.api_url, deployment_id(live_stack, BUILD_FLOW)
    assert httpx.get(f"{api}/deployments/{build_cluster}", timeout=10).status_code == 401

    tag = f"attack-{uuid4().hex[:8]}"
    started = httpx.post(
        f"{api}/deployments/{build_cluster}/create_flow_run",
        json={"parameters": {"request_file": "/nonexistent.yaml", "hostname": hostname(), "new": True}, "tags": [tag]},
        timeout=10,
    )
    assert started.status_code in (401, 403), started.text
    assert runs_tagged(live_stack, tag) == []
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200


def test_the_api_and_the_command_line_refuse_a_wrong_credential(live_stack: LiveStack) -> None:
    """A made-up secret: 401; `mchub` given one says so and where the right one is, no traceback."""
    wrong = f"not-the-secret-{uuid4().hex}"
    answer = httpx.get(
        f"{live_stack.api_url}/deployments/{deployment_id(live_stack, BUILD_FLOW)}",
        headers={"Authorization": prefect_auth.basic_authorization(wrong)},
        timeout=10,
    )
    assert answer.status_code == 401

    listed = mchub("list", env={**os.environ, "MCHUB_PREFECT_AUTH_STRING": wrong})
    assert listed.returncode == 1, listed.stdout
    assert "refused MC Hub's credential (HTTP 401)" in listed.stderr
    assert "MCHUB_PREFECT_AUTH_STRING" in listed.stderr and "Traceback" not in listed.stderr


def test_the_command_line_finds_the_credential_in_a_plain_shell(live_stack: LiveStack) -> None:
    """`mchub list` run by the operator in a shell that has none of Prefect's settings (only
    MC Hub's, as `mchub up` had) reads the credential from MCHUB_HOME by itself."""
    plain = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    listed = mchub("list", "--all", env=plain)
    assert listed.returncode == 0, listed.stderr


def test_the_generated_credential_is_readable_by_its_owner_only(live_stack: LiveStack) -> None:
    path = live_stack.settings.home / prefect_auth.AUTH_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert prefect_auth.auth_string(live_stack.settings) == path.read_text().strip()


def test_a_web_page_of_another_origin_gets_no_cors_answer(live_stack: LiveStack) -> None:
    """A page on http://evil.example calling the API (even one that knew the credential) gets
    no access-control-allow-origin, so the browser keeps the answer from it; the dashboard's
    own origin is answered."""
    api = live_stack.api_url
    path = f"{api}/deployments/{deployment_id(live_stack, BUILD_FLOW)}/create_flow_run"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}

    preflight = httpx.options(path, headers={"Origin": EVIL_ORIGIN, **ask}, timeout=10)
    assert "access-control-allow-origin" not in preflight.headers, preflight.headers
    read = httpx.get(f"{api}/health", headers={"Origin": EVIL_ORIGIN}, timeout=10)
    assert "access-control-allow-origin" not in read.headers, read.headers

    own = api.removesuffix("/api")
    assert httpx.options(path, headers={"Origin": own, **ask}, timeout=10).headers["access-control-allow-origin"] == own


def test_a_write_without_a_csrf_token_is_refused_even_with_the_credential(live_stack: LiveStack) -> None:
    """CSRF protection is on: a POST with the credential but no CSRF token is refused (403);
    with a token fetched from the API, as Prefect's clients and dashboard do, it is answered."""
    api = live_stack.api_url
    secret = prefect_auth.auth_string(live_stack.settings)
    assert secret is not None, "Prefect's API has no credential at all"
    bare = httpx.post(
        f"{api}/flow_runs/filter", json={"limit": 1},
        headers={"Authorization": prefect_auth.basic_authorization(secret)}, timeout=10,
    )
    assert bare.status_code == 403 and "CSRF" in bare.text, bare.text
    assert httpx.post(f"{api}/flow_runs/filter", json={"limit": 1}, auth=live_stack.http_auth(), timeout=10).is_success


def test_prefects_server_does_not_start_without_authentication(tmp_path: Path) -> None:
    """`python -m mchub.orchestration.prefect_server` started by hand without the credential refuses to serve."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    try:
        started = subprocess.run(
            [sys.executable, "-m", "mchub.orchestration.prefect_server", "--port", str(free_port())],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=45,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("Prefect's server started, and served, without authentication")
    assert started.returncode == 2
    assert "PREFECT_SERVER_API_AUTH_STRING is unset" in started.stderr and "mchub up" in started.stderr


def test_prefects_dashboard_asks_for_the_credential(
    live_stack: LiveStack, browser: Browser, shots: Path
) -> None:
    """The dashboard opens on a login form; a wrong secret is refused; the one in
    MCHUB_HOME/prefect-auth shows MC Hub's deployments."""
    secret = prefect_auth.auth_string(live_stack.settings)
    assert secret is not None, "Prefect's API has no credential at all"
    context = browser.new_context(viewport={"width": 1300, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(live_stack.api_url.removesuffix("/api"))
        password = page.locator("input[type=password]")
        password.wait_for()
        page.screenshot(path=shots / "prefect-dashboard-login.png")
        password.fill(f"not-the-secret-{uuid4().hex}")
        password.press("Enter")
        page.get_by_text(re.compile("Invalid credentials|Authentication failed")).first.wait_for()
        password.fill(secret)
        password.press("Enter")
        page.get_by_role("link", name="Deployments").click()
        page.get_by_text(BUILD_FLOW).first.wait_for()
        page.screenshot(path=shots / "prefect-dashboard-signed-in.png")
    finally:
        context.close()


# --- finding 1: a run's job variables chose the command the worker ran --------------------


def evil_module(folder: Path, witness: Path, flow_name: str) -> Path:
    """A flow file that, once imported, writes `witness`: what an attacker's code would run."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{flow_name}.py"
    path.write_text(
        "from pathlib import Path\nfrom prefect import flow\n"
        f"Path({str(witness)!r}).write_text('ran')\n"
        f"@flow\ndef {flow_name}(**kwargs):\n    pass\n"
    )
    return path


ATTACKS = {
    "command": lambda tmp, witness: {"command": f"sh -c 'id > {witness}'"},
    "env": lambda tmp, witness: {
        "env": {"PREFECT__FLOW_ENTRYPOINT": f"{evil_module(tmp, witness, 'evil')}:evil"}
    },
    "working_dir": lambda tmp, witness: {
        "working_dir": str(evil_module(tmp / "flows", witness, "build").parent.parent)
    },
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_run_cannot_choose_what_the_worker_runs(live_stack: LiveStack, tmp_path: Path, attack: str) -> None:
    """A run of build-cluster created through the API with its own command, environment
    (another flow entrypoint) or working folder: refused by the server (a job variable the
    pool does not have) or by the worker (the run crashes, naming its job variables); the
    attacker's code never runs."""
    witness = tmp_path / "witness"
    job_variables = ATTACKS[attack](tmp_path / "attacker", witness)
    host = hostname()
    with live_stack.client() as client:
        try:
            run = client.create_flow_run_from_deployment(
                deployment_id(live_stack, BUILD_FLOW),
                parameters={"request_file": "/nonexistent.yaml", "hostname": host, "new": True},
                tags=[cluster_tag(host)],
                job_variables=job_variables,
            )
        except httpx.HTTPStatusError as refused:
            assert refused.response.status_code == 422, refused.response.text
            assert not witness.exists()
            return
        try:
            deadline = time.monotonic() + 90
            while not (view := runs.read_run(run.id, client=client)).final and not witness.exists():
                assert time.monotonic() < deadline, f"{view.describe()} neither ran nor was refused"
                time.sleep(0.3)
            time.sleep(1)  # a process that had started would have written by now
            assert not witness.exists(), f"the {attack} of the run's job variables ran: {witness.read_text()}"
            assert view.state_type == "CRASHED", view.describe()
            assert "job variables of its own" in (view.state_message or ""), view.state_message
        finally:
            client.delete_flow_run(run.id)


# --- finding 1: destroy-cluster with auto_approve from anyone ------------------------------


def test_an_auto_approved_destroy_of_a_cluster_that_has_not_expired_waits_for_a_person(
    live_stack: LiveStack,
) -> None:
    """destroy-cluster started through the API with auto_approve on a cluster that expires
    next week: without a person signed by the hub it is refused outright; with one, its plan
    waits for approval (the log says why). Nothing is destroyed, and a rejection leaves the
    cluster as it was."""
    expires = date.today() + timedelta(days=7)
    spec = cluster_spec(expiration_date=expires.isoformat())
    host = spec.hostname
    assert build(spec).state_type == "COMPLETED"
    built = servers_of(live_stack, host)
    try:
        def auto_approved_destroy(**person: str) -> UUID:
            with live_stack.client() as client:
                return client.create_flow_run_from_deployment(
                    deployment_id(live_stack, DESTROY_FLOW),
                    parameters={"hostname": host, "auto_approve": True, **person},
                    tags=[cluster_tag(host)],
                    labels={HOSTNAME_LABEL: host},
                ).id

        refused = ended(auto_approved_destroy())
        assert refused.state_type == "FAILED" and "no person signed by the hub" in (refused.state_message or "")
        assert cluster_status(runs.runs_of(host)) == Status.PROVISIONING_SUCCESS
        run_id = auto_approved_destroy(person=signed(operator(), host, "destroy"))
        paused(run_id)
        assert cluster_status(runs.runs_of(host)) == Status.AWAITING_APPROVAL
        assert servers_of(live_stack, host) == built
        assert f"auto_approve refused: it expires on {expires}, not past yet" in logs_with(run_id, "auto_approve refused")

        runs.reject(host, comment="nobody asked for this")
        assert ended(run_id).state_type == "CANCELLED"
        assert cluster_status(runs.runs_of(host)) == Status.PROVISIONING_SUCCESS
        assert servers_of(live_stack, host) == built
        assert (live_stack.clusters_dir / host).is_dir()

        # Expired, but its owner was never reminded: still a person's decision.
        expire(host, live_stack.clusters_dir)
        with live_stack.client() as client:
            unwarned = client.create_flow_run_from_deployment(
                deployment_id(live_stack, DESTROY_FLOW),
                parameters={"hostname": host, "auto_approve": True, "person": signed(operator(), host, "destroy")},
                tags=[cluster_tag(host)],
                labels={HOSTNAME_LABEL: host},
            )
        paused(unwarned.id)
        assert "auto_approve refused: its last expiry reminder has not gone out" in logs_with(
            unwarned.id, "auto_approve refused"
        )
        runs.reject(host)
        ended(unwarned.id)
        assert servers_of(live_stack, host) == built
    finally:
        assert destroy(host).state_type == "COMPLETED"


# --- finding 4: Streamlit from another folder ---------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The local addresses on which something listens on TCP `port` (from /proc/net)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # /proc shows each 4-byte group in host (little-endian) order.
                packed = b"".join(raw[i:i + 4][::-1] for i in range(0, width // 2, 4))
                found.add(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, packed))
    return found


def test_the_pages_listen_on_loopback_and_show_no_traceback_from_any_folder(
    tmp_path: Path, browser: Browser, shots: Path
) -> None:
    """The web pages started as `mchub up` starts them, but from a folder without
    .streamlit/config.toml: they listen on 127.0.0.1 only, and a page that fails shows a
    generic message, never the exception or its traceback (the log keeps it)."""
    failing = tmp_path / "failing_page.py"
    failing.write_text(
        "import streamlit as st\nst.title('A page that fails')\n"
        "raise RuntimeError('detail-for-the-log-only /etc/secret-path')\n"
    )
    port = free_port()
    service = web_pages(Settings(home=tmp_path / "home", ui_port=port))
    argv = list(service.argv)
    argv[argv.index("run") + 1] = str(failing)
    # HOME too: no ~/.streamlit/config.toml of whoever runs the tests.
    env = {**os.environ, "HOME": str(tmp_path)}
    with open(tmp_path / "streamlit.log", "wb") as log:
        process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    context = browser.new_context()
    try:
        deadline = time.monotonic() + 60
        while not service.ready(datetime.now(UTC)):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "streamlit.log").read_text()
            time.sleep(0.3)
        assert listening_addresses(port) == {"127.0.0.1"}

        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("A page that fails").wait_for(timeout=60_000)
        page.locator("[data-testid=stException]").wait_for(timeout=60_000)
        shown = page.inner_text("body")
        page.screenshot(path=shots / "failing-page.png")
        assert "error" in shown
        for secret in ("detail-for-the-log-only", "secret-path", "RuntimeError", "Traceback", str(failing)):
            assert secret not in shown, shown
    finally:
        context.close()
        process.terminate()
        process.wait(timeout=30)
    assert "detail-for-the-log-only" in (tmp_path / "streamlit.log").read_text()


# --- finding 5: the request (and its password) of a run that never ran ---------------------


def test_the_request_of_a_run_cancelled_before_it_started_is_removed(live_stack: LiveStack) -> None:
    """`mchub reconcile` (run by `mchub up`, and hourly by the cull) removes the request of a
    run cancelled while scheduled, and one no run names; it keeps the request of a run still
    waiting to start, and a request just written (its run may be being created)."""
    specs = {role: cluster_spec() for role in ("cancelled", "waiting", "no-run", "just-written")}
    requests = {role: lifecycle.new_cluster_request(spec) for role, spec in specs.items()}
    made: list[UUID] = []
    try:
        with live_stack.client() as client:
            for role in ("cancelled", "waiting"):
                spec = specs[role]
                run = client.create_flow_run_from_deployment(
                    deployment_id(live_stack, BUILD_FLOW),
                    parameters={"request_file": str(requests[role].resolve()), "hostname": spec.hostname, "new": True},
                    state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1)),
                    tags=[cluster_tag(spec.hostname)],
                    labels={HOSTNAME_LABEL: spec.hostname},
                )
                made.append(run.id)
            client.set_flow_run_state(made[0], Cancelled(message="cancelled before it started"), force=True)
        yesterday = time.time() - DAY
        for role in ("cancelled", "waiting", "no-run"):
            os.utime(requests[role], (yesterday, yesterday))

        reconciled = mchub("reconcile", "--worker", f"not-this-machine-{uuid4().hex[:6]}")
        assert reconciled.returncode == 0, reconciled.stderr
        assert {role: path.exists() for role, path in requests.items()} == {
            "cancelled": False, "waiting": True, "no-run": False, "just-written": True,
        }
    finally:
        with live_stack.client() as client:
            for run_id in made:
                client.delete_flow_run(run_id)
        for path in requests.values():
            lifecycle.discard_request(path)
