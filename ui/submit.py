"""Apply: hand a checked spec to the build-cluster deployment, then follow it on the cluster's page."""

import streamlit as st

from mchub.access.people import Person
from mchub.errors import MCHubError
from mchub.orchestration import runs
from ui.form_check import FormCheck
from ui.text import literal

CLUSTER_PAGE = "views/cluster.py"
SUBMITTED = "submitted-clusters"
"""The new clusters this browser session asked for: their pages wait for the run to make
their folder, which records their owner, instead of saying there is no such cluster."""


def apply_button(check: FormCheck, *, new: bool, key: str, person: Person, project: str | None = None) -> bool:
    """The Apply button under a form. Nothing is written unless the whole form checks out;
    once the run is submitted the cluster's page takes over (it shows the plan to approve).
    Returns True when the build was submitted, asked by `person` (a new cluster in `project`);
    the flow checks their right to it."""
    if not st.button("Apply", type="primary", key=f"{key}-apply", icon=":material/rocket_launch:"):
        return False
    if check.spec is None:
        listed = "\n".join(f"- {literal(message)}" for message in check.messages())
        st.error(f"**Nothing was submitted: fix what is marked in red above.**\n\n{listed}")
        return False
    spec = check.spec
    try:
        with st.spinner("Submitting the request…"):
            runs.submit_spec(spec, new=new, person=person, project=project)
        if new:
            st.session_state.setdefault(SUBMITTED, set()).add(spec.hostname)
    except MCHubError as error:
        st.error(f"**Nothing was built.** {literal(str(error))}")
        return False
    return True


def open_cluster_page(hostname: str) -> None:
    st.switch_page(CLUSTER_PAGE, query_params={"hostname": hostname})


def submitted_here(hostname: str) -> bool:
    """Whether this browser session asked for the new cluster `hostname`."""
    return hostname in st.session_state.get(SUBMITTED, set())
