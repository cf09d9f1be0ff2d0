"""MC Hub's web front end: `streamlit run ui/app.py` (port and options in .streamlit/config.toml).

Pages: the clusters list (/), the create-cluster form (/create-cluster), a cluster's page
(/cluster?hostname=...) and its modification form (/modify-cluster?hostname=...). Nothing but
the sign-in is drawn until someone is signed in (ui.signed_in).
"""

import streamlit as st

from mchub.cluster import shared_store
from mchub.cluster.shared_store import StoreError
from ui.cloud_view import note_page_shown
from ui.signed_in import signed_in_person, who_bar
from ui.text import literal

st.set_page_config(page_title="MC Hub", page_icon=":material/dns:", layout="wide")

signed = signed_in_person()
if signed is None:
    st.session_state.pop("person", None)
    st.stop()
st.session_state["person"] = signed
try:
    shared_store.pull()  # what the workers of other machines wrote
except StoreError as error:
    st.error(f"**The clusters cannot be read.** {literal(str(error))}")
    st.stop()

pages = [
    st.Page("views/clusters.py", title="Clusters", icon=":material/list:", url_path="clusters", default=True),
    st.Page("views/create_cluster.py", title="Create a cluster", icon=":material/add_circle:", url_path="create-cluster"),
    st.Page("views/cluster.py", title="Cluster", url_path="cluster", visibility="hidden"),
    st.Page("views/modify_cluster.py", title="Modify a cluster", url_path="modify-cluster", visibility="hidden"),
]
chosen = st.navigation(pages, position="top")
note_page_shown(chosen.url_path)
who_bar(signed)
chosen.run()
