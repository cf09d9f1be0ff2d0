"""The command of MC Hub's work pool: run this flow run's engine in a warm fork (see
warm_engines.py), standing in for it towards the worker.

Standard library only, run as `python -I -S engine_launcher.py SOCKET_PATH MODULE`, so it starts
in milliseconds. It sends its environment (which holds PREFECT__FLOW_RUN_ID), working
folder and standard streams to the warm engines' socket and then, until the engine ends:
passes on to the engine's process group the signals the worker sends to cancel the run,
and exits with the engine's exit code. When the warm engines do not answer, it starts
`python -m MODULE` (mchub.orchestration.flow_engine) as its child instead, only slower, and stands
in for that one the same way.

The run lives and dies with its worker: killed, the launcher takes the engine with it (the
warm fork sees its socket close, the new engine its lifeline pipe), and should
the worker die first (SIGKILL leaves no time to stop its runs) the launcher exits, which
kills the engine's group as well. Terraform, which the engine runs under a guard of its own
(mchub/terraform/guard.py), is then interrupted so that it saves its state.
"""

import json
import os
import signal
import socket
import sys

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How often the launcher looks whether its worker is still there (the parent of a process
# whose parent died changes).
PARENT_CHECK_SECONDS = 0.5


class WarmEngine:
    """The warm fork that runs the engine, reached through the warm engines' socket."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.pid = int(connection.recv(64))
        connection.settimeout(PARENT_CHECK_SECONDS)

    def wait(self) -> int | None:
        """The engine's exit code once it has ended, None while it runs (after a short wait)."""
        try:
            reply = self.connection.recv(64)
        except TimeoutError:
            return None
        if not reply:
            print(f"mchub: the flow run's engine (process {self.pid}) ended without an exit code", file=sys.stderr)
            return 1
        return int(reply)


class NewEngine:
    """`python -m MODULE` started as the launcher's child (through warm_engines.py's
    `--alone`), in a process group of its own as a warm fork is, so that the signals passed on
    reach it once, and killed with its group when the launcher dies, as a warm fork is: its
    lifeline, a pipe whose other end only the launcher holds, then ends."""

    def __init__(self, module: str) -> None:
        import subprocess  # here: a warm start does without its import time

        self._timeout = subprocess.TimeoutExpired
        lifeline, self._lifeline = os.pipe()
        # -I and -S, which keep this script fast, would hide the project's packages.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mchub.orchestration.warm_engines", "--alone", str(lifeline), module],
            process_group=0,
            pass_fds=(lifeline,),
        )
        os.close(lifeline)
        self.pid = self.process.pid

    def wait(self) -> int | None:
        try:
            code = self.process.wait(PARENT_CHECK_SECONDS)
        except self._timeout:
            return None
        return 128 - code if code < 0 else code  # as a shell reports a death by signal


def main(socket_path: str, module: str) -> int:
    worker = os.getppid()
    engine = _warm_engine(socket_path) or NewEngine(module)
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, lambda signum, _: _signal_group(engine.pid, signum))
    while (code := engine.wait()) is None:
        if os.getppid() != worker:
            # Leaving is enough: the engine kills its own group once its launcher has gone
            # (warm_engines.py), after a step that must not be cut in two (unbroken.py).
            print(f"mchub: the worker (process {worker}) has gone: the flow run's engine stops with it", file=sys.stderr)
            return 1
    return code


def _warm_engine(socket_path: str) -> WarmEngine | None:
    launcher = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        launcher.connect(socket_path)
    except OSError as error:
        print(
            f"mchub: the warm engines at {socket_path} do not answer ({error.strerror}); "
            "starting a new engine process, which takes a few seconds longer",
            file=sys.stderr,
            flush=True,
        )
        launcher.close()
        return None
    request = json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(launcher, [request], [0, 1, 2])
    return WarmEngine(launcher)


def _signal_group(engine: int, signum: int) -> None:
    try:
        os.killpg(engine, signum)
    except ProcessLookupError:  # the engine has just ended; its exit code is on its way
        pass


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
