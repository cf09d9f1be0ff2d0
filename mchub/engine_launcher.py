"""The command of MC Hub's work pool: run this flow run's engine in a warm fork (see
warm_engines.py), standing in for it towards the worker.

Standard library only, run as `python -I -S engine_launcher.py SOCKET_PATH MODULE`, so it starts
in milliseconds. It sends its environment (which holds PREFECT__FLOW_RUN_ID), working
folder and standard streams to the warm engines' socket and then, until the engine ends:
passes on to the engine's process group the signals the worker sends to cancel the run,
and exits with the engine's exit code. When the warm engines do not answer, it starts
`python -m MODULE` (mchub.cli.flow_engine) in its place, only slower.
"""

import json
import os
import signal
import socket
import sys

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(socket_path: str, module: str) -> int:
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
        # -I and -S, which keep this script fast, would hide the project's packages.
        os.execv(sys.executable, [sys.executable, "-m", module])
    request = json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(launcher, [request], [0, 1, 2])
    engine = int(launcher.recv(64))
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, lambda signum, _: _signal_group(engine, signum))
    reply = launcher.recv(64)
    if not reply:
        print(f"mchub: the flow run's engine (process {engine}) ended without an exit code", file=sys.stderr)
        return 1
    return int(reply)


def _signal_group(engine: int, signum: int) -> None:
    try:
        os.killpg(engine, signum)
    except ProcessLookupError:  # the engine has just ended; its exit code is on its way
        pass


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
