"""Warm flow-run engines: start a flow run's engine by forking a process that has already
imported Prefect and the flows, instead of starting a new Python.

A new `python -m prefect.engine` spends seconds importing before it runs a line of the
flow, and Prefect's process worker starts one for every run (resumed approvals included),
so a person would wait that long for every plan. Here one process (this module, started
by `mchub up` before the worker) imports everything once and listens on a Unix socket
that only this user can open. The work pool's command is `engine_launcher.py`, a
standard-library script that starts in milliseconds: it hands its environment, working
folder and standard streams to this process, which forks; the fork becomes the engine
exactly as `python -m prefect.engine` would have run (see mchub/orchestration/flow_engine.py), in
its own process group.

The launcher stays the worker's view of the run: its exit code is the engine's, the
signals it gets go to the engine's process group, and if it is killed (or its worker is)
the engine's group is killed with it (see engine_launcher.py), so cancelling, crashing and
reconciling runs work as with Prefect's own command, and no Terraform outlives its run. Code changed while this process runs is seen only
after `mchub up` is restarted.

    python -m mchub.orchestration.warm_engines SOCKET_PATH MODULE [PRELOAD ...]

runs `python -m MODULE` in a fork for each launcher, with the modules PRELOAD imported
beforehand (mchub.orchestration.stack gives the imports of mchub.orchestration.flow_engine
and the flows). This module knows nothing of Prefect: MODULE does.
"""

import atexit
import gc
import json
import os
import runpy
import shlex
import signal
import socket
import sys
import threading
from pathlib import Path

from mchub.orchestration.private_socket import SocketPathError, bind_private, check_socket_path
from mchub.orchestration.unbroken import wait_for_unbroken_steps
from mchub.settings import Settings

# Prefect's engine, after re-reading the settings from the fork's environment.
ENGINE = "mchub.orchestration.flow_engine"
MAX_REQUEST_BYTES = 1 << 20


def socket_path(settings: Settings) -> Path:
    return (settings.home / "engines.sock").resolve()


def launcher_argv(socket_file: Path, module: str) -> list[str]:
    """A launcher of `module`'s warm engines: fast, as it imports only the standard library."""
    return [sys.executable, "-I", "-S", str(Path(__file__).with_name("engine_launcher.py")), str(socket_file), module]


def launcher_command(settings: Settings) -> str:
    """The work pool's command."""
    return shlex.join(launcher_argv(socket_path(settings), ENGINE))


def serve(path: Path, module: str, preload: list[str]) -> None:
    """Import `preload`, then fork a `python -m module` for every launcher that connects;
    returns once interrupted (Ctrl-C), and in each fork once it has run."""
    check_socket_path(path)  # before the slow imports
    for name in preload:
        __import__(name)
    # Forking is safe only while this process has a single thread.
    if threading.active_count() != 1:
        raise RuntimeError(f"importing {preload} started threads; a forked engine could deadlock")
    # What the imports made lives as long as every fork: leave it out of the forks' garbage
    # collections, which would otherwise walk it again in each.
    gc.freeze()
    listener = bind_private(path, socket.SOCK_SEQPACKET)
    listener.listen(64)
    # The forks are not waited for here: their launchers report their exit codes.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"warm engines: ready on {path}", flush=True)
    engine = None
    try:
        engine = _fork_for_each_launcher(listener)
    except KeyboardInterrupt:  # how `mchub up` stops its parts
        return
    finally:
        if engine is None:
            path.unlink(missing_ok=True)
    _run_engine(module, *engine)


def _fork_for_each_launcher(listener: socket.socket) -> tuple[socket.socket, dict, list[int]]:
    """Serves until stopped; returns in each fork, with its launcher's request."""
    while True:
        connection, _ = listener.accept()
        request, streams, _, _ = socket.recv_fds(connection, MAX_REQUEST_BYTES, 3)
        # Anything but a launcher's request (a readiness probe, say) is just closed.
        if request and len(streams) == 3 and os.fork() == 0:
            listener.close()
            return connection, json.loads(request), streams
        connection.close()
        for stream in streams:
            os.close(stream)


def _run_engine(module: str, connection: socket.socket, request: dict, streams: list[int]) -> None:
    """In the fork: take the launcher's place and run `python -m module`."""
    os.setpgid(0, 0)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, stream in enumerate(streams):
        os.dup2(stream, target)
        os.close(stream)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = [module]

    finished = threading.Event()
    # Registered first, so it runs last: the launcher exits once Prefect's own exit
    # handlers (the last log batch) are done.
    exit_code = [1]
    atexit.register(_report_exit, connection, finished, exit_code)
    connection.sendall(str(os.getpid()).encode())
    threading.Thread(target=_die_with_launcher, args=(connection, finished), daemon=True).start()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        exit_code[0] = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        raise
    exit_code[0] = 0


def _report_exit(connection: socket.socket, finished: threading.Event, exit_code: list[int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    finished.set()
    connection.sendall(str(exit_code[0]).encode())


def _die_with_launcher(connection: socket.socket, finished: threading.Event) -> None:
    """The launcher never leaves before the engine's exit code unless it was killed:
    then the engine and its children are killed too, as they would be with it (Terraform,
    which runs under a guard of its own, is interrupted by it to save its state), once a
    step that must not be cut in two has ended (mchub/orchestration/unbroken.py)."""
    connection.recv(1)
    if not finished.is_set():
        wait_for_unbroken_steps()
        os.killpg(0, signal.SIGKILL)


def run_alone(lifeline: int, module: str) -> None:
    """The launcher's fallback when the warm engines do not answer: `python -m module` in
    this new process, which the launcher started in a process group of its own. The
    lifeline is a pipe whose other end only the launcher holds: when it ends, the launcher
    is gone, and the engine's group is killed as a warm fork's is."""
    os.set_inheritable(lifeline, False)  # the engine's own children must not hold it open
    threading.Thread(target=_die_with_lifeline, args=(lifeline,), daemon=True).start()
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _die_with_lifeline(lifeline: int) -> None:
    while os.read(lifeline, 4096):
        pass  # the launcher never writes: only the end of the pipe means anything
    wait_for_unbroken_steps()
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--alone":
        run_alone(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    if len(sys.argv) < 3:
        sys.exit(
            "usage: python -m mchub.orchestration.warm_engines SOCKET_PATH MODULE [PRELOAD ...]\n"
            "       python -m mchub.orchestration.warm_engines --alone LIFELINE_FD MODULE"
        )
    try:
        serve(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
    except SocketPathError as error:
        sys.exit(f"warm engines: {error}")
