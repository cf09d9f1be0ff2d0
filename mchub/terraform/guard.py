"""Run a command so that it never outlives the process that started it (its runner).

    python -I -S guard.py GRACE LOG_FD LOG_MODULE LOG_STDOUT -- COMMAND [ARG ...]

mchub.terraform.process starts Terraform through this guard, in a session of its own so that
the run's own signals never reach Terraform unasked. Were Terraform the runner's direct
child, a runner killed outright (a SIGKILLed flow-run engine, launcher or worker) would
leave it creating cloud resources nobody records, until its next line of output met the
closed pipe and killed it mid-write, state file truncated. The guard stands between them:

- its standard input is a pipe of which only the runner holds the other end: end of file
  there means the runner is gone;
- it passes the command's output on to the runner; once nobody reads it, the rest goes to
  the runner's log (LOG_FD, an open file it inherited; -1 for none), stdout only when
  LOG_STDOUT is 1 (stdout can hold secrets), in the log's own format (module LOG_MODULE);
- when the runner is gone it interrupts the command as Ctrl-C does (SIGINT to the process
  group: Terraform saves its state, provisioners undo what they half made), and kills the
  group if it is still there GRACE seconds later;
- it ignores SIGINT itself, so that the runner's own SIGINT to the group (cancel, timeout)
  reaches the command while the guard goes on passing its output, and exits with the
  command's exit code (128 + N when a signal N ended it);
- on Linux it adopts what the command leaves behind (a child subreaper): once the command
  has ended, those processes are interrupted (SIGINT) and waited for (an interrupted
  provisioner still deleting what it half made), and killed after GRACE seconds, so that
  when the guard ends, the run's processes have ended.

Standard library only, run with -I -S: it starts in a few milliseconds.
"""

import os
import signal
import sys
import threading
import time

USAGE = "usage: guard.py GRACE LOG_FD LOG_MODULE LOG_STDOUT -- COMMAND [ARG ...]"
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


class Guard:
    """One command, run and watched over."""

    def __init__(self, grace: float, log_fd: int, log_module: str, log_stdout: bool) -> None:
        self.grace = grace
        self.log_fd = log_fd
        self.log_module = log_module
        self.log_stdout = log_stdout
        self.orphaned = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def run(self, command: list[str]) -> int:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = os.posix_spawnp(
                command[0],
                command,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
                # Python ignores SIGPIPE; a command expects the default, as from a shell.
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        except OSError as error:
            print(f"process guard: cannot run {command[0]}: {error.strerror}", file=sys.stderr, flush=True)
            return 127  # what a shell returns for a missing command
        finally:
            for fd in (null, out_w, err_w):
                os.close(fd)
        relays = [
            threading.Thread(target=self._relay, args=(out_r, 1), daemon=True),
            threading.Thread(target=self._relay, args=(err_r, 2), daemon=True),
        ]
        for relay in relays:
            relay.start()
        threading.Thread(target=self._watch_lifeline, daemon=True).start()
        _, status = os.waitpid(pid, 0)
        self.finished.set()
        for relay in relays:
            # Output still held open by a grandchild that outlived the command is not waited for.
            relay.join(timeout=5)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        self._stop_leftovers()
        if self.orphaned.is_set():
            self._log_record("mchub_exit", f"exit code {code}, with nobody left to report it to", exit_code=code)
        return code

    def _stop_leftovers(self) -> None:
        """Interrupt what the command left running (adopted), wait for it, kill it after the
        grace period. A provisioner started as the command was interrupted can have missed
        the interrupt."""
        deadline = None
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # none left
            if pid:
                continue
            if deadline is None:
                _signal_group(signal.SIGINT)
                deadline = time.monotonic() + self.grace
            elif time.monotonic() >= deadline:
                for leftover in _adopted():
                    try:
                        os.kill(leftover, signal.SIGKILL)
                    except ProcessLookupError:
                        pass  # ended meanwhile
            time.sleep(0.05)

    def _watch_lifeline(self) -> None:
        try:
            while os.read(0, 4096):
                pass  # the runner never writes: only the end of the file means anything
        except OSError:
            pass  # an unusable stdin says the same: nobody is there
        self._runner_gone("the process that ran this command has ended")

    def _relay(self, source: int, target: int) -> None:
        with os.fdopen(source, "rb") as stream:
            for raw in stream:
                if not self.orphaned.is_set():
                    try:
                        _write_all(target, raw)
                        continue
                    except OSError:
                        self._runner_gone("nobody reads this command's output any more")
                self._log_output(raw.decode("utf-8", errors="replace").rstrip("\r\n"), target == 1)

    def _runner_gone(self, why: str) -> None:
        """Stop the command, once; returns at once (a relay calling it must go on reading)."""
        with self._lock:
            if self.orphaned.is_set() or self.finished.is_set():
                return
            self.orphaned.set()
        self._log_record(
            "mchub_orphaned",
            f"{why}: interrupting it (SIGINT) so that it saves its state; killed if it has not "
            f"stopped within {self.grace:g} s",
            level="warn",
        )
        _signal_group(signal.SIGINT)
        threading.Thread(target=self._kill_after_grace, daemon=True).start()

    def _kill_after_grace(self) -> None:
        if not self.finished.wait(self.grace):
            self._log_record("mchub_killed", f"still running {self.grace:g} s after SIGINT: killed", level="error")
            _signal_group(signal.SIGKILL)

    def _log_output(self, line: str, from_stdout: bool) -> None:
        if not line or (from_stdout and not self.log_stdout):
            return
        if from_stdout and line.startswith("{"):
            self._log_line(line)  # Terraform's own -json message, as the runner logs it
        else:
            self._log_record("stdout" if from_stdout else "stderr", line, level="info" if from_stdout else "error")

    def _log_record(self, kind: str, message: str, level: str = "info", **fields: object) -> None:
        import json  # only once the runner has gone: most runs never need it
        from datetime import UTC, datetime

        record = {
            "@level": level,
            "@message": message,
            "@module": self.log_module,
            "@timestamp": datetime.now(UTC).isoformat(),
            "type": kind,
            **fields,
        }
        self._log_line(json.dumps(record))

    def _log_line(self, line: str) -> None:
        if self.log_fd < 0:
            return
        with self._lock:
            try:
                _write_all(self.log_fd, (line + "\n").encode())
            except OSError:
                self.log_fd = -1  # a log that cannot be written is no reason to stop stopping


def _adopt_orphans() -> None:
    """Become the parent of the command's descendants whose parent dies (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    except (ImportError, OSError, AttributeError):
        pass  # elsewhere they go to init, and are not waited for


def _adopted() -> list[int]:
    """The processes this one has adopted and that still run (Linux: /proc)."""
    me = str(os.getpid())
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or gone meanwhile
        if fields[1] == me and fields[0] != "Z":
            found.append(int(entry))
    return found


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _signal_group(signum: int) -> None:
    try:
        os.killpg(0, signum)  # the guard leads the group: the command and what it started
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 7 or argv[5] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)  # it signals its own group: never its caller's
    log_fd = int(argv[2])
    if log_fd >= 0:
        os.set_inheritable(log_fd, False)  # the runner's log is the guard's to write, not the command's
    # A Python handler, not SIG_IGN: the command starts with SIGINT's default action.
    signal.signal(signal.SIGINT, lambda *_: None)
    _adopt_orphans()
    guard = Guard(float(argv[1]), log_fd, argv[3], argv[4] == "1")
    return guard.run(argv[6:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
