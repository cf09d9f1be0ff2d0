"""/create-cluster: the form for a new cluster, opened with the original MC Hub's defaults, in
a project the signed-in person may create clusters in, on a cloud that project may build on."""

import re

import streamlit as st

from mchub.access.rights import allowed_clouds, projects_to_create_in
from mchub.settings import get_settings
from ui.cloud_view import cloud_resources
from ui.defaults import new_cluster_values
from ui.form import FormMode, cluster_form, forget_form
from ui.page_errors import shown_errors
from ui.signed_in import person
from ui.submit import apply_button, open_cluster_page

st.title("Create a cluster")
with shown_errors("The create-cluster form"):
    creator = person()
    projects = projects_to_create_in(creator)
    if not projects:
        st.info(f"{creator.name} is in no project of this hub, so cannot create clusters: "
                "ask the hub's admins to add you to a project's group.", icon=":material/group_off:")
        st.stop()
    where, cloud_choice, _ = st.columns([1, 1, 2])
    project = where.selectbox("Project", projects, key="create-project",
                              help="The cluster belongs to this project: its admins can act on it too.")
    cloud = cloud_choice.selectbox("Cloud", allowed_clouds(project), key=f"create-cloud-{project}",
                                   help="The clouds this project may build on.")
    resources = cloud_resources(cloud) if cloud else None
    if resources is not None:
        # One form per project and cloud: the choices of one cloud mean nothing on another.
        mode = FormMode(key=re.sub(r"[^A-Za-z0-9-]", "-", f"create-{project}-{cloud}"), initial=new_cluster_values(resources),
                        clusters_dir=get_settings().clusters_dir)
        check = cluster_form(mode, resources)
        if apply_button(check, new=True, key=mode.key, person=creator, project=project) and check.spec is not None:
            forget_form(mode.key)  # the next visit starts a new cluster, not this one again
            open_cluster_page(check.spec.hostname)
