"""The one harness that starts MC Hub for tests and benchmarks: a `LiveStack`, on free loopback
ports under a home of its own, started with the product's own code (mchub.orchestration.stack):

- `prefect_part(home, sandbox)`: Prefect's server, the deployments, the reconciliation of dead
  runs, the warm engines and the worker, building on a given sandbox cloud;
- `web_pages_alone(home, sandbox)`: the web pages and the sandbox's identity provider, with no
  Prefect behind them;
- `whole_product(home)`: all of `mchub up` (sandbox, the Prefect part, the web pages), run as
  a person runs it, its stdout a pipe as under a service manager.

`acting_on(stack)` points this process at a stack while a block lasts (its MCHUB_* settings and
Prefect's client), so that mchub.orchestration.runs, mchub.cluster.lifecycle and the CLI called
in-process act on the stack's server and folders, as its flows do.

The benchmarks import it too (run them as `python -m bench.<script>` from the project's root).
"""

import atexit
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mchub.orchestration.stack import (
    ROOT,
    Part,
    Service,
    Stack,
    child_env,
    page_parts,
    prefect_home,
    prefect_parts,
    worker_name,
)
from mchub.settings import Settings, get_settings
from sandbox.launcher import SandboxCloud, free_port, interrupt

# Importing prefect (which none of the above does) creates its home: keep this process's out of
# ~/.prefect (each stack's server has its own home, under the stack's).
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="mchub-client-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# Prefect's SQLite database as its server leaves it once started the first time (its schema
# migrated: 7 of a stack's 22 s here), taken from this process's first stack on SQLite and
# copied into each later one's home, which then starts as a hub restarted on its database does.
MIGRATED = Path(tempfile.mkdtemp(prefix="mchub-migrated-")) / "prefect.db"
atexit.register(shutil.rmtree, MIGRATED.parent, True)

UP_SECONDS = 180.0
"""How long `mchub up` may take to say it is up, on a busy 2-core machine."""
PART_STOP_SECONDS = 15.0
"""How long a part stopped by a test may take after SIGINT; one still running is a failure, not
something to kill and forget: a part that ignores Ctrl-C is a bug."""


@dataclass
class LiveStack:
    """A running MC Hub: its settings (those its flows run with), its sandbox cloud, and either
    the parts this process started (`parts`) or the `mchub up` that started them (`up`)."""

    settings: Settings
    sandbox: SandboxCloud
    parts: Stack
    up: "subprocess.Popen[str] | None" = None
    lines: "queue.Queue[str]" = field(default_factory=queue.Queue)
    """What `mchub up` has printed and nobody has read yet, a line each."""

    @property
    def env(self) -> dict[str, str]:
        """The environment of its parts; a command run with it acts on this stack."""
        return self.parts.env

    @property
    def api_url(self) -> str:
        return self.settings.prefect_api_url

    @property
    def clusters_dir(self) -> Path:
        return self.settings.clusters_dir

    @property
    def log_dir(self) -> Path:
        """Logs of every part (and, under `mchub up`, of the CLI)."""
        return self.settings.home / "logs"

    @property
    def worker(self) -> str:
        return worker_name(self.settings)

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.settings.ui_port}"

    def client(self, **httpx_settings: Any) -> Any:
        """A new client of its Prefect server (a `SyncPrefectClient`; use it in a `with` block)."""
        from prefect.client.orchestration import SyncPrefectClient

        from mchub.orchestration import prefect_auth

        return SyncPrefectClient(
            self.api_url, auth_string=prefect_auth.auth_string(self.settings), httpx_settings=httpx_settings or None
        )

    def http_auth(self) -> Any:
        """httpx's `auth` for plain requests to the server: its credential, and the CSRF token
        it asks of every write."""
        from mchub.orchestration import prefect_auth

        return prefect_auth.PrefectAuth(self.api_url, prefect_auth.auth_string(self.settings))

    def mchub(self, *words: str, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
        """`python -m mchub.cli WORDS` run against this stack, as a person runs it."""
        return subprocess.run(
            [sys.executable, "-m", "mchub.cli", *words], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )

    def pid_of(self, name: str) -> int:
        """The process of the part named `name` ("prefect server", "prefect worker", "warm engines")."""
        return self._running(name)[1].pid

    def stop_part(self, name: str, kill: bool = False) -> None:
        """Stop one part as Ctrl-C does, or, with `kill`, as the kernel's OOM killer or a
        `kill -9` does (SIGKILL: its runs are not told)."""
        running = self._running(name)
        process = running[1]
        self.parts.running.remove(running)
        if kill:
            process.kill()
            process.wait()
            return
        if not interrupt(process, timeout=PART_STOP_SECONDS):
            raise AssertionError(f"{name} did not stop within {PART_STOP_SECONDS:g} s of SIGINT and was killed")

    def worker_running(self) -> bool:
        return any(service.name == "prefect worker" for service, _ in self.parts.running)

    def forget_part(self, name: str) -> None:
        """Count the part named `name` as gone: it was killed by other means."""
        running = self._running(name)
        running[1].wait()
        self.parts.running.remove(running)

    def start_part(self, name: str, **env: str) -> None:
        """Start the part named `name` again (on its database, for the server), with `env` over
        the stack's environment."""
        [part] = [part for part in prefect_parts(self.settings) if part.name == name]
        assert isinstance(part, Service)
        self.parts.start(replace(part, env={**part.env, **env}))

    def restart_part(self, name: str, **env: str) -> None:
        self.stop_part(name)
        self.start_part(name, **env)

    def wait_for_line(self, start: str, timeout: float) -> str:
        """The next line `mchub up` prints that starts with `start`; RuntimeError after `timeout`."""
        deadline = time.monotonic() + timeout
        printed = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"`mchub up` printed no line starting {start!r} in {timeout:g} s:\n{''.join(printed)}"
                ) from None
            printed.append(line)
            if line.startswith(start):
                return line

    def stop(self) -> None:
        if self.up is not None:
            interrupt(self.up, timeout=60)
        self.parts.stop()

    def _running(self, name: str) -> "tuple[Service, subprocess.Popen[bytes]]":
        [found] = [(service, process) for service, process in self.parts.running if service.name == name]
        return found


def stack_settings(home: Path, **settings: Any) -> Settings:
    """Settings of a stack under `home` (its clusters folder made), Prefect and the pages on free
    ports; `settings` over those."""
    chosen = Settings(**{
        "home": home,
        "clusters_dir": home / "clusters",
        "prefect_api_url": f"http://127.0.0.1:{free_port()}/api",
        "ui_port": free_port(),
        "sandbox_identity_port": free_port(),
        **settings,
    })
    chosen.clusters_dir.mkdir(parents=True, exist_ok=True)
    if chosen.database_url is None and MIGRATED.exists():
        prefect_database(chosen).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MIGRATED, prefect_database(chosen))
    return chosen


def prefect_database(settings: Settings) -> Path:
    """Where Prefect's server keeps its SQLite database (Prefect's default, under PREFECT_HOME)."""
    return prefect_home(settings) / "prefect.db"


def prefect_database_files(stack: LiveStack) -> list[Path]:
    """The SQLite files in the server's folder (its database, write-ahead log included), with
    what waits in the log written into the database: what to search for what Prefect stored."""
    database = prefect_database(stack.settings)
    assert database.is_file(), "no Prefect database found"
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(FULL)")
    return sorted(database.parent.glob("*.db*"))


def keep_migrated(settings: Settings) -> None:
    """Take MIGRATED from the stack of `settings`, whose server has just started, if not yet taken."""
    if settings.database_url is None and not MIGRATED.exists():
        taken = MIGRATED.with_suffix(".part")
        with sqlite3.connect(prefect_database(settings)) as source, sqlite3.connect(taken) as copy:
            source.backup(copy)
        taken.rename(MIGRATED)


@contextmanager
def parts_on(
    sandbox: SandboxCloud, home: Path, parts: Callable[[Settings], list[Part]], **settings: Any
) -> Iterator[LiveStack]:
    """The `parts` of MC Hub under `home`, building on `sandbox`, stopped on leaving."""
    chosen = stack_settings(
        home, clouds_yaml=sandbox.clouds_yaml, sandbox_port=sandbox.port, sandbox_boot_seconds=0, **settings
    )
    stack = LiveStack(settings=chosen, sandbox=sandbox, parts=Stack(env=child_env(chosen), log_dir=home / "logs"))
    try:
        for part in parts(chosen):
            stack.parts.start(part)
            if part.name == "prefect server":
                keep_migrated(chosen)
            if part.name == "deployments":
                pause_schedules(stack)
        yield stack
    finally:
        stack.stop()


def prefect_part(home: Path, sandbox: SandboxCloud, **settings: Any) -> AbstractContextManager[LiveStack]:
    """Prefect's server, the deployments, the reconciliation, the warm engines and the worker."""
    return parts_on(sandbox, home, prefect_parts, **settings)


def web_pages_alone(home: Path, sandbox: SandboxCloud, **settings: Any) -> AbstractContextManager[LiveStack]:
    """The web pages as `mchub up` starts them, with the identity provider people sign in with,
    and no Prefect server (none listens at its URL)."""
    return parts_on(sandbox, home, page_parts, **settings)


@contextmanager
def whole_product(home: Path, **settings: Any) -> Iterator[LiveStack]:
    """`mchub up` under `home` (MCHUB_* variables its only settings, stdout a pipe, in a session
    of its own as a service manager starts it), once it has said it is up; stopped on leaving
    as Ctrl-C stops it. Its sandbox keeps its data in home/sandbox."""
    chosen = stack_settings(home, clouds_yaml=home / "clouds.yaml", sandbox_port=free_port(), **settings)
    # A service manager sets no PYTHONUNBUFFERED, nor this process's settings of another stack.
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("MCHUB_", "PREFECT_API_")) and key != "PYTHONUNBUFFERED"
    }
    given = (
        "home", "clusters_dir", "clouds_yaml", "sandbox_port", "prefect_api_url", "ui_port", "sandbox_identity_port",
        *settings,
    )
    env.update({f"MCHUB_{name.upper()}": str(getattr(chosen, name)) for name in given})
    sandbox = SandboxCloud(
        url=f"http://127.0.0.1:{chosen.sandbox_port}", port=chosen.sandbox_port, data_dir=chosen.sandbox_data_dir,
        clouds_yaml=home / "clouds.yaml",
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "mchub.cli", "up"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    stack = LiveStack(settings=chosen, sandbox=sandbox, parts=Stack(env=env, log_dir=home / "logs"), up=up)
    assert up.stdout is not None
    threading.Thread(target=lambda: [stack.lines.put(line) for line in up.stdout], daemon=True).start()
    try:
        stack.wait_for_line("MC Hub is up", UP_SECONDS)
        pause_schedules(stack)
        yield stack
    finally:
        stack.stop()
        sandbox.stop()


def pause_schedules(stack: LiveStack) -> None:
    """Pause every deployment of `stack` that has a schedule (prefect.yaml's cull and drift
    check): runs asked for still run, none is scheduled. The tests run those flows when they
    mean to; an hourly cull starting at the top of the hour on the clusters a test has just
    made expire would take them from under the test's own."""
    with stack.client() as client:
        for deployment in client.read_deployments():
            if deployment.schedules:
                client.pause_deployment(deployment.id)


@contextmanager
def acting_on(stack: LiveStack) -> Iterator[LiveStack]:
    """This process's settings (the CLI's, the runs client's, Prefect's client's) those of
    `stack` while the block lasts."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    keys = [key for key in stack.env if key.startswith("MCHUB_")] + ["PREFECT_API_URL", "PREFECT_API_AUTH_STRING"]
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update({key: stack.env[key] for key in keys})
    get_settings.cache_clear()
    prefect_client = {
        PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: stack.env["PREFECT_API_AUTH_STRING"]
    }
    try:
        with temporary_settings(prefect_client):
            yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
