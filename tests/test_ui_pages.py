"""Each web page's logic with Streamlit's AppTest, against the session's real Prefect server,
worker and sandbox cloud (live_stack): what the page shows for a cluster in each state,
and what its buttons start. The browser tests (test_ui_e2e.py) drive the same pages in
Chromium; these are quicker and reach the states a browser journey does not.
"""

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prefect.states import Scheduled
from streamlit.testing.v1 import AppTest

from mchub.cluster.workspace import open_existing
from mchub.orchestration import runs
from mchub.settings import get_settings
from mchub.status import BUILD_FLOW, HOSTNAME_LABEL, PHASE_LABEL, Status, cluster_status, cluster_tag
from tests.harness import LiveStack
from tests.test_flows import (
    PUBLIC_KEY,
    build,
    cluster_spec,
    ended,
    paused,
    submit_build,
)

pytestmark = pytest.mark.usefixtures("live_stack")  # every page reads the session's stack

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"
TIMEOUT = 60
HUB_ADMIN = {"sub": "ada", "name": "Ada Lovelace", "email": "ada@example.org", "groups": ["mchub-admins"]}
"""Who the pages are drawn for: a hub admin, who sees every cluster the tests make as the operator."""
FORM = "create-chemistry-sandbox"
"""The create form's widget keys: a hub admin's first project, on its cloud."""


def page(name: str, **query: str) -> AppTest:
    """The app (ui/app.py, whose navigation the pages link through) opened on one page, signed in
    as HUB_ADMIN."""
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.user = {**HUB_ADMIN, "is_logged_in": True, "iat": time.time()}
    app.run()  # registers the pages
    app.switch_page(f"views/{name}")
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def texts(app: AppTest) -> str:
    """Everything the page says, in one string."""
    parts = [element.value for kind in ("markdown", "error", "warning", "info", "success", "caption", "title")
             for element in getattr(app, kind)]
    links = [element.proto.label for element in app.get("page_link")]
    return "\n".join(str(part) for part in parts + links)


def button(app: AppTest, label: str) -> Callable[[], AppTest]:
    found = [b for b in app.button if b.label == label]
    assert found, f"no button {label!r} on the page; buttons: {[b.label for b in app.button]}"
    return found[0].click


def test_the_create_form_opens_with_defaults_from_the_cloud() -> None:
    app = page("create_cluster.py")
    assert not app.exception
    assert app.text_input(key=f"{FORM}-cluster_name").value  # a pet name
    assert app.selectbox(key=f"{FORM}-image").value == "Rocky-9"
    assert [app.text_input(key=f"{FORM}-row-{row}-prefix").value for row in range(3)] == ["mgmt", "login", "node"]
    assert "Instances" in texts(app) and "Floating IPs" in texts(app)  # the quota bars


def test_the_create_form_refuses_a_bad_key_beside_the_field_and_submits_nothing(live_stack: LiveStack) -> None:
    app = page("create_cluster.py")
    app.text_area(key=f"{FORM}-public_keys").set_value("ssh-rsa AAAAnot-a-key me@laptop").run()
    assert "public_keys" not in texts(app)  # the message is in words, not field paths
    assert "the key data is not valid base64; paste the line of the .pub file unchanged" in texts(app)
    before = sorted(live_stack.clusters_dir.iterdir())
    button(app, "Apply")().run()
    assert "Nothing was submitted" in texts(app)
    assert sorted(live_stack.clusters_dir.iterdir()) == before


def test_apply_submits_a_build_that_waits_for_approval_on_the_cluster_page() -> None:
    app = page("create_cluster.py")
    name = app.text_input(key=f"{FORM}-cluster_name").value
    app.text_area(key=f"{FORM}-public_keys").set_value(PUBLIC_KEY)
    app.number_input(key=f"{FORM}-vol-0-size").set_value(10)
    app.number_input(key=f"{FORM}-vol-1-size").set_value(10)
    app.number_input(key=f"{FORM}-vol-2-size").set_value(10).run()
    applied = button(app, "Apply")().run()
    hostname = f"{name}.sandbox.mchub.dev"
    submitted = runs.runs_of(hostname)
    assert submitted, texts(applied)
    run = submitted[0]
    paused(run.id)

    cluster = page("cluster.py", hostname=hostname)
    assert not cluster.exception
    assert "awaiting approval" in texts(cluster)
    assert "Plan: " + hostname in texts(cluster)
    button(cluster, "Reject")().run()
    assert ended(run.id).state_type == "CANCELLED"
    assert cluster_status(runs.runs_of(hostname)) == Status.NOT_FOUND  # a rejected new cluster builds nothing
    after = page("cluster.py", hostname=hostname)
    assert "The last plan was rejected" in texts(after) and "Nothing was changed." in texts(after)
    assert "knows no run" not in texts(after)


def test_the_list_shows_every_cluster_with_its_status() -> None:
    ready, waiting = cluster_spec(), cluster_spec()
    assert build(ready).state_type == "COMPLETED"
    run = paused(submit_build(waiting))
    app = page("clusters.py")
    shown = texts(app)
    assert ready.hostname in shown and waiting.hostname in shown
    assert "provisioning success" in shown and "awaiting approval" in shown
    runs.reject(waiting.hostname)
    ended(run.id)


def test_a_ready_clusters_page_shows_how_to_connect_and_the_modify_form_locks_what_cannot_change() -> None:
    spec = cluster_spec()
    assert build(spec).state_type == "COMPLETED"
    app = page("cluster.py", hostname=spec.hostname)
    shown = texts(app)
    assert "provisioning success" in shown
    assert "is built and its services answer" in shown
    assert spec.guest_passwd.get_secret_value() not in shown  # hidden until revealed

    key = "modify-" + spec.hostname.replace(".", "-")
    modify = page("modify_cluster.py", hostname=spec.hostname)
    assert modify.text_input(key=f"{key}-cluster_name").disabled
    assert modify.selectbox(key=f"{key}-image").disabled
    assert not modify.number_input(key=f"{key}-row-2-count").disabled


def test_a_run_queued_for_the_worker_says_it_waits_for_one() -> None:
    """A run the worker has not taken up again (all its MCHUB_MAX_CONCURRENT_RUNS slots busy):
    here one scheduled for later, in the phase an approved build resumes in."""
    hostname = cluster_spec().hostname
    with runs.connect() as client:
        deployment = client.read_deployment_by_name(f"{BUILD_FLOW}/{BUILD_FLOW}")
        queued = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"request_file": "unused.json", "hostname": hostname, "new": True},
            state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(hours=1)),
            tags=[cluster_tag(hostname)],
            labels={HOSTNAME_LABEL: hostname, PHASE_LABEL: "build"},
        )
        try:
            app = page("cluster.py", hostname=hostname)
            assert cluster_status(runs.runs_of(hostname)) == Status.BUILD_RUNNING
            assert "Waiting for a worker to carry on with the run" in texts(app)
        finally:
            client.delete_flow_run(queued.id)


def test_a_cluster_page_for_an_unknown_hostname_says_so() -> None:
    app = page("cluster.py", hostname="nothing-here.sandbox.mchub.dev")
    assert not app.exception
    assert "There is no cluster named" in texts(app)


def test_cancel_on_a_plan_waiting_for_approval_and_extend_on_the_cancelled_cluster() -> None:
    spec = cluster_spec(expiration_date=date.today() + timedelta(days=3))
    run = paused(submit_build(spec))
    app = page("cluster.py", hostname=spec.hostname)
    button(app, "Cancel")().run()
    assert ended(run.id).cancelled
    assert cluster_status(runs.runs_of(spec.hostname)) == Status.CANCELLED

    app = page("cluster.py", hostname=spec.hostname)
    shown = texts(app)
    assert "cancelled" in shown and "was cancelled by Ada Lovelace" in shown
    assert "nothing of it is left in the cloud" in shown
    assert not [b for b in app.button if b.label == "Cancel"]  # nothing acts on it any more
    assert f"Expires at the end of **{spec.expiration_date}** (UTC)" in shown
    proposed = spec.expiration_date + timedelta(days=get_settings().cluster_lifetime_days)
    assert app.date_input(key=f"extend-until-{spec.hostname}-{spec.expiration_date}").value == proposed
    button(app, "Extend")().run()
    assert not app.exception
    assert open_existing(get_settings().clusters_dir, spec.hostname).spec().expiration_date == proposed
    extended = page("cluster.py", hostname=spec.hostname)
    assert f"Expires at the end of **{proposed}** (UTC)" in texts(extended)
    again = proposed + timedelta(days=get_settings().cluster_lifetime_days)
    assert extended.date_input(key=f"extend-until-{spec.hostname}-{proposed}").value == again
