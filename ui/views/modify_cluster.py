"""/modify-cluster?hostname=...: the form prefilled from an existing cluster's spec."""

import streamlit as st

from ui.modify import modify_page

hostname = st.query_params.get("hostname", "")
if hostname:
    modify_page(hostname)
else:
    st.warning("No cluster was chosen.")
    st.page_link("views/clusters.py", label="All clusters", icon=":material/list:")
