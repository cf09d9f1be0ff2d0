"""Run one command as a child process in a process group of its own, reading it line by line.

Stopping (cancel or timeout) sends SIGINT to the whole group, as Ctrl-C in a terminal
would: Terraform then stops its providers and provisioners, writes its state and exits.
Only if the group is still alive after a grace period is it sent SIGKILL. (Killing
Terraform first, as `subprocess.run(timeout=...)` does, can lose the state of resources
being created.)

The command never outlives this process: it runs under mchub/terraform/guard.py, which leads
its group and, should this process end without waiting for it (killed with SIGKILL, as a
flow run's engine is when its launcher or worker dies), stops it the same way, SIGINT then
SIGKILL after the grace period, and writes what it printed meanwhile to the log.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal, TextIO

from pydantic import BaseModel

from mchub.terraform.logs import LOG_MODULE

StopReason = Literal["cancelled", "timeout"]

_POLL_SECONDS = 0.1
GUARD = Path(__file__).with_name("guard.py")


class ProcessOutcome(BaseModel):
    exit_code: int
    stopped: StopReason | None
    """Why MC Hub stopped the command, None when it ran to its end."""
    killed: bool
    """The command ignored SIGINT for the grace period and was killed."""
    stderr: str
    duration_seconds: float


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_stdout: Callable[[str], None],
    on_stderr: Callable[[str], None],
    should_stop: Callable[[], bool],
    timeout: float,
    grace_period: float,
    log: TextIO | None = None,
    log_stdout: bool = True,
) -> ProcessOutcome:
    """Run argv, handing each output line (without its newline) to on_stdout/on_stderr as it
    arrives. `should_stop` is polled while it runs; True stops the command (as "cancelled").
    `log` is where the command's output goes (stdout only if `log_stdout`) should this
    process die before it: the caller's own log of the command, open for writing."""
    started = time.monotonic()
    process = subprocess.Popen(
        guard_argv(argv, grace_period, log, log_stdout),
        cwd=cwd,
        env=dict(env),
        # The guard's lifeline: this end stays open, unwritten, for as long as this process lives.
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        pass_fds=(log.fileno(),) if log is not None else (),
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    stopper = _Stopper(process, grace_period)
    stderr_lines: list[str] = []

    def read_stderr(stream: IO[bytes]) -> None:
        for line in _lines(stream):
            stderr_lines.append(line)
            on_stderr(line)

    stderr_reader = threading.Thread(target=read_stderr, args=(process.stderr,), daemon=True)
    watchdog = threading.Thread(
        target=stopper.watch, args=(should_stop, started + timeout), daemon=True
    )
    stderr_reader.start()
    watchdog.start()
    try:
        for line in _lines(process.stdout):
            on_stdout(line)
        process.wait()
    except BaseException:
        # The caller is going away (an exception in on_stdout, KeyboardInterrupt): stop the
        # command now rather than leave it to the guard once this whole process has gone.
        stopper.stop("cancelled")
        raise
    finally:
        stopper.finished.set()
        watchdog.join()
        stderr_reader.join()
        process.stdout.close()
        process.stderr.close()
        process.stdin.close()
    return ProcessOutcome(
        exit_code=process.returncode,
        stopped=stopper.reason,
        killed=stopper.killed,
        stderr="\n".join(stderr_lines),
        duration_seconds=time.monotonic() - started,
    )


def guard_argv(argv: Sequence[str], grace_period: float, log: TextIO | None, log_stdout: bool) -> list[str]:
    """`argv` run under the guard (-I -S: a Python that starts in milliseconds)."""
    log_fd = log.fileno() if log is not None else -1
    settings = [str(grace_period), str(log_fd), LOG_MODULE, "1" if log_stdout else "0"]
    return [sys.executable, "-I", "-S", str(GUARD), *settings, "--", *argv]


def _lines(stream: IO[bytes]) -> Iterator[str]:
    for raw in iter(stream.readline, b""):
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


class _Stopper:
    """Stops the process group once: SIGINT, then SIGKILL after the grace period."""

    def __init__(self, process: subprocess.Popen[bytes], grace_period: float) -> None:
        self.process = process
        self.grace_period = grace_period
        self.finished = threading.Event()
        self.reason: StopReason | None = None
        self.killed = False
        self._lock = threading.Lock()

    def watch(self, should_stop: Callable[[], bool], deadline: float) -> None:
        while not self.finished.wait(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            if self.process.poll() is not None:
                return
            if should_stop():
                self.stop("cancelled")
                return
            if time.monotonic() >= deadline:
                self.stop("timeout")
                return

    def stop(self, reason: StopReason) -> None:
        with self._lock:
            if self.reason is not None or self.process.poll() is not None:
                return
            self.reason = reason
            self._signal(signal.SIGINT)
            try:
                self.process.wait(self.grace_period)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.killed = True
                self.process.wait()

    def _signal(self, signum: signal.Signals) -> None:
        try:
            # The group id is the leader's pid (start_new_session), the guard's: this reaches
            # the command and the providers and provisioner commands it started too. The
            # guard itself ignores SIGINT and goes on passing their output.
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # the whole group has already exited
