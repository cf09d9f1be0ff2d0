"""The dialog a finished cluster opens with: where its services are and how to log in."""

import streamlit as st

from mchub.cluster.state import ClusterState
from ui.page_errors import shown_errors

_SERVICE_TITLES = {"jupyterhub": "JupyterHub", "freeipa": "FreeIPA"}
HIDDEN = "•" * 12
# Magic Castle's Puppet generates this password on the cluster at its first boot; Terraform
# never has it, so the hub can only say where it is (Magic Castle's documentation, "Read and
# edit secret values generated at boot").
FREEIPA_ADMIN = (
    "Its password is generated on the cluster at its first boot and never leaves it; on the Puppet "
    "server (mgmt1) it is `profile::freeipa::server::admin_password` in:"
)
READ_BOOT_SECRETS = (
    "sudo /opt/puppetlabs/puppet/bin/eyaml edit \\\n"
    "  --pkcs7-private-key /etc/puppetlabs/puppet/eyaml/boot_private_key.pkcs7.pem \\\n"
    "  --pkcs7-public-key /etc/puppetlabs/puppet/eyaml/boot_public_key.pkcs7.pem \\\n"
    "  /etc/puppetlabs/code/environments/production/data/bootstrap.yaml"
)


def connection_details(state: ClusterState, *, key: str) -> None:
    """The services' URLs and Mokey's, the guest accounts (password hidden until revealed;
    every value has a copy button), the sudoer, the public IP, and where FreeIPA's admin
    password is."""
    st.success(f"**{state.hostname}** is built and its services answer.", icon=":material/celebration:")
    # JupyterHub first: it is what the cluster's users open.
    ordered = sorted(state.service_urls.items(), key=lambda item: list(_SERVICE_TITLES).index(item[0])
                     if item[0] in _SERVICE_TITLES else len(_SERVICE_TITLES))
    for service, url in ordered:
        title = _SERVICE_TITLES.get(service, service)
        st.markdown(f"**{title}**: [{url}]({url})")
    if state.account_portal_url:
        url = state.account_portal_url
        st.markdown(f"**Mokey**: [{url}]({url}) (where the cluster's users set their password and SSH keys)")
    guests, password = st.columns(2)
    with guests:
        st.caption("Guest usernames")
        st.code(state.guest_usernames or "no guest accounts", language=None)
    with password:
        st.caption("Guest password")
        shown = st.toggle("Show the password", key=f"{key}-reveal")
        st.code(state.guest_password.get_secret_value() if shown else HIDDEN, language=None)
    sudoer, address = st.columns(2)
    with sudoer:
        st.caption("Sudoer (logs in with your SSH keys)")
        st.code(state.sudoer, language=None)
    with address:
        st.caption("Public IP")
        st.code(state.public_ip or "none", language=None)
    if state.public_ip:
        st.caption("Log in")
        st.code(f"ssh {state.sudoer}@{state.public_ip}", language="bash")
    with st.expander("FreeIPA's administrator: admin"):
        st.caption(FREEIPA_ADMIN)
        st.code(READ_BOOT_SECRETS, language="bash")


def open_connection_details(state: ClusterState, *, key: str) -> None:
    """Show the details in a modal dialog."""
    st.dialog("Your cluster is ready", width="large")(shown_errors("The connection details")(connection_details))(
        state, key=key
    )
