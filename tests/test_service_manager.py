"""`mchub up` under a service manager or in a terminal: its status lines reach a pipe while it
runs, and Ctrl-C (SIGINT) or SIGTERM leaves no process of it behind after 5 s, also with pages
open in a browser and a run in flight. And `mchub create`/`destroy` refuse `--approve` with
`--no-wait`, which would otherwise approve nothing.

The live tests start the product the way the README does, on free ports and a temporary home.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.test_ui_e2e import _free_port, chromium_path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "cluster.yaml"
HOSTNAME = "demo-castle.sandbox.mchub.dev"  # the example spec's
START_SECONDS = 180
STOP_SECONDS = 5.0


@dataclass
class Up:
    """A running `mchub up`, its environment, and every line it has printed so far."""

    process: subprocess.Popen
    env: dict[str, str]
    home: Path
    lines: "queue.Queue[str]"

    def wait_for_line(self, start: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        printed = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            printed.append(line)
            if line.startswith(start):
                return line
        pytest.fail(f"`mchub up` printed no line starting {start!r} in {timeout:g} s:\n{''.join(printed)}")

    def mchub(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mchub.cli", *words], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )

    def wait_for_status(self, status: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            shown = self.mchub("status", HOSTNAME).stdout
            if shown.startswith(f"{HOSTNAME}: {status}"):
                return
            time.sleep(1)
        pytest.fail(f"{HOSTNAME} never reached {status}; last: {shown}")


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[[], Up]]:
    """Start `mchub up` with its stdout to a pipe, as a service manager or `| tee` does, in a
    process group of its own, as a terminal's foreground job is; whatever is left is killed."""
    started: list[subprocess.Popen] = []

    def start() -> Up:
        home = tmp_path / "home"
        (home / "clusters").mkdir(parents=True)
        env = {
            **os.environ,
            "MCHUB_HOME": str(home),
            "MCHUB_CLUSTERS_DIR": str(home / "clusters"),
            "MCHUB_CLOUDS_YAML": str(home / "clouds.yaml"),
            "MCHUB_SANDBOX_PORT": str(_free_port()),
            # The cluster's services answer only after this: its run stays in provisioning.
            "MCHUB_SANDBOX_BOOT_SECONDS": "600",
            "MCHUB_PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api",
            "MCHUB_UI_PORT": str(_free_port()),
        }
        env.pop("PYTHONUNBUFFERED", None)  # a service manager does not set it
        process = subprocess.Popen(
            [sys.executable, "-m", "mchub.cli", "up"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        started.append(process)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        return Up(process, env, home, lines)

    yield start
    for process in started:
        for pid in _descendants(process.pid):
            _kill(pid)
        _kill(process.pid)
        process.wait()


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


def stop_and_time(up: Up, send: Callable[[], None]) -> float:
    """Send the stop, and wait until `mchub up` and every process it started have ended: the seconds."""
    processes = _descendants(up.process.pid)
    processes[up.process.pid] = _stat(up.process.pid)[19]
    sent = time.monotonic()
    send()
    while time.monotonic() - sent < STOP_SECONDS + 5:
        up.process.poll()  # reaps `mchub up` itself
        left = {pid: started for pid, started in processes.items() if _alive(pid, started)}
        if not left:
            took = time.monotonic() - sent
            print(f"everything stopped {took:.2f} s after the signal")
            return took
        time.sleep(0.05)
    pytest.fail("still running 10 s after the stop: " + "; ".join(_command(pid) for pid in left))


@pytest.mark.live
def test_status_lines_reach_a_pipe_while_it_runs_and_sigterm_stops_everything(start_up: Callable[[], Up]) -> None:
    up = start_up()
    up.wait_for_line("MC Hub is up", START_SECONDS)
    assert up.process.poll() is None, "the line came only when `mchub up` ended"

    took = stop_and_time(up, lambda: up.process.send_signal(signal.SIGTERM))

    assert took < STOP_SECONDS, f"everything stopped only {took:.1f} s after SIGTERM"
    assert up.process.returncode == 0
    up.wait_for_line("stopping", 1)


@pytest.mark.live
def test_ctrl_c_stops_everything_within_5_s_with_pages_open_and_a_run_in_flight(start_up: Callable[[], Up]) -> None:
    up = start_up()
    up.wait_for_line("MC Hub is up", START_SECONDS)
    assert up.mchub("create", str(SPEC), "--no-wait").returncode == 0
    up.wait_for_status("awaiting_approval")
    assert up.mchub("approve", HOSTNAME).returncode == 0
    up.wait_for_status("provisioning_running")  # a run's engine probes the cluster, for 600 s
    pages = f"http://localhost:{up.env['MCHUB_UI_PORT']}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--headless", "--disable-background-networking"]
        )
        form = browser.new_page()
        form.goto(f"{pages}/create-cluster")
        expect(form.get_by_role("heading", name="Create a cluster")).to_be_visible(timeout=60_000)
        cluster = browser.new_page()
        cluster.goto(f"{pages}/cluster?hostname={HOSTNAME}")
        expect(cluster.get_by_role("heading", name=HOSTNAME, exact=True)).to_be_visible(timeout=60_000)

        # A terminal's Ctrl-C: SIGINT to the foreground process group.
        took = stop_and_time(up, lambda: os.killpg(up.process.pid, signal.SIGINT))
        browser.close()

    assert took < STOP_SECONDS, f"everything stopped only {took:.1f} s after Ctrl-C"
    assert up.process.returncode == 0
    sandbox_log = (up.home / "logs" / "sandbox-cloud.log").read_text()
    assert "Traceback" not in sandbox_log and "interrupted" not in sandbox_log, sandbox_log


@pytest.mark.parametrize(
    "words", [["create", str(SPEC)], ["destroy", HOSTNAME]], ids=["create", "destroy"]
)
def test_approve_with_no_wait_is_refused_before_anything_is_submitted(words: list[str], tmp_path: Path) -> None:
    # No Prefect server at this address: a command that submitted anything would fail otherwise.
    env = {
        **os.environ,
        "MCHUB_HOME": str(tmp_path),
        "MCHUB_CLUSTERS_DIR": str(tmp_path / "clusters"),
        "MCHUB_PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api",
    }
    done = subprocess.run(
        [sys.executable, "-m", "mchub.cli", *words, "--approve", "--no-wait"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    message = done.stderr.splitlines()[-1]
    assert message.startswith(f"mchub {words[0]}: error: --approve and --no-wait cannot be used together")
    assert "Leave out --no-wait" in message and "mchub approve" in message
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "clusters").exists()
