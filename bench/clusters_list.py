"""The clusters list with many clusters: the time of runs.statuses() (what the list page
reads) and the HTTP requests it sends to Prefect's API, for a few clusters and for many.

The clusters' runs are made directly in the state the flows leave them (no flow runs):
a third up (Completed, phase provisioning), a third waiting for approval (Paused, phase
approval), a third failed (Failed, phase build), one run each. Measured side by side in one
run at --few (default 50) then --many (default 500) clusters: requests counted by an httpx
event hook on a new client (its one-off CSRF token request left out), and the median time of
--runs calls on one open client. Targets printed pass/fail: the request count constant or
growing only by one per page of 200 runs, and the time under 1 s.

    .venv/bin/python -m bench.clusters_list [--few N] [--many N] [--runs N]
"""

import argparse
import math
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import httpx
from prefect.states import Completed, Failed, Paused, State

from bench.tools import running_platform
from mchub.orchestration import runs
from mchub.status import BUILD_FLOW, HOSTNAME_LABEL, PHASE_LABEL, Status, cluster_tag
from tests.harness import LiveStack

LEFT_AS = (
    (Completed, "provisioning", Status.PROVISIONING_SUCCESS),
    (Paused, "approval", Status.AWAITING_APPROVAL),
    (lambda: Failed(message="apply failed"), "build", Status.BUILD_ERROR),
)


def make_clusters(stack: LiveStack, deployment: UUID, first: int, count: int) -> dict[str, Status]:
    """Runs for clusters number first .. first+count-1; their expected statuses by hostname."""

    def make(number: int) -> tuple[str, Status]:
        host = f"list{number:04d}.sandbox.mchub.dev"
        new_state, phase, status = LEFT_AS[number % len(LEFT_AS)]
        state: State = new_state()
        with stack.client() as client:
            client.create_flow_run_from_deployment(
                deployment,
                parameters={"request_file": "/nonexistent.yaml", "hostname": host, "new": True},
                state=state,
                tags=[cluster_tag(host)],
                labels={HOSTNAME_LABEL: host, PHASE_LABEL: phase},
            )
        return host, status

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(make, range(first, first + count)))


def requests_of_statuses(stack: LiveStack) -> tuple[list[str], dict[str, Status]]:
    sent: list[httpx.Request] = []
    with stack.client(event_hooks={"request": [sent.append]}) as client:
        found = runs.statuses(client=client)
    return [f"{r.method} {r.url.path}" for r in sent if not r.url.path.endswith("/csrf-token")], found


def median_seconds(stack: LiveStack, times: int) -> tuple[float, float]:
    """Median time of statuses() on one open client, and the time of one on a new client."""
    with stack.client() as client:
        runs.statuses(client=client)  # the page's client is open already
        durations = []
        for _ in range(times):
            started = time.perf_counter()
            runs.statuses(client=client)
            durations.append(time.perf_counter() - started)
    started = time.perf_counter()
    runs.statuses()
    return statistics.median(durations), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--few", type=int, default=50)
    parser.add_argument("--many", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    rows = []
    with running_platform(boot_seconds=0) as stack:
        with stack.client() as client:
            deployment = client.read_deployment_by_name(f"{BUILD_FLOW}/{BUILD_FLOW}").id
        expected: dict[str, Status] = {}
        for size in (args.few, args.many):
            started = time.monotonic()
            expected |= make_clusters(stack, deployment, len(expected), size - len(expected))
            made = time.monotonic() - started
            requests, found = requests_of_statuses(stack)
            wrong = {h: (found.get(h), s) for h, s in expected.items() if found.get(h) != s}
            if wrong:
                raise RuntimeError(f"statuses() is wrong for {len(wrong)} clusters, e.g. {list(wrong.items())[:3]}")
            reused, fresh = median_seconds(stack, args.runs)
            rows.append((size, requests, reused, fresh, Counter(found.values())))
            print(f"(made {size} clusters' runs, {made:.1f} s)", flush=True)

    print(f"\n{'clusters':>8} {'requests':>9} {'expected':>9} {'median, open client':>20} {'new client':>11}  statuses")
    for size, requests, reused, fresh, counts in rows:
        pages = 1 + max(1, math.ceil(size / runs.PAGE_SIZE))  # the flows' ids, then a page per 200 runs
        print(f"{size:>8} {len(requests):>9} {pages:>9} {reused * 1000:>17.0f} ms {fresh * 1000:>8.0f} ms  "
              + ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items())))
    (few, few_requests, *_), (many, many_requests, many_time, many_fresh, _) = rows
    print(f"requests for {many}: " + "; ".join(f"{n} × {r}" for r, n in Counter(many_requests).items()))
    extra = len(many_requests) - len(few_requests)
    allowed = math.ceil(many / runs.PAGE_SIZE) - math.ceil(few / runs.PAGE_SIZE)
    verdict = {True: "PASS", False: "FAIL"}
    print(f"target: requests constant or one more per page of {runs.PAGE_SIZE} runs: {len(few_requests)} for {few}, "
          f"{len(many_requests)} for {many} (+{extra}, pages allow +{allowed}) → {verdict[extra <= allowed]}")
    print(f"target: statuses() of {many} clusters under 1 s: {many_time * 1000:.0f} ms on an open client, "
          f"{many_fresh * 1000:.0f} ms on a new one → {verdict[max(many_time, many_fresh) < 1]}")


if __name__ == "__main__":
    main()
