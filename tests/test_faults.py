"""Faults a running hub meets, each with a real part failing: the worker dying mid-apply,
Prefect's server restarting while a plan waits, the cloud not answering while the form
loads, two actions started at once on one cluster.

Terraform failing mid-apply (a build_error whose state is kept, then a retry that builds the
rest) is test_flows.py::test_a_terraform_failure_is_a_build_error_and_a_retry_builds_the_rest.

The worker and the server that these tests kill and restart are those of a stack of their
own (`own_stack`, in conftest.py: a second Prefect part, started with the same code as
`mchub up`, on the session's sandbox), so that the session's stack, which the other tests
use, is never touched.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from flows.cluster_lock import lock_name
from mchub.access.people import operator
from mchub.cloud.connection import CloudError
from mchub.cloud.resources import ResourceReader
from mchub.cluster.lifecycle import REQUESTS
from mchub.orchestration import runs
from mchub.orchestration.stack import worker_name
from mchub.settings import get_settings
from mchub.status import Status, cluster_status
from sandbox.launcher import SandboxCloud
from tests import test_flows
from tests.harness import LiveStack
from tests.reliability_helpers import (
    cloud_usage,
    files_under,
    finished,
    mchub,
    mchub_process,
)
from tests.test_flows import (
    build,
    cluster_spec,
    destroy,
    ended,
    logs_with,
    paused,
    processes_in,
    processes_left,
    provisioners_in,
    submit_build,
    wait_for,
)
from tests.test_lifecycle import HELD_IN_BUILD_SECONDS
from tests.test_ui_pages import FORM, button, page, texts
from ui.text import literal

# test_flows's fixtures: sandbox_knobs used by name; roomy_sandbox (autouse), quotas that
# fit whatever the tests before left standing.
sandbox_knobs = test_flows.sandbox_knobs
roomy_sandbox = test_flows.roomy_sandbox


def test_a_plan_outlives_a_server_restart_and_a_build_its_worker_dying_mid_apply(
    on_own_stack: LiveStack, sandbox_knobs: Callable[..., None]
) -> None:
    """One cluster through three faults (each costs a build, so they share one): its plan
    waits through a restart of Prefect's server and is approved after it; then the worker
    is killed mid-apply and its run's processes, Terraform's included, end with it (Terraform
    interrupted: it saves its state, its provisioners undo what they half made); its run is
    found crashed, and the cluster builds again, its prober killed while it provisions, and
    is destroyed leaving nothing in the cloud (the sandbox adopts nothing: a leaked object
    would still be there)."""
    own = on_own_stack
    used_before = cloud_usage(own.sandbox)
    spec = cluster_spec()
    host = spec.hostname
    run_id = submit_build(spec)
    paused(run_id)

    own.restart_part("prefect server")
    assert cluster_status(runs.runs_of(host)) == Status.AWAITING_APPROVAL
    sandbox_knobs(build_seconds=HELD_IN_BUILD_SECONDS)
    approved = mchub("approve", host, "--comment", "after the restart")
    assert approved.code == 0, approved.err
    folder = own.settings.clusters_dir / host
    midway = wait_for(run_id, lambda run: bool(provisioners_in(folder, b"create-server")))
    assert midway.phase == "build"
    approved_by = f"approved by {operator().label()}"
    assert f"{approved_by}: after the restart" in logs_with(run_id, approved_by)

    own.stop_part("prefect worker", kill=True)
    assert processes_left(run_id, within=20) == [], "the run's processes outlived its worker"
    assert processes_in(folder) == []
    assert runs.read_run(run_id).state_type == "RUNNING"  # nobody told Prefect: the cluster looks busy
    assert cluster_status(runs.runs_of(host)) == Status.BUILD_RUNNING

    reconciled = mchub("reconcile", "--worker", worker_name(get_settings()))
    assert reconciled.code == 0, reconciled.err
    assert f"({run_id}) was left unfinished by a dead worker: marked crashed" in reconciled.out
    crashed = runs.read_run(run_id)
    assert crashed.state_type == "CRASHED"
    assert "run the action again" in (crashed.state_message or "")
    assert cluster_status(runs.runs_of(host)) == Status.BUILD_ERROR

    own.start_part("prefect worker")
    sandbox_knobs(build_seconds=0)
    # The dead run still holds the cluster's Terraform lock (its lease lasts 300 s), but it is
    # known dead now: the retry frees the lock and goes ahead at once.
    with runs.connect() as client:
        assert client.read_global_concurrency_limit_by_name(lock_name(host)).active_slots == 1
    # The retry's services answer after a while; the prober that waits for them dies, and
    # the one started after it finds the cluster still waiting and sees it up.
    sandbox_knobs(boot_seconds=20)
    retry_id = submit_build(spec, new=False)
    paused(retry_id)
    runs.approve(host)
    wait_for(retry_id, lambda run: run.phase == "provisioning", timeout=120)
    own.stop_part("prober", kill=True)
    assert cluster_status(runs.runs_of(host)) == Status.PROVISIONING_RUNNING
    own.start_part("prober")
    retried = ended(retry_id)
    assert retried.state_type == "COMPLETED", retried.state_message
    assert cluster_status(runs.runs_of(host)) == Status.PROVISIONING_SUCCESS
    assert "jupyterhub is up at" in logs_with(retry_id, "jupyterhub is up at")
    assert cloud_usage(own.sandbox)["clusters"][host] == 3

    gone = destroy(host)
    assert gone.state_type == "COMPLETED", gone.state_message
    assert cluster_status(runs.runs_of(host)) == Status.DESTROYED
    assert cloud_usage(own.sandbox) == used_before  # no server, volume or floating IP left behind


def test_a_worker_that_seldom_polls_starts_runs_when_they_are_submitted_and_answered(
    on_own_stack: LiveStack,
) -> None:
    """Submitting a run and answering its plan wake the worker (mchub.orchestration.worker_wakeup), so a
    run starts without waiting for the worker's next poll. This worker polls every ten
    minutes: only the wakes can start the run and its resumption within these timeouts."""
    on_own_stack.restart_part("prefect worker", PREFECT_WORKER_QUERY_SECONDS="600")
    try:
        spec = cluster_spec()
        run_id = submit_build(spec)
        wait_for(run_id, lambda run: run.state_type == "PAUSED", timeout=30)
        runs.reject(spec.hostname, comment="woken twice")
        rejected = ended(run_id, timeout=30)
    finally:
        on_own_stack.restart_part("prefect worker")
    assert rejected.state_type == "CANCELLED"
    assert rejected.state_message == "woken twice"


# --- on the session's stack ------------------------------------------------------------


def test_a_cloud_that_stops_answering_is_reported_with_what_to_do(
    sandbox_launcher: Callable[[Path], SandboxCloud], tmp_path: Path
) -> None:
    cloud = sandbox_launcher(tmp_path / "data")
    reader = ResourceReader("sandbox", clouds_yaml=cloud.clouds_yaml)
    assert reader.read().flavors  # it answered once: the connection is open
    cloud.stop()
    with pytest.raises(CloudError) as refused:
        reader.read(fresh_quotas=True)
    message = str(refused.value)
    assert f"cloud 'sandbox' does not answer at {cloud.url}" in message, message
    assert "try again" in message, message


def test_the_create_form_says_the_cloud_does_not_answer_and_offers_to_try_again(
    live_stack: LiveStack, sandbox_launcher: Callable[[Path], SandboxCloud], tmp_path: Path
) -> None:
    cloud = sandbox_launcher(tmp_path / "data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MCHUB_CLOUDS_YAML", str(cloud.clouds_yaml))
        patch.setenv("MCHUB_QUOTA_CACHE_SECONDS", "0")  # every load asks the cloud
        get_settings.cache_clear()
        try:
            app = page("create_cluster.py")
            assert not app.exception and not app.error
            assert app.text_input(key=f"{FORM}-cluster_name").value
            cloud.stop()
            app.run()  # the page loaded again (a rerun, as any click on it does)
        finally:
            get_settings.cache_clear()
    assert not app.exception
    shown = texts(app)
    button(app, "Try again")  # offered
    assert "The cloud cannot be reached, so no cluster can be created or changed now." in shown
    assert literal(f"cloud 'sandbox' does not answer at {cloud.url}") in shown  # as markdown shows it
    assert not [b for b in app.button if b.label == "Apply"]


def test_two_creates_of_one_cluster_at_once_build_it_once(live_stack: LiveStack, tmp_path: Path) -> None:
    """Two `mchub create` of one spec started together (a double submission): one run goes
    on to its plan; the other is refused, by the command or by its run, naming the holder."""
    spec = cluster_spec()
    host = spec.hostname
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text(yaml.safe_dump(spec.to_data(include_secrets=True)))
    requests = live_stack.clusters_dir / REQUESTS
    requests_before = files_under(requests)
    answers = [finished(process) for process in [mchub_process("create", str(spec_file), "--no-wait") for _ in range(2)]]

    refused_by_command = [answer.err for answer in answers if answer.code != 0]
    settled = [wait_for(run.id, lambda run: run.final or run.state_type == "PAUSED") for run in runs.runs_of(host)]
    waiting = [run for run in settled if run.state_type == "PAUSED"]
    refused_runs = [run for run in settled if run.final]
    assert len(waiting) == 1, [run.describe() for run in settled]
    assert len(refused_by_command) + len(refused_runs) == 1, (refused_by_command, [r.describe() for r in refused_runs])
    for message in refused_by_command:
        assert f"{host} is busy: build-cluster run '{waiting[0].name}'" in message, message
    for run in refused_runs:
        assert run.state_type == "FAILED"
        assert f"{host} is busy: build-cluster run '{waiting[0].name}'" in (run.state_message or ""), run.state_message
    assert cluster_status(runs.runs_of(host)) == Status.AWAITING_APPROVAL

    runs.reject(host)
    assert ended(waiting[0].id).state_type == "CANCELLED"
    # Neither left its request (which holds the guest password) behind.
    assert files_under(requests) == requests_before
