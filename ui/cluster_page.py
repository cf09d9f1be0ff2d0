"""A cluster's page: its status and the steps of its run, updating by itself; the plan to
approve or reject; per-resource progress while building; each probe's last answer while
provisioning; the connection details once it is up; its expiry and reminders, with Extend;
its Terraform logs; cancel, modify and destroy.

Only someone who may act on the cluster (mchub.access.rights) sees it: to anyone else it does
not exist. Admins also see its audit trail.

The status comes from the cluster's runs (mchub.orchestration.runs), the rest from its folder. The
part that changes is a fragment re-run every few seconds; when the status changes the
whole page is drawn again, so its buttons always match the status.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC

import streamlit as st
from pydantic import BaseModel

from mchub.access.people import Person
from mchub.access.rights import is_admin_of, may_act
from mchub.cluster import drift
from mchub.cluster.state import left_summary
from mchub.cluster.workspace import Workspace, latest_archive, ownership_of
from mchub.errors import MCHubError
from mchub.orchestration import audit, runs
from mchub.settings import get_settings
from mchub.status import DESTROY_FLOW, RunView, Status, cluster_status, current_run, failed_change
from ui.cluster_files import apply_progress, log_files, readable_log, workspace_of
from ui.drift_section import drift_section
from ui.expiry_section import expiry_section
from ui.loading import loading
from ui.made_of import made_of_section
from ui.page_errors import shown_errors
from ui.phases import phase_steps
from ui.plan_view import plan_view
from ui.probes import LogLine, last_answers
from ui.signed_in import session_over
from ui.status_chip import ERRORS, MOVING, status_chip
from ui.submit import submitted_here
from ui.success_dialog import connection_details, open_connection_details
from ui.text import literal

MODIFY_PAGE = "views/modify_cluster.py"
LIST_PAGE = "views/clusters.py"
# A status no one is acting on can still be changed from elsewhere (the CLI, the cull):
# the page looks again now and then.
QUIET_REFRESH_FACTOR = 5


class ClusterView(BaseModel):
    """A cluster as one read of its runs shows it."""

    hostname: str
    runs: list[RunView]
    """Newest first."""
    status: Status

    @property
    def current(self) -> RunView | None:
        """The run the status comes from (mchub.status.current_run)."""
        return current_run(self.runs)

    @property
    def busy(self) -> bool:
        return bool(self.runs) and self.runs[0].busy


def read_cluster(hostname: str) -> ClusterView:
    found = runs.runs_of(hostname)
    return ClusterView(hostname=hostname, runs=found, status=cluster_status(found, drift.last_check_of(hostname)))


def cluster_page(hostname: str, person: Person) -> None:
    st.title(hostname)
    ws = workspace_of(hostname)
    ownership = ownership_of(get_settings().clusters_dir, hostname)
    if ws is None and submitted_here(hostname) and read_cluster(hostname).busy:
        # Asked for from this session: its run is making the folder that records its owner.
        loading("Preparing the cluster's folder…")
        time.sleep(get_settings().ui_refresh_seconds)
        st.rerun()
    if not may_act(person, ownership):
        # The same words whether it exists or not: its name tells nothing to who may not see it.
        st.warning(f"There is no cluster named {literal(hostname)} that you may see.")
        st.page_link(LIST_PAGE, label="All clusters", icon=":material/list:")
        return
    try:
        view = read_cluster(hostname)
    except runs.RunsError as error:
        st.error(f"**The status of {literal(hostname)} cannot be read.** {literal(str(error))}")
        if ws is not None:
            _details(ws, None)
        return
    if not view.runs and ws is None:
        st.warning(f"There is no cluster named {literal(hostname)}.")
        st.page_link(LIST_PAGE, label="All clusters", icon=":material/list:")
        return
    if ownership is not None:
        st.caption(f"Owner: {literal(ownership.owner.label())} · project {literal(ownership.project)}")
    _header(view, ws, person)
    _open_details_once(view, ws)
    interval = get_settings().ui_refresh_seconds
    run_every = interval if view.status in MOVING else interval * QUIET_REFRESH_FACTOR
    st.fragment(_live, run_every=run_every)(hostname, view.status, view.busy, person)
    if ws is not None:
        expiry_section(ws, view.busy, person)
        _details(ws, view)
    elif (archived := latest_archive(get_settings().clusters_dir, hostname)) is not None:
        # A destroyed cluster: its logs stay readable in its archived folder.
        _details(archived, view)
    if is_admin_of(person, ownership):
        _audit(hostname)


def _header(view: ClusterView, ws: Workspace | None, person: Person) -> None:
    chip, cancel, modify, destroy = st.columns([5, 1, 1, 1], vertical_alignment="center")
    # Keyed: its container is marked st-key-cluster-status, for the browser tests.
    with chip, st.container(key="cluster-status"):
        status_chip(view.status)
    blocked = view.busy or ws is None
    why = "A run is acting on the cluster; wait for it to end." if view.busy else "The cluster has no folder."
    with cancel:
        # Shown only while a run acts on the cluster: the one thing there is then to do.
        if view.busy and st.button("Cancel", icon=":material/stop_circle:", key="cancel",
                                   help="Stops the run; Terraform saves what it made so far."):
            _submit(lambda: runs.cancel(view.hostname, person))
    with modify:
        st.page_link(MODIFY_PAGE, label="Modify", icon=":material/edit:", query_params={"hostname": view.hostname},
                     disabled=blocked, help=why if blocked else "Change instances, volumes, keys, expiration")
    with destroy:
        if st.button("Destroy", icon=":material/delete_forever:", disabled=blocked, key="destroy",
                     help=why if blocked else "Shows what would be destroyed; nothing goes before you confirm."):
            _submit(lambda: runs.submit_destroy(view.hostname, person=person))


def _open_details_once(view: ClusterView, ws: Workspace | None) -> None:
    """The connection details pop up when this page sees the cluster become ready (not on
    every visit to a cluster that was ready already: the page shows them anyway)."""
    seen = f"status-seen-{view.hostname}"
    before = st.session_state.get(seen)
    st.session_state[seen] = view.status
    if view.status != Status.PROVISIONING_SUCCESS or before in (None, Status.PROVISIONING_SUCCESS) or ws is None:
        return
    state = ws.cluster_state()
    if state is not None:
        open_connection_details(state, key=f"dialog-{view.hostname}")


@shown_errors("The cluster's status")
def _live(hostname: str, drawn: Status, was_busy: bool, person: Person) -> None:
    if session_over():
        st.rerun()  # the whole app, which asks to sign in again
    view = read_cluster(hostname)
    if view.status != drawn or view.busy != was_busy:
        st.rerun()  # the whole page: its buttons and dialog follow the new status
    newest = view.runs[0] if view.runs else None
    if newest is not None and newest.rejected:
        who = f" by {newest.answered_by}" if newest.answered_by else ""
        why = f": {newest.state_message}" if newest.state_message else ""
        st.info(f"The last plan was rejected{literal(who + why)}. Nothing was changed.", icon=":material/block:")
    failed = failed_change(view.runs)
    if failed is not None:
        why = f": {failed.reason}" if failed.reason else ""
        made = f"The last change was not made ({literal(failed.describe())}{literal(why)})"
        st.warning(f"{made}; the cluster is as it was.", icon=":material/undo:")
    run = view.current
    if run is None:
        if newest is None:  # else every run was a rejected plan, as said above
            st.info("MC Hub knows no run of this cluster (Prefect's history may have been reset).")
        return
    phase_steps(run)
    if run.answer and run.answered_by:
        st.caption(f"Plan {run.answer} by {literal(run.answered_by)}")
    ws = workspace_of(hostname)
    status = view.status
    if status == Status.CREATED:
        loading("Waiting for a worker to start the run…")
    elif run.state_type in ("SCHEDULED", "PENDING"):
        # Resumed after its approval, or queued behind MCHUB_MAX_CONCURRENT_RUNS others.
        loading("Waiting for a worker to carry on with the run…")
    elif status == Status.PLAN_RUNNING:
        loading("Terraform is working out what to change…")
    elif status == Status.AWAITING_APPROVAL:
        _approval(view, run, person)
    elif run.state_type == "CANCELLING":
        loading("Cancelling: Terraform is stopping and saving its state…")
    elif status in (Status.BUILD_RUNNING, Status.DESTROY_RUNNING) and run.phase in ("build", "destroy"):
        _progress(run, ws)
    elif status == Status.DESTROY_RUNNING:
        loading("Terraform is working out what destroying the cluster removes…")
    elif status == Status.PROVISIONING_RUNNING:
        _probes(run, ws)
    elif status == Status.PROVISIONING_SUCCESS:
        _ready(ws)
    elif status == Status.DRIFTED:
        if (check := drift.last_check_of(hostname)) is not None:
            drift_section(hostname, check, person, _submit)
        _ready(ws)
    elif status in ERRORS:
        _failure(view, run, ws, person)
    elif status == Status.CANCELLED:
        _cancelled(view, run, ws, person)
    elif status == Status.DESTROYED:
        st.info(literal(run.state_message or "The cluster is destroyed."), icon=":material/delete:")


def _approval(view: ClusterView, run: RunView, person: Person) -> None:
    markdown = runs.plan_markdown(run)
    destroying = run.flow_name == DESTROY_FLOW
    with st.container(border=True):
        if markdown:
            plan_view(markdown)
        else:
            st.warning("The run published no plan summary; read the plan log below before answering.")
    st.caption(
        "Nothing is destroyed before you type the hostname and press Destroy." if destroying
        else "Nothing changes in the cloud before you press OK."
    )
    comment = st.text_input("Comment (optional)", key=f"comment-{run.id}")
    if destroying:
        typed = st.text_input(f"Type {view.hostname} to destroy it", key=f"confirm-{run.id}",
                              placeholder=view.hostname)
    approve, refuse, _ = st.columns([1, 1, 4])
    if destroying:
        ok = approve.button("Destroy", type="primary", icon=":material/delete_forever:", key=f"ok-{run.id}",
                            disabled=typed.strip() != view.hostname, width="stretch")
    else:
        ok = approve.button("OK", type="primary", icon=":material/check:", key=f"ok-{run.id}", width="stretch")
    reject = refuse.button("Keep the cluster" if destroying else "Reject", icon=":material/close:",
                           key=f"reject-{run.id}", width="stretch")
    if ok:
        _submit(lambda: runs.approve(view.hostname, comment=comment, person=person))
    elif reject:
        _submit(lambda: runs.reject(view.hostname, comment=comment, person=person))


def _progress(run: RunView, ws: Workspace | None) -> None:
    step = "destroy" if run.flow_name == DESTROY_FLOW else "apply"
    progress = apply_progress(ws, step, run.created) if ws is not None else None
    if progress is None or not progress.planned:
        loading(run.progress or "Terraform is starting…")
        return
    st.progress(progress.percent / 100, text=progress.line())
    table = [
        {
            "resource": resource.label,
            "action": resource.action,
            "state": resource.state,
            "seconds": round(resource.elapsed_seconds),
            "error": resource.error or "",
        }
        for resource in progress.resources.values()
    ]
    st.dataframe(table, hide_index=True, width="stretch")


def _probes(run: RunView, ws: Workspace | None) -> None:
    state = ws.cluster_state() if ws is not None else None
    loading("The machines are up; waiting for Puppet to configure JupyterHub and FreeIPA…")
    if state is None:
        return
    logs = [LogLine(message=log.message, timestamp=log.timestamp) for log in runs.run_logs(run.id)]
    for answer in last_answers(state.service_urls, logs):
        icon = ":green[:material/check_circle:]" if answer.up else ":orange[:material/hourglass_top:]"
        when = f" ({answer.at.astimezone(UTC):%H:%M:%S} UTC)" if answer.at else ""
        st.markdown(f"{icon} **{literal(answer.service)}** {literal(answer.url)}: {literal(answer.answer)}{when}")


def _ready(ws: Workspace | None) -> None:
    state = ws.cluster_state() if ws is not None else None
    if state is None:
        st.success("The cluster is up.")
        return
    with st.container(border=True):
        connection_details(state, key=f"page-{state.hostname}")
    made_of_section(state)


def _failure(view: ClusterView, run: RunView, ws: Workspace | None, person: Person) -> None:
    st.error(f"**{literal(run.describe())} failed.**\n\n{literal(run.state_message or 'No reason was given.')}",
             icon=":material/error:")
    if ws is not None and not view.busy:
        st.caption("Fix the cause (the Terraform logs below tell more), then try again or modify the cluster.")
    _retry(view, run, ws, person)


def _cancelled(view: ClusterView, run: RunView, ws: Workspace | None, person: Person) -> None:
    left = left_summary(ws.left_in_cloud() if ws is not None else [])
    with st.container(key="cancelled"):
        by = f" by {run.cancelled_by}" if run.cancelled_by else ""
        st.warning(f"**{literal(run.describe())} was cancelled{literal(by)}** during its "
                   f"{literal(run.phase or 'start')}; {literal(left)}.", icon=":material/cancel:")
    _retry(view, run, ws, person)


def _retry(view: ClusterView, run: RunView, ws: Workspace | None, person: Person) -> None:
    """What to do after a run that did not finish: try it again."""
    if ws is None or view.busy:
        return
    if run.flow_name == DESTROY_FLOW:
        if st.button("Try destroying again", icon=":material/refresh:", key=f"retry-{run.id}"):
            _submit(lambda: runs.submit_destroy(view.hostname, person=person))
    elif st.button("Try again", icon=":material/refresh:", key=f"retry-{run.id}",
                   help="Plan and apply the cluster's current spec again."):
        _submit(lambda: runs.submit_repair(view.hostname, person=person))


def _submit(action: Callable[[], object]) -> None:
    """Do an action on the cluster's runs, then draw the page again; refusals are shown."""
    try:
        action()
    except MCHubError as error:
        st.error(literal(str(error)))
        return
    st.rerun()


def _details(ws: Workspace, view: ClusterView | None) -> None:
    with st.expander("Terraform logs", icon=":material/description:"):
        files = log_files(ws)
        if not files:
            st.caption("No Terraform command has run yet.")
        else:
            chosen = st.selectbox("Log", files, format_func=lambda path: path.name, key=f"log-{ws.hostname}")
            with st.container(key="terraform-log"):
                st.code(readable_log(chosen), language=None, height=400)
    if view is not None and view.runs:
        with st.expander("Runs", icon=":material/history:"):
            history = [
                {
                    "started": run.created.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "flow": run.flow_name,
                    "state": run.state_name,
                    "phase": run.phase_label or "",
                    "answered by": run.answered_by or "",
                    "message": run.state_message or "",
                }
                for run in view.runs
            ]
            st.dataframe(history, hide_index=True, width="stretch")
            _run_log(ws.hostname, view.runs)


def _run_log(hostname: str, history: list[RunView]) -> None:
    """What a run told Prefect as it went: its steps, who answered its plan, each probe's answer."""
    chosen = st.selectbox(
        "Run log", history, key=f"run-log-{hostname}",
        format_func=lambda run: f"{run.created.astimezone(UTC):%Y-%m-%d %H:%M} UTC · {run.describe()}",
    )
    lines = [
        f"{log.timestamp.astimezone(UTC):%H:%M:%S} {logging.getLevelName(log.level):<7} {log.message}"
        for log in runs.run_logs(chosen.id)
    ]
    with st.container(key="run-log"):
        st.code("\n".join(lines) or "The run logged nothing.", language=None, height=300)


def _audit(hostname: str) -> None:
    """Who did what to the cluster, for its admins (flows.audit's events)."""
    with st.expander("Audit trail", icon=":material/policy:"), st.container(key="audit-trail"):
        with runs.session(None) as client:
            trail = audit.audit_trail(client, hostname)
        if not trail:
            st.caption("Nothing recorded yet.")
            return
        for entry in trail:
            comment = f": {literal(entry.detail)}" if entry.detail else ""
            st.markdown(f"{entry.occurred.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC · **{entry.action}** by "
                        f"{literal(entry.by)}{comment}")
