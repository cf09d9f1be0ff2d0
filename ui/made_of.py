"""What a built cluster is made of, as read from Terraform's state after its last apply
(mchub.cluster.state): its instances with their flavors, tags and floating IPs, and its volumes."""

import streamlit as st

from mchub.cluster.state import ClusterState


def made_of_section(state: ClusterState) -> None:
    # HTML tables, not data grids: a handful of rows, read and copied as text.
    with st.expander("What the cluster is made of", icon=":material/dns:"), st.container(key="made-of"):
        st.table([
            {
                "instance": instance.name,
                "flavor": instance.flavor,
                "tags": ", ".join(instance.tags),
                "floating IP": instance.public_ip or "none",
            }
            for instance in state.instances
        ], hide_index=True)
        if state.volumes:
            volumes = [{"volume": volume.name, "size (GB)": volume.size_gb} for volume in state.volumes]
            st.table(volumes, hide_index=True)
        else:
            st.caption("No volumes.")
