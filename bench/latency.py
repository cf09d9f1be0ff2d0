"""How long a person waits at each step of a build, beside the raw Terraform it wraps.

One run builds one small cluster on a sandbox whose services answer as soon as its servers
exist (boot time 0), through the same client as the web pages (mchub.orchestration.runs), polling
the cluster's status every 50 ms:
  submit (Apply)  → awaiting_approval visible (the plan is shown)
  approve (OK)    → build_running visible
  approve (OK)    → provisioning_success visible
  services answer → provisioning_success visible (a thread polls the cluster's JupyterHub
                    and FreeIPA URLs itself, every 50 ms, from the moment of approval)
Beside them, in a copy of the cluster's folder taken while the plan waits (without state,
.terraform, plans and logs), the same Terraform run by hand: init + plan, and apply (the
copy's resources are then destroyed). Medians over the runs; targets printed pass/fail:
plan visible within raw init+plan + 2 s, success visible within 3 s of the services answering.

    .venv/bin/python -m bench.latency [--runs N]
"""

import argparse
import shutil
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient

from bench.tools import cluster_spec, running_platform, wait_for_status
from mchub.cloud import connection
from mchub.cluster import lifecycle
from mchub.cluster.workspace import open_existing
from mchub.orchestration import runs
from mchub.status import Status
from mchub.terraform.runner import Terraform
from sandbox.cluster_services import service_urls
from tests.harness import LiveStack

POLL_SECONDS = 0.05
# What the copy leaves out, so that Terraform by hand does the work the flow did: no state,
# no providers installed, no plan or logs of the flow.
NOT_COPIED = ("terraform.tfstate*", ".terraform", ".terraform.lock.hcl", "*.tfplan", "*.plan.json", "logs", "plans")


@dataclass
class Timings:
    plan_visible: float
    """submit → awaiting_approval"""
    build_visible: float
    """approve → build_running"""
    success_visible: float
    """approve → provisioning_success"""
    services_answer: float
    """approve → both services answer 200"""
    raw_init_plan: float
    raw_apply: float
    started: float
    """submit → the run is RUNNING (worker pick-up, engine start), from the server's state history"""
    restarted: float
    """approve → the resumed run is RUNNING again (it runs from the top in a new process)"""

    @property
    def success_after_services(self) -> float:
        return self.success_visible - self.services_answer


class ServiceWatch(threading.Thread):
    """Notes when every URL first answers 200 (time.monotonic())."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.answered_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        pending = set(self.urls)
        with httpx.Client(timeout=2.0) as http:
            while pending and not self.stop.is_set():
                for url in list(pending):
                    try:
                        if http.get(url).status_code == 200:
                            pending.discard(url)
                    except httpx.TransportError:
                        pass
                if not pending:
                    self.answered_at = time.monotonic()
                    return
                time.sleep(POLL_SECONDS)


def timed(action: object) -> float:
    started = time.monotonic()
    action()  # type: ignore[operator]
    return time.monotonic() - started


@dataclass
class PlanShown:
    """A new cluster's plan, as a person waits for it, and the same plan by hand."""

    hostname: str
    run_id: UUID
    submitted_at: datetime
    plan_visible: float
    """submit → awaiting_approval"""
    raw_init_plan: float
    by_hand: Terraform
    """Terraform in the copy of the folder, its plan by-hand.tfplan made"""


def plan_of_a_new_cluster(stack: LiveStack, client: SyncPrefectClient) -> PlanShown:
    """Submit a new cluster and time its plan until it shows; then, while the run waits for
    approval (it holds no process then), the same init and plan by hand in a copy of its folder."""
    spec = cluster_spec("lat")
    host = spec.hostname
    request = lifecycle.new_cluster_request(spec, new=True)
    submitted = time.monotonic()
    submitted_at = datetime.now(UTC)
    run_id = runs.submit_build(request, host, True, client=client)
    plan_seen = wait_for_status(host, Status.AWAITING_APPROVAL, client=client, poll_seconds=POLL_SECONDS)
    folder = stack.settings.clusters_dir / host
    copy = stack.settings.home / "by-hand" / host
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(*NOT_COPIED))
    tf = Terraform(copy, log_dir=copy / "logs", env=connection.terraform_env())
    raw_init_plan = timed(lambda: (tf.init(), tf.plan("by-hand.tfplan")))
    return PlanShown(
        hostname=host, run_id=run_id, submitted_at=submitted_at,
        plan_visible=plan_seen - submitted, raw_init_plan=raw_init_plan, by_hand=tf,
    )


def one_run(stack: LiveStack) -> Timings:
    with stack.client() as client:
        shown = plan_of_a_new_cluster(stack, client)
        host, run_id, tf = shown.hostname, shown.run_id, shown.by_hand

        sandbox_urls = service_urls(stack.sandbox.url, host)
        watch = ServiceWatch(list(sandbox_urls.values()))
        approved = time.monotonic()
        approved_at = datetime.now(UTC)
        watch.start()
        runs.approve(host, client=client)
        build_seen = wait_for_status(
            host, (Status.BUILD_RUNNING, Status.PROVISIONING_RUNNING, Status.PROVISIONING_SUCCESS),
            client=client, poll_seconds=POLL_SECONDS,
        )
        success_seen = wait_for_status(host, Status.PROVISIONING_SUCCESS, client=client, poll_seconds=POLL_SECONDS)
        watch.stop.set()
        watch.join()
        if watch.answered_at is None:
            raise RuntimeError(f"{host}'s services never answered 200 at {sandbox_urls}")
        state = open_existing(stack.settings.clusters_dir, host).cluster_state()
        if state is None or state.service_urls != sandbox_urls:
            raise RuntimeError(f"{host}: cluster.json's service_urls are not the ones watched: {state}")
        running = [s.timestamp for s in client.read_flow_run_states(run_id) if s.type.value == "RUNNING"]

    raw_apply = timed(lambda: tf.apply("by-hand.tfplan"))
    tf.plan("by-hand-destroy.tfplan", destroy=True)
    tf.apply("by-hand-destroy.tfplan", step="destroy")
    return Timings(
        plan_visible=shown.plan_visible,
        build_visible=build_seen - approved,
        success_visible=success_seen - approved,
        services_answer=watch.answered_at - approved,
        raw_init_plan=shown.raw_init_plan,
        raw_apply=raw_apply,
        started=(running[0] - shown.submitted_at).total_seconds(),
        restarted=(running[-1] - approved_at).total_seconds(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with running_platform(boot_seconds=0) as stack:
        results = []
        for number in range(1, args.runs + 1):
            t = one_run(stack)
            results.append(t)
            print(
                f"run {number}: plan visible {t.plan_visible:.2f} s (raw init+plan {t.raw_init_plan:.2f} s), "
                f"run started {t.started:.2f} s, build visible {t.build_visible:.2f} s "
                f"(run restarted {t.restarted:.2f} s), services answer {t.services_answer:.2f} s, "
                f"success visible {t.success_visible:.2f} s (raw apply {t.raw_apply:.2f} s)",
                flush=True,
            )
        refresh = stack.settings.ui_refresh_seconds

    def median(field: str) -> float:
        return statistics.median(getattr(t, field) for t in results)

    plan, raw_plan = median("plan_visible"), median("raw_init_plan")
    success, raw_apply = median("success_visible"), median("raw_apply")
    after_services = median("success_after_services")
    print(f"\nmedians of {len(results)} runs (sandbox boot time 0, status polled every {POLL_SECONDS * 1000:.0f} ms)")
    print(f"{'step a person waits for':<42} {'MC Hub':>8} {'raw TF':>8} {'overhead':>9} {'ratio':>6}")
    print(f"{'submit → awaiting_approval (plan shown)':<42} {plan:>6.2f} s {raw_plan:>6.2f} s {plan - raw_plan:>7.2f} s "
          f"{plan / raw_plan:>5.2f}x")
    print(f"{'  of which submit → run RUNNING':<42} {median('started'):>6.2f} s")
    print(f"{'approve → build_running':<42} {median('build_visible'):>6.2f} s")
    print(f"{'  of which approve → resumed run RUNNING':<42} {median('restarted'):>6.2f} s")
    print(f"{'approve → provisioning_success':<42} {success:>6.2f} s {raw_apply:>6.2f} s {success - raw_apply:>7.2f} s "
          f"{success / raw_apply:>5.2f}x")
    print(f"{'approve → services answer 200':<42} {median('services_answer'):>6.2f} s")
    print(f"{'services answer → provisioning_success':<42} {after_services:>6.2f} s")
    print()
    verdict = {True: "PASS", False: "FAIL"}
    print(f"target: plan visible within raw init+plan + 2 s: {plan:.2f} s vs {raw_plan + 2:.2f} s "
          f"→ {verdict[plan <= raw_plan + 2]}")
    worst = max(t.success_after_services for t in results)
    print(f"target: success visible within 3 s of the services answering: median {after_services:.2f} s, "
          f"worst {worst:.2f} s → {verdict[after_services <= 3]}")
    print(f"the web pages re-read a busy cluster every ui_refresh_seconds = {refresh:g} s, "
          f"which adds up to {refresh:g} s on the page (the clusters list: every {2.5 * refresh:g} s)")


if __name__ == "__main__":
    main()
