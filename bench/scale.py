"""N clusters at once on this machine: submitted together, each approved as soon as its plan
is shown, all reaching provisioning_success (sandbox boot time 0).

Measured in one run: the wall time from the first submission until every plan is shown and
until every cluster is up (a cluster that fails is counted and its reason printed); and,
sampled every 0.5 s, the memory held by every process of the product together (PSS, from
/proc): the sandbox, the Prefect server, the worker and its children (the runs' launchers),
the warm engines and their forks (flow-run engines, Terraform); its peak, with the peak
number of processes and of flow runs at once. The worker runs at most MCHUB_MAX_CONCURRENT_RUNS
runs at once (its --limit; 0: none) unless its pool has a lower limit; both are printed.

    .venv/bin/python -m bench.scale [--clusters N] [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432]
"""

import argparse
import itertools
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.tools import (
    new_database,
    UNLIMITED_QUOTAS,
    cluster_spec,
    mb,
    memory_bytes,
    process_tree,
    product_pids,
    running_platform,
    wait_until,
)
from mchub.orchestration import runs
from mchub.orchestration.stack import WORK_POOL
from mchub.spec.model import ClusterSpec
from mchub.status import Status
from tests.harness import LiveStack

SAMPLE_SECONDS = 0.5


class MemorySampler(threading.Thread):
    """Peaks of the product's memory, process count and flow-run processes (the worker's children)."""

    def __init__(self, stack: LiveStack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.stop = threading.Event()
        self.peak_memory = self.peak_processes = self.peak_flow_runs = 0
        self.samples = 0

    def run(self) -> None:
        worker = self.stack.pid_of("prefect worker")
        while not self.stop.is_set():
            pids = product_pids(self.stack)
            flow_runs = len([pid for pid in process_tree([worker]) if _parent(pid) == worker])
            self.peak_memory = max(self.peak_memory, memory_bytes(pids))
            self.peak_processes = max(self.peak_processes, len(pids))
            self.peak_flow_runs = max(self.peak_flow_runs, flow_runs)
            self.samples += 1
            self.stop.wait(SAMPLE_SECONDS)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


class Approver(threading.Thread):
    """Approves every plan of `hostnames` as soon as the clusters list shows it waiting."""

    def __init__(self, hostnames: set[str]) -> None:
        super().__init__(daemon=True)
        self.pending = set(hostnames)
        self.stop = threading.Event()
        self.all_shown_at: float | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with runs.connect() as client:
                while self.pending and not self.stop.is_set():
                    found = runs.statuses(client=client)
                    for host in sorted(self.pending):
                        status = found.get(host, Status.NOT_FOUND)
                        if status == Status.AWAITING_APPROVAL:
                            runs.approve(host, client=client)
                        if status == Status.AWAITING_APPROVAL or status.value.endswith("_error"):
                            self.pending.discard(host)
                    if not self.pending:
                        self.all_shown_at = time.monotonic()
                    self.stop.wait(0.5)
        except (runs.RunsError, httpx.HTTPError) as error:  # reported by the main thread
            self.error = error


def submit(spec: ClusterSpec) -> tuple[float, str | None]:
    """Submit as the form's Apply button does: how long the person waited for it, and the
    error they were shown, if any (a busy SQLite makes Prefect's server answer 503)."""
    started = time.monotonic()
    try:
        with runs.connect() as client:
            runs.submit_spec(spec, new=True, client=client)
    except runs.RunsError as error:
        return time.monotonic() - started, f"submission refused: {error}"
    return time.monotonic() - started, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument(
        "--postgres", metavar="SERVER",
        help="Prefect's database in a new database on this PostgreSQL server, dropped afterwards "
        "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432); default: SQLite",
    )
    args = parser.parse_args()

    with new_database(args.postgres) as database_url, running_platform(
        boot_seconds=0, quotas=UNLIMITED_QUOTAS, **({"database_url": database_url} if database_url else {})
    ) as stack:
        with stack.client() as client:
            pool_limit = client.read_work_pool(WORK_POOL).concurrency_limit
        worker_argv = next(s.argv for s, _ in stack.parts.running if s.name == "prefect worker")
        idle_memory, idle_processes = memory_bytes(product_pids(stack)), len(product_pids(stack))
        specs = [cluster_spec("s") for _ in range(args.clusters)]
        hostnames = [spec.hostname for spec in specs]
        sampler = MemorySampler(stack)
        sampler.start()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=min(args.clusters, 10)) as pool:
            submissions = dict(zip(hostnames, pool.map(submit, specs), strict=True))
        submitted = time.monotonic() - started
        submit_times = sorted(seconds for seconds, _ in submissions.values())
        refused = {host: why for host, (_, why) in submissions.items() if why}
        hostnames = [host for host in hostnames if host not in refused]
        approver = Approver(set(hostnames))
        approver.start()

        final: dict[str, Status] = {}

        def all_ended() -> bool:
            if approver.error is not None:
                raise approver.error
            final.clear()
            final.update({host: runs.statuses().get(host, Status.NOT_FOUND) for host in hostnames})
            return all(s == Status.PROVISIONING_SUCCESS or s.value.endswith("_error") for s in final.values())

        try:
            wait_until(all_ended, 120 + 30 * args.clusters, f"{args.clusters} clusters provisioning_success")
            wall = time.monotonic() - started
            failures = refused | {
                host: f"{status.value}: {runs.runs_of(host)[0].state_message}"
                for host, status in final.items()
                if status != Status.PROVISIONING_SUCCESS
            }
        finally:
            approver.stop.set()
            sampler.stop.set()
            sampler.join()
        shown = (approver.all_shown_at or float("nan")) - started  # nan: some plan failed

    print(f"\n{args.clusters} clusters submitted at once (10 at a time), each approved as soon as its plan showed, "
          f"Prefect's database in {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"  all submitted after             {submitted:7.1f} s   (one submission: median "
          f"{statistics.median(submit_times):.1f} s, longest {submit_times[-1]:.1f} s)")
    print(f"  every plan shown (or failed)    {shown:7.1f} s")
    up = args.clusters - len(failures)
    print(f"  every cluster ended after       {wall:7.1f} s   ({wall / args.clusters:.1f} s per cluster on this machine)")
    print(f"  provisioning_success            {up:>7} of {args.clusters} ({len(refused)} submissions refused)")
    for host, why in sorted(failures.items()):
        print(f"    FAILED {host}: {why}")
    print(f"  memory of the product, idle     {mb(idle_memory):>9} in {idle_processes} processes")
    print(f"  memory of the product, peak     {mb(sampler.peak_memory):>9} in up to {sampler.peak_processes} processes "
          f"({sampler.samples} samples every {SAMPLE_SECONDS:g} s)")
    print(f"  peak above idle per cluster     {mb((sampler.peak_memory - idle_memory) / args.clusters):>9}")
    print(f"  flow-run processes at once      {sampler.peak_flow_runs:>9} (peak)")
    limit = next((argv for flag, argv in itertools.pairwise(worker_argv) if flag == "--limit"), None)
    print(f"worker limit on concurrent runs (MCHUB_MAX_CONCURRENT_RUNS): {limit or 'none'}; "
          f"work pool {WORK_POOL!r} concurrency limit: {pool_limit if pool_limit is not None else 'none'}")
    if limit is None and pool_limit is None:
        print("so every submitted run starts at once: the peak memory grows with the number of clusters "
              "in flight (one flow-run process each) rather than being capped")


if __name__ == "__main__":
    main()
