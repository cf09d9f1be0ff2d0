"""`mchub up`: start every part of the product as child processes, stop them all together.

Each part is a plain command with a health URL, so the same supervisor serves the sandbox
cloud today and the Prefect server, worker and web front end as they arrive.
"""

import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from mchub.settings import Settings


class StartError(Exception):
    """A part of the product did not come up; the message names it and its log."""


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    url: str
    health_url: str
    start_timeout: float = 60.0


def services(settings: Settings) -> list[Service]:
    """The parts of the product, in start order."""
    sandbox_url = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
    return [
        Service(
            name="sandbox cloud",
            argv=[sys.executable, "-m", "mchub.cli", "sandbox"],
            url=sandbox_url,
            health_url=f"{sandbox_url}/sandbox/health",
        ),
    ]


def _wait_healthy(service: Service, process: subprocess.Popen, log_path: str) -> None:
    deadline = time.monotonic() + service.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"{service.name} exited with code {process.returncode}; see {log_path}")
        try:
            if httpx.get(service.health_url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise StartError(f"{service.name} did not answer {service.health_url} within {service.start_timeout:g} s; see {log_path}")


def up(settings: Settings) -> int:
    """Start every service, print where each is, and stop them all on Ctrl-C or when one dies."""
    _stop_on_signals()
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: list[tuple[Service, subprocess.Popen]] = []
    try:
        for service in services(settings):
            log_path = logs / f"{service.name.replace(' ', '-')}.log"
            with open(log_path, "ab") as log:
                process = subprocess.Popen(service.argv, stdout=log, stderr=subprocess.STDOUT)
            running.append((service, process))
            _wait_healthy(service, process, str(log_path))
            print(f"  {service.name:<15} {service.url}")
        print(f"MC Hub is up (logs in {logs}); Ctrl-C stops everything.")
        while all(process.poll() is None for _, process in running):
            time.sleep(0.5)
        dead = [service.name for service, process in running if process.poll() is not None]
        print(f"mchub: {', '.join(dead)} stopped; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        _stop(running)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    # Ctrl-C and a service manager's SIGTERM both stop everything; a shell that started us in
    # the background may have set SIGINT to be ignored, so install the handler explicitly.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _stop(running: list[tuple[Service, subprocess.Popen]]) -> None:
    for _, process in reversed(running):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for service, process in reversed(running):
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"mchub: {service.name} did not stop in 20 s; killing it", file=sys.stderr)
            process.kill()
            process.wait()
