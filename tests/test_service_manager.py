"""`mchub up` under a service manager or in a terminal: its status lines reach a pipe while it
runs, and Ctrl-C (SIGINT) or SIGTERM leaves no process of it behind after 5 s, also with pages
open in a browser and a run in flight. And `mchub create`/`destroy` refuse `--approve` with
`--no-wait`, which would otherwise approve nothing.

The live tests take the product started the way the README does, on free ports and a temporary
home (tests/harness.py, `whole_product`): a new one for SIGTERM; for Ctrl-C, the one that the
browser tests before it shared (conftest.py, `mchub_up`).
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from mchub.orchestration import runs
from mchub.status import Status, cluster_status
from sandbox.launcher import free_port
from tests.harness import LiveStack, whole_product
from tests.reliability_helpers import mchub, settings_from
from tests.signing_in import sign_in

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "cluster.yaml"
HOSTNAME = "demo-castle.sandbox.mchub.dev"  # the example spec's
START_SECONDS = 180
STOP_SECONDS = 5.0


def wait_for_status(up: LiveStack, status: Status) -> None:
    """Read from Prefect's API in this process: a `mchub status` a second would cost a second of CPU each."""
    deadline = time.monotonic() + START_SECONDS
    with up.client() as client:
        while (shown := cluster_status(runs.runs_of(HOSTNAME, client=client))) != status:
            if time.monotonic() > deadline:
                pytest.fail(f"{HOSTNAME} never reached {status}; last: {shown}")
            time.sleep(0.5)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[LiveStack]:
    """`mchub up` (tests/harness.py: stdout a pipe, as a service manager or `| tee` gives it, in
    a process group of its own, as a terminal's foreground job is) once it has said it is up;
    whatever of it is left after the test is killed."""
    with whole_product(tmp_path / "home") as started:
        try:
            yield started
        finally:
            kill_what_is_left(started)


@pytest.fixture
def shared_up(mchub_up: LiveStack) -> Iterator[LiveStack]:
    """The product that the browser tests before used (conftest.py, mchub_up), for the test
    that stops it: its sandbox emptied and its clusters' services never answering, so that a
    run stays in provisioning; whatever of it is left after the test is killed."""
    mchub_up.sandbox.reset()
    mchub_up.sandbox.set_knobs(boot_seconds=600)
    yield mchub_up
    kill_what_is_left(mchub_up)


def kill_what_is_left(up: LiveStack) -> None:
    """Kill `mchub up` and every process it started, if it still runs."""
    assert up.up is not None
    if up.up.poll() is None:
        for pid in _descendants(up.up.pid):
            _kill(pid)
        _kill(up.up.pid)
        up.up.wait()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state, parent, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _descendants(root: int) -> dict[int, str]:
    """Every process started by `root` or by one of those: pid → start time (pids are reused)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if fields := _stat(pid):
                found[pid] = fields[19]
                todo.append(pid)
    return found


def _alive(pid: int, started: str) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"  # a zombie has ended


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def stop_and_time(up: "subprocess.Popen[str]", send: Callable[[], None]) -> float:
    """Send the stop, and wait until `mchub up` and every process it started have ended: the seconds."""
    processes = _descendants(up.pid)
    processes[up.pid] = _stat(up.pid)[19]
    sent = time.monotonic()
    send()
    while time.monotonic() - sent < STOP_SECONDS + 5:
        up.poll()  # reaps `mchub up` itself, when it has ended
        left = {pid: started for pid, started in processes.items() if _alive(pid, started)}
        if not left:
            took = time.monotonic() - sent
            print(f"everything stopped {took:.2f} s after the signal")
            # It may have ended after the poll above (a zombie counts as ended): reap it now.
            up.wait(timeout=5)
            return took
        time.sleep(0.05)
    pytest.fail("still running 10 s after the stop: " + "; ".join(_command(pid) for pid in left))


@pytest.mark.live
def test_status_lines_reach_a_pipe_while_it_runs_and_sigterm_stops_everything(up: LiveStack) -> None:
    assert up.up is not None
    assert up.up.poll() is None, "the line came only when `mchub up` ended"

    took = stop_and_time(up.up, lambda: up.up.send_signal(signal.SIGTERM))

    assert took < STOP_SECONDS, f"everything stopped only {took:.1f} s after SIGTERM"
    assert up.up.returncode == 0
    up.wait_for_line("stopping", 1)


def test_ctrl_c_stops_everything_within_5_s_with_pages_open_and_a_run_in_flight(
    shared_up: LiveStack, browser: Browser
) -> None:
    up = shared_up
    assert up.up is not None
    assert up.mchub("create", str(SPEC), "--no-wait").returncode == 0
    wait_for_status(up, Status.AWAITING_APPROVAL)
    assert up.mchub("approve", HOSTNAME).returncode == 0
    wait_for_status(up, Status.PROVISIONING_RUNNING)  # a run's engine probes the cluster, for 600 s
    form = browser.new_page()
    sign_in(form, up.ui_url, "ada")
    form.goto(f"{up.ui_url}/create-cluster")
    expect(form.get_by_role("heading", name="Create a cluster")).to_be_visible(timeout=60_000)
    cluster = browser.new_page()
    sign_in(cluster, up.ui_url, "ada")
    cluster.goto(f"{up.ui_url}/cluster?hostname={HOSTNAME}")
    expect(cluster.get_by_role("heading", name=HOSTNAME, exact=True)).to_be_visible(timeout=60_000)

    # A terminal's Ctrl-C: SIGINT to the foreground process group.
    took = stop_and_time(up.up, lambda: os.killpg(up.up.pid, signal.SIGINT))

    assert took < STOP_SECONDS, f"everything stopped only {took:.1f} s after Ctrl-C"
    assert up.up.returncode == 0
    sandbox_log = (up.log_dir / "sandbox-cloud.log").read_text()
    assert "Traceback" not in sandbox_log and "interrupted" not in sandbox_log, sandbox_log


@pytest.mark.parametrize(
    "words", [["create", str(SPEC)], ["destroy", HOSTNAME]], ids=["create", "destroy"]
)
def test_approve_with_no_wait_is_refused_before_anything_is_submitted(
    words: list[str], tmp_path: Path
) -> None:
    # No Prefect server at this address: a command that submitted anything would fail otherwise.
    env = {
        "MCHUB_HOME": str(tmp_path),
        "MCHUB_CLUSTERS_DIR": str(tmp_path / "clusters"),
        "MCHUB_PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
    }
    with settings_from(env):
        done = mchub(*words, "--approve", "--no-wait")
    assert done.code == 2, done.err
    message = done.err.splitlines()[-1]
    assert message.startswith(f"mchub {words[0]}: error: --approve and --no-wait cannot be used together")
    assert "Leave out --no-wait" in message and "mchub approve" in message
    assert "Traceback" not in done.err
    assert not (tmp_path / "clusters").exists()