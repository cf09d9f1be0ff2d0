"""The cloud's flavors, images and quotas for a page, or a clear message when it cannot be reached."""

import streamlit as st

from mchub.cloud.connection import CloudError
from mchub.cloud.resources import CloudResources, reader
from ui.text import literal


def note_page_shown(url_path: str) -> None:
    """Remember which page (its path and query) this run of the app shows, and whether the
    previous run showed another: the page has just been opened."""
    shown = (url_path, tuple(sorted(st.query_params.items())))
    st.session_state["page-just-opened"] = st.session_state.get("page-shown") != shown
    st.session_state["page-shown"] = shown


def cloud_resources(cloud: str | None = None) -> CloudResources | None:
    """The resources of `cloud` (default: the configured one); None after telling the person
    why there are none (the page goes on loading) and offering to ask again.

    A page just opened reads the quotas' usage afresh: a cluster built a moment ago holds
    part of it. A rerun of the same page (a field changed) reuses it for quota_cache_seconds."""
    try:
        return reader(cloud).read(fresh_quotas=st.session_state.get("page-just-opened", True))
    except CloudError as error:
        st.error(
            f"**The cloud cannot be reached, so no cluster can be created or changed now.**\n\n{literal(str(error))}",
            icon=":material/cloud_off:",
        )
        st.button("Try again", icon=":material/refresh:")
        return None
