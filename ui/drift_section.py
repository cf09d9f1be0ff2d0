"""What a drifted cluster's page shows: what the drift check found, and Repair."""

from collections.abc import Callable

import streamlit as st

from mchub.access.people import Person
from mchub.cluster.drift import DriftCheck
from mchub.orchestration import runs
from ui.plan_view import plan_view


def drift_section(
    hostname: str, check: DriftCheck, person: Person, submit: Callable[[Callable[[], object]], None]
) -> None:
    """The drift check's plan summary, and Repair: an ordinary build of the applied spec, whose
    plan is shown for approval before anything changes."""
    with st.container(border=True, key="drift"):
        st.warning(
            f"**The cloud no longer matches this cluster** (drift check of {check.checked_at:%Y-%m-%d %H:%M} UTC): "
            "something was changed or deleted outside MC Hub.",
            icon=":material/sync_problem:",
        )
        plan_view(check.summary.to_markdown("What a repair would change"))
        if st.button("Repair", icon=":material/build:", key="repair", type="primary",
                     help="Plans the cluster's spec again; nothing changes before you approve the plan."):
            submit(lambda: runs.submit_repair(hostname, person=person))
