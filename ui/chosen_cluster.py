"""The cluster a page is about: the `hostname` of its URL, which anyone can write, so it is
checked (mchub.spec.hostname) before it names a folder, a run or a title."""

import streamlit as st

from mchub.spec.hostname import HostnameError, checked_hostname
from ui.text import literal

LIST_PAGE = "views/clusters.py"


def chosen_hostname() -> str | None:
    """The page's `?hostname=`; None, after saying why and linking to the list, when there is
    none or it is not a cluster's hostname."""
    text = st.query_params.get("hostname", "")
    if not text:
        st.warning("No cluster was chosen.")
    else:
        try:
            return checked_hostname(text)
        except HostnameError as error:
            st.error(f"**There is no such cluster.** {literal(str(error))}", icon=":material/error:")
    st.page_link(LIST_PAGE, label="All clusters", icon=":material/list:")
    return None
