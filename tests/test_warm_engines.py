"""The warm engines that start every flow run (mchub.orchestration.warm_engines and
mchub/orchestration/engine_launcher.py), driven as Prefect's worker drives them: a launcher process per run, its environment,
folder, streams and signals. The fork runs tests/warm_engine_probe.py instead of Prefect's
engine; the platform's tests run real flows through the same code."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mchub.orchestration import private_socket, warm_engines
from mchub.orchestration.stack import ROOT
from mchub.settings import Settings

TESTS = Path(__file__).parent
PROBE = "warm_engine_probe"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("warm") / "engines.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "mchub.orchestration.warm_engines", str(path), PROBE, "json"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])},
    )
    deadline = time.monotonic() + 30
    while not path.is_socket():
        assert server.poll() is None, f"the warm engines exited with code {server.returncode}"
        assert time.monotonic() < deadline, "the warm engines did not listen within 30 s"
        time.sleep(0.05)
    yield path
    server.terminate()
    server.wait(timeout=10)
    assert not path.exists(), "the warm engines left their socket behind"


def launch(socket_file: Path, report: Path, **variables: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PROBE_REPORT": str(report), **variables}
    env["PYTHONPATH"] = str(TESTS)  # only the fallback, a new Python, needs it
    return subprocess.Popen(
        warm_engines.launcher_argv(socket_file, PROBE),
        cwd=report.parent, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def reported(report: Path, key: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if report.exists():
            for line in report.read_text().splitlines():
                if line.startswith(f"{key}=") or line == key:
                    return line.partition("=")[2]
        time.sleep(0.05)
    raise AssertionError(f"{report} never said {key}")


def gone(pid: int, timeout: float = 10.0) -> bool:
    """The process has ended (a zombie waiting for its parent counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_the_fork_runs_with_the_launchers_environment_folder_and_streams(engines: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    launcher = launch(engines, report, PROBE_VALUE="flow run ünïcode")
    out, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, err
    assert out == "to stdout\n" and err == "to stderr\n"
    assert reported(report, "cwd") == str(tmp_path)
    assert reported(report, "value") == "flow run ünïcode"
    assert int(reported(report, "pid")) != launcher.pid, "it ran in the launcher, not in a warm fork"
    # What the warm engines imported is left out of the fork's garbage collections: 16 % less
    # CPU for each run's engine (measured with bench.latency's builds).
    assert int(reported(report, "frozen")) > 0


@pytest.mark.parametrize("code", [1, 3])
def test_the_launcher_exits_with_the_engines_exit_code(engines: Path, tmp_path: Path, code: int) -> None:
    launcher = launch(engines, tmp_path / "report", PROBE_EXIT=str(code))
    launcher.communicate(timeout=30)
    assert launcher.returncode == code


def test_a_sigterm_to_the_launcher_reaches_the_engine_and_its_children(engines: Path, tmp_path: Path) -> None:
    """How the worker cancels a run: SIGTERM to its process, which must reach Terraform too."""
    report = tmp_path / "report"
    launcher = launch(engines, report, PROBE_WAIT="1")
    reported(report, "ready")
    child = int(reported(report, "child"))
    launcher.send_signal(signal.SIGTERM)
    launcher.communicate(timeout=30)
    assert launcher.returncode == 143
    assert reported(report, "signal") == str(int(signal.SIGTERM))
    assert gone(child), "the engine's child did not get the SIGTERM"


def test_a_killed_launcher_takes_the_engine_and_its_children_with_it(engines: Path, tmp_path: Path) -> None:
    """A worker dying with its runs: nothing of the run may go on without its launcher."""
    report = tmp_path / "report"
    launcher = launch(engines, report, PROBE_WAIT="1")
    reported(report, "ready")
    engine, child = int(reported(report, "pid")), int(reported(report, "child"))
    launcher.kill()
    launcher.communicate(timeout=30)
    assert gone(engine) and gone(child)
    assert "signal" not in report.read_text(), "the engine was told; it should have been killed"


@pytest.mark.parametrize("fallback", [False, True], ids=["warm", "new-engine"])
def test_a_killed_launcher_lets_an_unbroken_step_end_before_the_engine_dies(
    engines: Path, tmp_path: Path, fallback: bool
) -> None:
    """A worker stopped while a run suspends: the run saves the form of its answer first."""
    report = tmp_path / "report"
    launcher = launch(tmp_path / "nobody.sock" if fallback else engines, report, PROBE_STEP_SECONDS="1.5")
    reported(report, "step started", timeout=60)
    engine = int(reported(report, "pid"))
    launcher.kill()
    assert gone(engine, timeout=15)
    # Killed at once, the engine would never have written it.
    assert "step ended" in report.read_text().splitlines(), "the engine was killed in the middle of its step"
    launcher.communicate(timeout=30)


def test_a_probe_that_sends_nothing_leaves_the_engines_serving(engines: Path, tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
        probe.connect(str(engines))
    launcher = launch(engines, tmp_path / "report")
    launcher.communicate(timeout=30)
    assert launcher.returncode == 0


def test_only_their_user_can_reach_the_engines(engines: Path) -> None:
    assert engines.stat().st_mode & 0o777 == 0o600


def test_without_the_warm_engines_the_launcher_starts_a_new_engine(tmp_path: Path) -> None:
    report = tmp_path / "report"
    launcher = launch(tmp_path / "nobody.sock", report, PROBE_EXIT="4")
    _, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 4
    assert "do not answer" in err and "starting a new engine process" in err
    # Its child, in a process group of its own as a warm fork is.
    engine = int(reported(report, "pid"))
    assert int(reported(report, "parent")) == launcher.pid
    assert int(reported(report, "group")) == engine


def test_a_socket_path_too_long_for_unix_names_the_setting_to_change(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ("h" * 120))
    with pytest.raises(private_socket.SocketPathError, match="MCHUB_HOME"):
        private_socket.check_socket_path(warm_engines.socket_path(settings))
