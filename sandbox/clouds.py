"""The clouds.yaml that points openstacksdk and the `openstack` CLI at a running sandbox."""

from pathlib import Path

from sandbox import accounts
from sandbox.catalog import REGION
from sandbox.private_files import write_private

_TEMPLATE = """\
# The MC Hub sandbox cloud. `sandbox` logs in with a password, `sandbox-appcred` with an
# application credential; both reach the same project. `mchub_sandbox_url` tells MC Hub
# that a cloud is this sandbox (its clusters use the sandbox's Terraform module).
clouds:
  sandbox:
    auth_type: password
    auth:
      auth_url: {auth_url}
      username: {username}
      password: {password}
      project_name: {project}
      user_domain_name: {domain}
      project_domain_name: {domain}
    region_name: {region}
    identity_api_version: 3
    interface: public
    mchub_sandbox_url: {base_url}
  sandbox-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: {auth_url}
      application_credential_id: {app_cred_id}
      application_credential_secret: {app_cred_secret}
    region_name: {region}
    identity_api_version: 3
    interface: public
    mchub_sandbox_url: {base_url}
"""


def clouds_yaml(host: str, port: int) -> str:
    """clouds.yaml text naming the sandbox at host:port as clouds `sandbox` and `sandbox-appcred`."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return _TEMPLATE.format(
        auth_url=f"http://{netloc}/identity/v3",
        base_url=f"http://{netloc}",
        username=accounts.USER_NAME,
        password=accounts.PASSWORD,
        project=accounts.PROJECT_NAME,
        domain=accounts.DOMAIN_NAME,
        region=REGION,
        app_cred_id=accounts.APP_CRED_ID,
        app_cred_secret=accounts.APP_CRED_SECRET,
    )


def write_clouds_yaml(path: Path, host: str, port: int) -> None:
    """Write the clouds.yaml of the sandbox at host:port to `path`: 0600 in a 0700 folder, atomically,
    since it holds the sandbox's credentials."""
    write_private(path, clouds_yaml(host, port).encode())
