"""The clusters list: every cluster the signed-in person may act on (mchub.access.rights), with
its owner, project, status chip, age, expiration and actions.

The statuses of all clusters come from one query (runs.statuses()); ages and expiration
dates from their folders. Clusters with runs but no folder are destroyed ones (their
folders are archived); they are listed only on request.
"""

from datetime import UTC, date, datetime

import streamlit as st
from pydantic import BaseModel

from mchub.access.people import Person
from mchub.access.rights import Ownership, may_act
from mchub.cluster.workspace import list_hostnames, ownership_of
from mchub.cluster import drift, shared_store
from mchub.orchestration import runs
from mchub.settings import get_settings
from mchub.spec.model import SpecError
from mchub.status import Status
from ui.cluster_files import workspace_of
from ui.page_errors import shown_errors
from ui.signed_in import session_over
from ui.status_chip import MOVING, status_chip
from ui.text import literal

CLUSTER_PAGE = "views/cluster.py"
MODIFY_PAGE = "views/modify_cluster.py"
CREATE_PAGE = "views/create_cluster.py"
LIST_REFRESH_FACTOR = 5
"""The list is re-read every ui_refresh_seconds × this."""


class ClusterRow(BaseModel):
    hostname: str
    status: Status | None
    """None when the runs could not be read."""
    created: datetime | None
    expiration: date | None
    has_folder: bool
    drift: list[str] = []
    """A drifted cluster: what its drift check's plan would change."""
    ownership: Ownership | None = None

    @property
    def busy(self) -> bool:
        return self.status in MOVING or self.status == Status.AWAITING_APPROVAL


def cluster_rows(statuses: dict[str, Status] | None, hostnames: list[str]) -> list[ClusterRow]:
    """One row per cluster that has a folder or a status; `statuses` None: unknown."""
    known = statuses or {}
    rows = []
    for hostname in sorted(set(known) | set(hostnames)):
        ws = workspace_of(hostname) if hostname in hostnames else None
        expiration = None
        if ws is not None:
            try:
                expiration = ws.spec().expiration_date
            except SpecError:
                expiration = None  # a spec being written, or damaged: the cluster's page says more
        rows.append(
            ClusterRow(
                hostname=hostname,
                status=known.get(hostname, Status.NOT_FOUND) if statuses is not None else None,
                created=ws.created_at() if ws is not None else None,
                expiration=expiration,
                has_folder=ws is not None,
                drift=_drift_lines(hostname) if known.get(hostname) == Status.DRIFTED else [],
                ownership=ownership_of(get_settings().clusters_dir, hostname),
            )
        )
    return rows


def _drift_lines(hostname: str) -> list[str]:
    check = drift.last_check_of(hostname)
    return check.summary.lines() if check is not None else []


def age(since: datetime | None) -> str:
    """"3 d", "5 h", "12 min": how long ago, roughly."""
    if since is None:
        return ""
    seconds = (datetime.now(UTC) - since).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "just now"


def clusters_list(person: Person) -> None:
    head, create = st.columns([5, 1], vertical_alignment="bottom")
    head.title("Clusters")
    create.page_link(CREATE_PAGE, label="Create a cluster", icon=":material/add_circle:")
    show_destroyed = st.toggle("Show destroyed clusters", key="show-destroyed")
    st.fragment(_table, run_every=get_settings().ui_refresh_seconds * LIST_REFRESH_FACTOR)(show_destroyed, person)


@shown_errors("The clusters list")
def _table(show_destroyed: bool, person: Person) -> None:
    if session_over():
        st.rerun()  # the whole app, which asks to sign in again
    shared_store.pull()
    try:
        statuses: dict[str, Status] | None = runs.statuses()
    except runs.RunsError as error:
        st.error(f"**Statuses cannot be read.** {literal(str(error))}")
        statuses = None
    rows = [
        row for row in cluster_rows(statuses, list_hostnames(get_settings().clusters_dir))
        if (show_destroyed or row.has_folder) and may_act(person, row.ownership)
    ]
    if not rows:
        st.info("No clusters yet that you may see.")
        return
    widths = [4, 2, 1, 2, 1, 1.4, 3]
    for column, title in zip(st.columns(widths), ["Hostname", "Owner", "Project", "Status", "Age", "Expires", ""]):
        column.caption(title)
    for row in rows:
        name, owner, project, chip, old, expires, actions = st.columns(widths, vertical_alignment="center")
        name.page_link(CLUSTER_PAGE, label=row.hostname, query_params={"hostname": row.hostname})
        owner.write(literal(row.ownership.owner.name) if row.ownership else "—")
        project.write(literal(row.ownership.project) if row.ownership else "—")
        with chip:
            if row.status is not None:
                status_chip(row.status)
            if row.drift:
                st.caption(literal("; ".join(row.drift)))
        old.write(age(row.created))
        expires.write(row.expiration.isoformat() if row.expiration else "never")
        with actions:
            _actions(row, person)


def _actions(row: ClusterRow, person: Person) -> None:
    modify, destroy = st.columns(2)
    blocked = row.busy or not row.has_folder
    modify.page_link(MODIFY_PAGE, label="Modify", icon=":material/edit:",
                     query_params={"hostname": row.hostname}, disabled=blocked)
    # Destroying starts with a destroy plan; the cluster's page shows it and asks to confirm.
    if destroy.button("Destroy", icon=":material/delete_forever:", key=f"destroy-{row.hostname}", disabled=blocked):
        try:
            runs.submit_destroy(row.hostname, person=person)
        except runs.RunsError as error:
            st.error(literal(str(error)))
            return
        st.switch_page(CLUSTER_PAGE, query_params={"hostname": row.hostname})
