"""A hub whose clusters are all in Puppet's long provisioning: does a new person still get
their plan at once, and what do the waiting clusters cost the machine?

N clusters (default 50) are built on a sandbox whose services keep booting until the
benchmark ends, so all of them sit in provisioning_running, as a department's clusters do
for the 15 to 40 minutes Puppet takes. Measured side by side in one run:
  cost      the processes and memory (PSS) of the whole product (sandbox, Prefect's server,
            the worker, the warm engines, the prober and everything they started) idle and
            with the N clusters provisioning; per cluster. Target: at most 1 process and
            5 MB per provisioning cluster (no process is the design)
  latency   a new cluster's plan, submit → awaiting_approval (what the web page shows), each
            time beside the same init + plan run by hand in a copy of its folder; once on
            the idle hub and --samples times with the N clusters provisioning. Target: within
            raw init+plan + 2 s
Each sample's plan is rejected, and the next measured once that run has ended; the N clusters
are left to the stack's end.

    .venv/bin/python -m bench.busy_hub [--clusters N] [--samples K] [--postgres SERVER]
"""

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.latency import plan_of_a_new_cluster
from bench.tools import (
    UNLIMITED_QUOTAS, cluster_spec, mb, memory_bytes, new_database, process_tree, product_pids, running_platform,
    wait_until,
)
from bench.waiting_cost import wait_for_all
from mchub.orchestration import runs
from mchub.spec.model import ClusterSpec
from mchub.status import Status
from tests.harness import LiveStack

# Longer than the benchmark: the clusters stay in provisioning_running while it measures.
BOOTING_FOR = 3600.0
IN_FLIGHT = 6
"""Clusters being planned or applied at once while the N are built."""
SETTLE_SECONDS = 30.0
CPU_WINDOW = 30.0


def cost(stack: LiveStack) -> tuple[int, int]:
    pids = product_pids(stack)
    return len(pids), memory_bytes(pids)


def cpu_shares(stack: LiveStack) -> str:
    """Each part's share of a core over CPU_WINDOW seconds, its descendants included."""
    parts = {name: process_tree([stack.pid_of(name)]) for name in ("prefect server", "prober", "prefect worker", "warm engines")}
    parts["sandbox"] = process_tree([stack.sandbox.process.pid]) if stack.sandbox.process else []
    before = {name: _cpu_seconds(pids) for name, pids in parts.items()}
    time.sleep(CPU_WINDOW)
    used = {name: _cpu_seconds(pids) - before[name] for name, pids in parts.items()}
    return ", ".join(f"{name} {100 * seconds / CPU_WINDOW:.0f}%" for name, seconds in used.items())


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def plan_samples(stack: LiveStack, count: int) -> list[tuple[float, float]]:
    """(plan visible, raw init+plan) of `count` new clusters, one after the other."""
    samples = []
    with stack.client() as client:
        for _ in range(count):
            shown = plan_of_a_new_cluster(stack, client)
            runs.reject(shown.hostname, comment="benchmark sample", client=client)
            # Its run resumes to end itself: the next sample is measured once it has.
            wait_until(lambda: runs.read_run(shown.run_id, client=client).final, 120, "the rejected run's end", 0.1)
            samples.append((shown.plan_visible, shown.raw_init_plan))
            print(f"  plan visible {shown.plan_visible:.2f} s, raw init+plan {shown.raw_init_plan:.2f} s", flush=True)
    return samples


def build_provisioning(specs: list[ClusterSpec], stack: LiveStack) -> float:
    """Build every cluster until it is provisioning_running, IN_FLIGHT at a time; the seconds it took."""
    started = time.monotonic()
    hostnames = [spec.hostname for spec in specs]
    with stack.client() as client:
        for number, spec in enumerate(specs):
            wait_for_all(hostnames[: max(0, number - IN_FLIGHT + 1)], Status.PROVISIONING_RUNNING, timeout=300)
            runs.submit_spec(spec, new=True, client=client)
            wait_until(
                lambda host=spec.hostname: runs.statuses(client=client).get(host) == Status.AWAITING_APPROVAL,
                120, f"{spec.hostname}'s plan",
            )
            runs.approve(spec.hostname, client=client)
    wait_for_all(hostnames, Status.PROVISIONING_RUNNING, timeout=300 + 10 * len(hostnames))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument(
        "--postgres", metavar="SERVER",
        help="Prefect's database in a new database on this PostgreSQL server, dropped afterwards "
        "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432); default: SQLite",
    )
    args = parser.parse_args()

    with new_database(args.postgres) as database_url, running_platform(
        boot_seconds=BOOTING_FOR, quotas=UNLIMITED_QUOTAS, **({"database_url": database_url} if database_url else {})
    ) as stack:
        time.sleep(3)  # the worker's first polls
        print("a new cluster's plan on the idle hub:")
        idle_samples = plan_samples(stack, 1)
        idle_processes, idle_memory = cost(stack)

        specs = [cluster_spec("p") for _ in range(args.clusters)]
        built_in = build_provisioning(specs, stack)
        print(f"{args.clusters} clusters provisioning_running after {built_in:.0f} s", flush=True)
        try:
            wait_until(lambda: cost(stack)[0] <= idle_processes, SETTLE_SECONDS, "the runs' processes ending")
        except RuntimeError as error:
            print(f"note: {error}")
        busy_processes, busy_memory = cost(stack)
        print(f"CPU of each part over {CPU_WINDOW:g} s with {args.clusters} clusters provisioning "
              f"(100% = one core): {cpu_shares(stack)}", flush=True)

        print(f"a new cluster's plan with {args.clusters} clusters provisioning:")
        busy_samples = plan_samples(stack, args.samples)
        still = runs.statuses()
        provisioning = sum(still.get(spec.hostname) == Status.PROVISIONING_RUNNING for spec in specs)

    verdict = {True: "PASS", False: "FAIL"}
    per_process = (busy_processes - idle_processes) / args.clusters
    per_memory = (busy_memory - idle_memory) / args.clusters
    print(f"\n{'the whole product':<38} {'procs':>6} {'PSS':>10}")
    print(f"{'idle':<38} {idle_processes:>6} {mb(idle_memory):>10}")
    print(f"{f'{args.clusters} clusters provisioning_running':<38} {busy_processes:>6} {mb(busy_memory):>10}")
    print(f"per provisioning cluster: {per_process:+.2f} processes, {mb(per_memory)} "
          f"→ {verdict[per_process <= 1 and per_memory <= 5 * 2**20]} (target: at most 1 process and 5 MB; design: none)")
    visible = statistics.median(sample[0] for sample in busy_samples)
    raw = statistics.median(sample[1] for sample in busy_samples)
    worst = max(busy_samples)
    print(f"plan visible, idle hub: {idle_samples[0][0]:.2f} s (raw init+plan {idle_samples[0][1]:.2f} s)")
    print(f"plan visible with {args.clusters} provisioning, median of {len(busy_samples)}: {visible:.2f} s "
          f"(raw init+plan {raw:.2f} s, ratio {visible / raw:.1f}x); slowest {worst[0]:.2f} s "
          f"(raw {worst[1]:.2f} s) → {verdict[visible <= raw + 2]} (target: within raw init+plan + 2 s)")
    print(f"{provisioning} of {args.clusters} still provisioning_running at the end (their services never answered); "
          f"Prefect's database in {'PostgreSQL' if args.postgres else 'SQLite'}")


if __name__ == "__main__":
    main()
