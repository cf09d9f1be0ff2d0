"""MC Hub's web front end: `streamlit run ui/app.py` (port and options in .streamlit/config.toml).

Pages: the clusters list (/), the create-cluster form (/create-cluster), a cluster's page
(/cluster?hostname=...) and its modification form (/modify-cluster?hostname=...).
"""

import streamlit as st

st.set_page_config(page_title="MC Hub", page_icon=":material/dns:", layout="wide")

pages = [
    st.Page("views/clusters.py", title="Clusters", icon=":material/list:", url_path="clusters", default=True),
    st.Page("views/create_cluster.py", title="Create a cluster", icon=":material/add_circle:", url_path="create-cluster"),
    st.Page("views/cluster.py", title="Cluster", url_path="cluster", visibility="hidden"),
    st.Page("views/modify_cluster.py", title="Modify a cluster", url_path="modify-cluster", visibility="hidden"),
]
st.navigation(pages, position="top").run()
