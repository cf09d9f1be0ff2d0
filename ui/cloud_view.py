"""The cloud's flavors, images and quotas for a page, or a clear message when it cannot be reached."""

import streamlit as st

from mchub.cloud.connection import CloudError
from mchub.cloud.resources import CloudResources, reader
from ui.text import literal


def cloud_resources(cloud: str | None = None) -> CloudResources | None:
    """The resources of `cloud` (default: the configured one); None after telling the person
    why there are none (the page goes on loading) and offering to ask again."""
    try:
        return reader(cloud).read()
    except CloudError as error:
        st.error(
            f"**The cloud cannot be reached, so no cluster can be created or changed now.**\n\n{literal(str(error))}",
            icon=":material/cloud_off:",
        )
        st.button("Try again", icon=":material/refresh:")
        return None
