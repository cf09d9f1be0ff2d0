"""/cluster?hostname=...: one cluster, from its plan to its connection details."""

import streamlit as st

from ui.cluster_page import cluster_page

hostname = st.query_params.get("hostname", "")
if hostname:
    cluster_page(hostname)
else:
    st.warning("No cluster was chosen.")
    st.page_link("views/clusters.py", label="All clusters", icon=":material/list:")
