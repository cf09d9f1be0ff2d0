"""What every benchmark of the platform starts from: a sandbox cloud and MC Hub's platform
(Prefect server, deployments, reconciliation, worker) on free loopback ports, under a
temporary home that is removed afterwards, plus the small tools the benchmarks share
(cluster specs, waiting for statuses, the processes of the product and their memory).

    with running_platform(boot_seconds=0) as hub:
        ...  # mchub.orchestration.runs and mchub.cluster.lifecycle act on hub's server and folders

Everything started is stopped on leaving the block, also on Ctrl-C, SIGTERM or an error
(an error keeps the temporary home, with the logs, and says where).
The default ports (4200, 5000, 8790) are never used: another MC Hub may run on them.
"""

import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

# Importing prefect creates its home: keep this process's out of ~/.prefect.
_CLIENT_HOME = tempfile.mkdtemp(prefix="mchub-bench-client-")
os.environ["PREFECT_HOME"] = _CLIENT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

from prefect.client.orchestration import SyncPrefectClient
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from mchub.orchestration import runs
from mchub.orchestration.stack import Stack, child_env, prefect_parts
from mchub.settings import Settings, get_settings
from mchub.spec.model import ClusterSpec, default_spec_data, parse_spec
from mchub.status import Status, cluster_status
from sandbox.launcher import SandboxCloud, start_sandbox

DOMAIN = "sandbox.mchub.dev"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH bench@mchub"
UNLIMITED_QUOTAS = {name: -1 for name in ("instances", "cores", "ram", "volumes", "gigabytes", "floating_ips")}


@dataclass
class Hub:
    settings: Settings
    """The settings the worker's flows run with (also this process's while the block lasts)."""
    sandbox: SandboxCloud
    stack: Stack
    home: Path

    @property
    def api_url(self) -> str:
        return self.settings.prefect_api_url

    def client(self, **httpx_settings: Any) -> SyncPrefectClient:
        """A new client of the server, for a `with` block."""
        return runs.connect(self.api_url, httpx_settings or None)

    def server_pid(self) -> int:
        return self._pid_of("prefect server")

    def worker_pid(self) -> int:
        return self._pid_of("prefect worker")

    def engines_pid(self) -> int:
        """The warm engines: the flow runs' engines are forks of it, the worker's children their launchers."""
        return self._pid_of("warm engines")

    def product_pids(self) -> list[int]:
        """Every process of the product now: the sandbox, the server, the worker, and all
        their descendants (flow-run engines, Terraform)."""
        roots = [self.sandbox.process.pid, *(process.pid for _, process in self.stack.running)]
        return process_tree(roots)

    def _pid_of(self, name: str) -> int:
        return next(process.pid for service, process in self.stack.running if service.name == name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def running_platform(boot_seconds: float = 0, quotas: dict[str, int] | None = None) -> Iterator[Hub]:
    """A sandbox (its clusters' services answer `boot_seconds` after their servers are
    created; `quotas` replace its limits) and the platform, stopped on leaving."""
    signal.signal(signal.SIGTERM, _interrupt)
    home = Path(tempfile.mkdtemp(prefix="mchub-bench-"))
    sandbox = start_sandbox(home / "sandbox", home, boot_seconds=boot_seconds)
    stack: Stack | None = None
    saved = dict(os.environ)
    keep = False  # an error keeps the logs and cluster folders, to see why
    try:
        if quotas:
            sandbox.set_knobs(quotas=quotas)
        settings = Settings(
            home=home,
            clusters_dir=home / "clusters",
            clouds_yaml=sandbox.clouds_yaml,
            sandbox_port=sandbox.port,
            sandbox_boot_seconds=boot_seconds,
            prefect_api_url=f"http://127.0.0.1:{_free_port()}/api",
            ui_port=_free_port(),
        )
        settings.clusters_dir.mkdir()
        env = child_env(settings)
        client = ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")
        os.environ.update({key: value for key, value in env.items() if key.startswith("MCHUB_") or key in client})
        get_settings.cache_clear()
        stack = Stack(env=env, log_dir=home / "logs")
        started = time.monotonic()
        prefect_client = {PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"]}
        with temporary_settings(prefect_client):
            for part in prefect_parts(settings):
                stack.start(part)
            print(f"(platform up in {time.monotonic() - started:.0f} s; logs in {stack.log_dir})", flush=True)
            yield Hub(settings=settings, sandbox=sandbox, stack=stack, home=home)
    except Exception:
        keep = True
        raise
    finally:
        if stack is not None:
            stack.stop()
        sandbox.stop()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        if keep:
            print(f"(logs and cluster folders kept in {home})", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(_CLIENT_HOME, ignore_errors=True)


# --- clusters ---------------------------------------------------------------------------


def cluster_spec(prefix: str = "b") -> ClusterSpec:
    """A small valid cluster (mgmt, login and one node; a 10 GB home volume) with a new name."""
    data = {
        **default_spec_data(domain=DOMAIN, name=f"{prefix}{uuid4().hex[:8]}"),
        "public_keys": [PUBLIC_KEY],
        "guest_passwd": "Bench-pw-3c1d0a9f",
        "volumes": {"nfs": {"home": {"size": 10}}},
    }
    return parse_spec(data)


def wait_for_status(
    hostname: str,
    wanted: Status | Iterable[Status],
    *,
    client: SyncPrefectClient,
    timeout: float = 300.0,
    poll_seconds: float = 0.05,
) -> float:
    """Poll runs.status_of (what the web pages read) until `hostname` has a `wanted` status;
    returns the time.monotonic() it was first seen. RuntimeError on an error status or timeout."""
    wanted = {wanted} if isinstance(wanted, Status) else set(wanted)
    deadline = time.monotonic() + timeout
    while True:
        status = cluster_status(runs.runs_of(hostname, client=client))
        seen = time.monotonic()
        if status in wanted:
            return seen
        if status.value.endswith("_error") or seen > deadline:
            last = runs.runs_of(hostname, client=client)
            detail = f"{last[0].describe()}: {last[0].state_message}" if last else "no runs"
            raise RuntimeError(f"{hostname} is {status.value}, waiting for {sorted(wanted)} ({detail})")
        time.sleep(poll_seconds)


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll_seconds: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:g} s")
        time.sleep(poll_seconds)


# --- processes --------------------------------------------------------------------------


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        # The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(roots: Iterable[int]) -> list[int]:
    """The living processes among `roots` and all their descendants."""
    children = _children_by_parent()
    found: list[int] = []
    todo = [pid for pid in roots if Path(f"/proc/{pid}").exists()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def memory_bytes(pids: Iterable[int]) -> int:
    """The memory `pids` (those still alive) hold between them: the sum of their proportional
    set sizes (/proc/<pid>/smaps_rollup), where a page shared by n processes counts 1/n in
    each. A sum of resident sizes would count the warm engines' pages once per fork."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def command_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    return " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words[:6]))


def mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB"
