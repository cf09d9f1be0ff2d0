"""What clusters cost the machine while they wait: processes and the memory they hold
together (PSS, from /proc, so that pages the warm engines share with their forks count once).

Measured side by side in one run, of the Prefect server's process tree and the runs' (the
worker with its launchers, the warm engines with the flow-run engines forked from them and
their Terraform, and the prober that waits for every provisioning cluster's services):
  idle          before anything is submitted
  awaiting      once N clusters (default 20) all wait for approval (their runs PAUSED;
                submitted with at most --in-flight plans running at once);
                target: no process besides the server, the worker and the warm engines
  provisioning  once M of them (default 3) are approved and sit in provisioning_running
                (the sandbox's services keep booting until they are measured, then come up,
                so that the clusters approved one after the other are all there at once);
                the extra processes and memory per cluster; target: no process, 5 MB
Then everything is cleaned up: the waiting plans are rejected, the built clusters destroyed.

    .venv/bin/python -m bench.waiting_cost [--clusters N] [--provisioning M] [--in-flight K]
"""

import argparse
import time
from collections import Counter
from dataclasses import dataclass

from bench.tools import (
    UNLIMITED_QUOTAS,
    cluster_spec,
    command_name,
    mb,
    memory_bytes,
    process_tree,
    running_platform,
    wait_until,
)
from mchub.orchestration import runs
from mchub.status import Status
from tests.harness import LiveStack

# A suspended run's process exits soon after it pauses; give it this long.
SETTLE_SECONDS = 30.0
# The sandbox's services answer this long after the servers exist: longer than the benchmark.
BOOTING_UNTIL_MEASURED = 3600.0


@dataclass(frozen=True)
class Snapshot:
    """The processes of the server's and the runs' trees, and their memory, at one moment."""

    server: list[int]
    runs: list[int]
    server_memory: int
    runs_memory: int

    @property
    def processes(self) -> int:
        return len(self.server) + len(self.runs)

    @property
    def memory(self) -> int:
        return self.server_memory + self.runs_memory

    def row(self, name: str) -> str:
        return (
            f"{name:<26} {len(self.server):>6} {mb(self.server_memory):>9} {len(self.runs):>7} "
            f"{mb(self.runs_memory):>9} {self.processes:>6} {mb(self.memory):>9}"
        )


def snapshot(stack: LiveStack) -> Snapshot:
    server = process_tree([stack.pid_of("prefect server")])
    runs = process_tree([stack.pid_of("prefect worker"), stack.pid_of("warm engines"), stack.pid_of("prober")])
    return Snapshot(server=server, runs=runs, server_memory=memory_bytes(server), runs_memory=memory_bytes(runs))


def wait_for_all(hostnames: list[str], wanted: Status, timeout: float) -> None:
    def all_there() -> bool:
        found = runs.statuses()
        failed = [host for host in hostnames if found.get(host, Status.NOT_FOUND).value.endswith("_error")]
        if failed:
            why = {host: f"{found[host].value}: {runs.runs_of(host)[0].state_message}" for host in failed}
            raise RuntimeError(f"clusters failed while waiting for {wanted.value}: {why}")
        return all(found.get(host) == wanted for host in hostnames)

    wait_until(all_there, timeout, f"{len(hostnames)} clusters {wanted.value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--provisioning", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=4, help="plans running at once while submitting")
    args = parser.parse_args()
    if not 0 < args.provisioning <= args.clusters:
        parser.error("--provisioning must be between 1 and --clusters")

    with running_platform(boot_seconds=0, quotas=UNLIMITED_QUOTAS) as stack:
        time.sleep(3)  # let the worker's first polls settle
        idle = snapshot(stack)

        specs = [cluster_spec("w") for _ in range(args.clusters)]
        hostnames = [spec.hostname for spec in specs]
        submitted = time.monotonic()
        with stack.client() as client:
            for number, spec in enumerate(specs):
                # At most --in-flight plans at once: more, on 2 cores, time out taking the
                # cluster lock (see the report), and this benchmark is about waiting, not planning.
                wait_for_all(hostnames[: max(0, number - args.in_flight + 1)], Status.AWAITING_APPROVAL, timeout=120)
                runs.submit_spec(spec, new=True, client=client)
        wait_for_all(hostnames, Status.AWAITING_APPROVAL, timeout=60 + 20 * args.clusters)
        all_paused = time.monotonic() - submitted
        settle_start = time.monotonic()
        try:
            wait_until(
                lambda: snapshot(stack).processes <= idle.processes, SETTLE_SECONDS, "the paused runs' processes ending"
            )
        except RuntimeError as error:
            print(f"note: {error}")
        settled = time.monotonic() - settle_start
        awaiting = snapshot(stack)

        stack.sandbox.set_knobs(boot_seconds=BOOTING_UNTIL_MEASURED)
        building = hostnames[: args.provisioning]
        approved = time.monotonic()
        for host in building:
            runs.approve(host)
        wait_for_all(building, Status.PROVISIONING_RUNNING, timeout=120 + 30 * args.provisioning)
        all_provisioning = time.monotonic() - approved
        try:
            wait_until(
                lambda: snapshot(stack).processes <= awaiting.processes,
                SETTLE_SECONDS,
                "the provisioning runs' processes ending",
            )
        except RuntimeError as error:
            print(f"note: {error}")
        provisioning = snapshot(stack)
        stack.sandbox.set_knobs(boot_seconds=0)
        kinds = Counter(command_name(pid) for pid in set(provisioning.runs) - set(idle.runs))

        print(f"\n{args.clusters} clusters all awaiting approval {all_paused:.1f} s after the first submission; "
              f"their processes gone {settled:.1f} s later")
        print(f"{'':<26} {'server':>6} {'':>9} {'runs':>7} {'':>9} {'total':>6} {'':>9}")
        print(f"{'':<26} {'procs':>6} {'PSS':>9} {'procs':>7} {'PSS':>9} {'procs':>6} {'PSS':>9}")
        print(idle.row("idle"))
        print(awaiting.row(f"{args.clusters} awaiting approval"))
        print(provisioning.row(f"+ {args.provisioning} provisioning_running"))
        extra = awaiting.processes - idle.processes
        print(f"\nawaiting approval: {extra:+d} processes, {mb(awaiting.memory - idle.memory)} for {args.clusters} "
              f"clusters → {'PASS' if extra <= 0 else 'FAIL'} (target: no process besides the server, the worker and the warm engines)")
        per_process = (provisioning.processes - awaiting.processes) / args.provisioning
        per_memory = (provisioning.memory - awaiting.memory) / args.provisioning
        passed = per_process <= 0 and per_memory <= 5 * 2**20
        print(f"per cluster in provisioning_running: {per_process:+.1f} processes, {mb(per_memory)} "
              f"({args.provisioning} approved one after the other, all provisioning_running {all_provisioning:.1f} s later)"
              f" → {'PASS' if passed else 'FAIL'} (target: no process, at most 5 MB)")
        print("processes added for them: " + ", ".join(f"{n} × {name}" for name, n in kinds.most_common()))

        cleanup_started = time.monotonic()
        left = clean_up(hostnames[args.provisioning:], building, args.in_flight)
        print(f"cleaned up in {time.monotonic() - cleanup_started:.0f} s: {args.clusters - args.provisioning} plans "
              f"rejected, {args.provisioning} clusters destroyed, {len(left)} left in error")
        for host, why in left.items():
            print(f"  LEFT {host}: {why}")


def clean_up(waiting: list[str], built: list[str], in_flight: int) -> dict[str, str]:
    """Reject the `waiting` plans and destroy the `built` clusters, `in_flight` runs at a time;
    the clusters left in an error status, with the reason."""
    gone = {Status.NOT_FOUND, Status.DESTROYED}

    def ended(hosts: list[str]) -> list[str]:
        found = runs.statuses()
        return [h for h in hosts if found.get(h, Status.NOT_FOUND) in gone or found[h].value.endswith("_error")]

    wait_for_all(built, Status.PROVISIONING_SUCCESS, timeout=300)
    acted: list[str] = []
    for host in [*waiting, *built]:
        wait_until(lambda: len(acted) - len(ended(acted)) < in_flight, 300, "earlier clean-up runs ending")
        if host in built:
            runs.submit_destroy(host, auto_approve=True)
        else:
            runs.reject(host, comment="benchmark over")
        acted.append(host)
    wait_until(lambda: len(ended(acted)) == len(acted), 300, "every cluster destroyed or its plan rejected")
    found = runs.statuses()
    return {
        host: f"{found[host].value}: {runs.runs_of(host)[0].state_message}"
        for host in acted
        if found.get(host, Status.NOT_FOUND) not in gone
    }

if __name__ == "__main__":
    main()
