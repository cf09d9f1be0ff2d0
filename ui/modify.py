"""Modifying a cluster: the form prefilled from its spec, with what cannot change locked,
and the quota check counting what the cluster already holds as its own."""

import streamlit as st
from pydantic import SecretStr

from mchub.access.people import Person
from mchub.access.rights import may_act
from mchub.spec.model import SpecError
from ui.cloud_view import cloud_resources
from ui.cluster_files import workspace_of
from ui.form import FormMode, cluster_form, forget_form
from ui.form_values import FormValues
from ui.submit import apply_button, open_cluster_page
from ui.text import literal


def modify_page(hostname: str, person: Person) -> None:
    st.title(f"Modify {hostname}")
    ws = workspace_of(hostname)
    if ws is None or not may_act(person, ws.ownership()):
        st.error(f"There is no cluster named {literal(hostname)} that you may modify.")
        return
    try:
        spec = ws.spec()
    except SpecError as error:
        st.error(f"**The cluster's spec cannot be read.** {literal(str(error))}")
        return
    state = ws.cluster_state()
    if state is None:
        st.info("The cluster was never fully built: the quotas count none of it as already held.")
    resources = cloud_resources(spec.cloud)
    if resources is None:
        return
    mode = FormMode(
        key="modify-" + hostname.replace(".", "-"),
        initial=FormValues.from_spec_data(spec.to_data(include_secrets=False), existing_volumes=True).model_copy(
            update={"guest_passwd": SecretStr("")}
        ),
        existing=True,
        kept_password=spec.guest_passwd,
        held=state.held if state is not None else None,
    )
    check = cluster_form(mode, resources)
    if apply_button(check, new=False, key=mode.key, person=person):
        forget_form(mode.key)  # the next modification starts from the spec it leads to
        open_cluster_page(hostname)
