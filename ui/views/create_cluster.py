"""/create-cluster: the form for a new cluster, opened with the original MC Hub's defaults."""

import streamlit as st

from mchub.settings import get_settings
from ui.cloud_view import cloud_resources
from ui.defaults import new_cluster_values
from ui.form import FormMode, cluster_form, forget_form
from ui.page_errors import shown_errors
from ui.submit import apply_button, open_cluster_page

st.title("Create a cluster")
with shown_errors("The create-cluster form"):
    resources = cloud_resources()
    if resources is not None:
        mode = FormMode(key="create", initial=new_cluster_values(resources), clusters_dir=get_settings().clusters_dir)
        check = cluster_form(mode, resources)
        if apply_button(check, new=True, key=mode.key) and check.spec is not None:
            forget_form(mode.key)  # the next visit starts a new cluster, not this one again
            open_cluster_page(check.spec.hostname)
