"""What the benchmarks share: MC Hub's Prefect part (tests/harness.py) on a sandbox cloud of
its own, under a temporary home that is removed afterwards, and the small tools they use
(cluster specs, waiting for statuses, the processes of the product and their memory).

    with running_platform(boot_seconds=0) as stack:
        ...  # mchub.orchestration.runs and mchub.cluster.lifecycle act on stack's server and folders

Everything started is stopped on leaving the block, also on Ctrl-C, SIGTERM or an error
(an error keeps the temporary home, with the logs, and says where).
"""

import asyncio
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from prefect.client.orchestration import SyncPrefectClient
from sqlalchemy.engine import make_url

from mchub.orchestration import runs
from mchub.spec.model import ClusterSpec, default_spec_data, parse_spec
from mchub.status import Status, cluster_status
from sandbox.launcher import start_sandbox
from tests.harness import LiveStack, acting_on, prefect_part

DOMAIN = "sandbox.mchub.dev"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH bench@mchub"
UNLIMITED_QUOTAS = {name: -1 for name in ("instances", "cores", "ram", "volumes", "gigabytes", "floating_ips")}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def running_platform(
    boot_seconds: float = 0, quotas: dict[str, int] | None = None, **settings: Any
) -> Iterator[LiveStack]:
    """A sandbox (its clusters' services answer `boot_seconds` after their servers are
    created; `quotas` replace its limits) and the Prefect part on it with `settings` (e.g.
    database_url), this process acting on it; stopped on leaving."""
    signal.signal(signal.SIGTERM, _interrupt)
    home = Path(tempfile.mkdtemp(prefix="mchub-bench-"))
    sandbox = start_sandbox(home / "sandbox", home, boot_seconds=boot_seconds)
    keep = False  # an error keeps the logs and cluster folders, to see why
    try:
        if quotas:
            sandbox.set_knobs(quotas=quotas)
        started = time.monotonic()
        with prefect_part(home, sandbox, **settings) as stack, acting_on(stack):
            print(f"(stack up in {time.monotonic() - started:.0f} s; logs in {stack.log_dir})", flush=True)
            yield stack
    except Exception:
        keep = True
        raise
    finally:
        sandbox.stop()
        if keep:
            print(f"(logs and cluster folders kept in {home})", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)


@contextmanager
def new_database(server: str | None) -> Iterator[str | None]:
    """The URL of a database that does not exist yet on `server` (the stack creates it), dropped on leaving."""
    if server is None:
        yield None
        return
    url = f"{server.rstrip('/')}/mchub_bench_{secrets.token_hex(4)}"
    try:
        yield url
    finally:
        asyncio.run(_drop(url))


async def _drop(url: str) -> None:
    where = make_url(url)
    connection = await asyncpg.connect(
        host=where.host, port=where.port, user=where.username, password=where.password, database="postgres"
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{where.database}" WITH (FORCE)')
    finally:
        await connection.close()


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
    """Poll the status of `hostname` (cluster_status of its runs, what the web pages read) until it is `wanted`;
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


def product_pids(stack: LiveStack) -> list[int]:
    """Every process of the product now: the sandbox, the server, the worker, and all their
    descendants (flow-run engines, Terraform)."""
    assert stack.sandbox.process is not None
    return process_tree([stack.sandbox.process.pid, *(process.pid for _, process in stack.parts.running)])


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
