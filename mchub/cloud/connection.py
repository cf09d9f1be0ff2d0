"""Connections to OpenStack clouds: one openstacksdk Connection per cloud, reused.

A new connection costs an authentication round trip (and on a real Keystone ~0.3 s of
password hashing), so every caller in a process shares the one for its cloud.
"""

import os
import sys
import threading
from pathlib import Path
from typing import Literal

import openstack
import openstack.config
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from openstack.config.cloud_region import CloudRegion
from openstack.connection import Connection
from pydantic import BaseModel

from mchub.errors import MCHubError
from mchub.settings import get_settings


class CloudError(MCHubError):
    """The cloud could not be reached or refused us; the message says what to check."""


_connections: dict[tuple[str, str], Connection] = {}
_lock = threading.Lock()


def sandbox_clouds_yaml() -> Path:
    """Where `mchub sandbox` writes the clouds.yaml that reaches it."""
    return get_settings().home / "clouds.yaml"


def _clouds_yaml_for(cloud: str) -> Path | None:
    configured = get_settings().clouds_yaml
    if configured:
        return configured
    # The sandbox is found without configuration; real clouds come from openstacksdk's usual places.
    if cloud == "sandbox" and sandbox_clouds_yaml().exists():
        return sandbox_clouds_yaml()
    return None


def connect(cloud: str | None = None, clouds_yaml: Path | None = None) -> Connection:
    """The shared connection to `cloud` (default: the `MCHUB_CLOUD` setting), authenticated."""
    cloud = cloud or get_settings().cloud
    clouds_yaml = clouds_yaml or _clouds_yaml_for(cloud)
    key = (cloud, str(clouds_yaml or ""))
    with _lock:
        conn = _connections.get(key)
        if conn is None:
            conn = _open(cloud, clouds_yaml)
            _connections[key] = conn
        return conn


def _region(cloud: str, clouds_yaml: Path | None) -> CloudRegion:
    try:
        config = openstack.config.OpenStackConfig(
            config_files=[str(clouds_yaml)] if clouds_yaml else None
        )
        region = config.get_one(cloud=cloud)
    except os_exceptions.ConfigException as error:
        where = clouds_yaml or "clouds.yaml (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, /etc/openstack/)"
        hint = " or start the sandbox cloud with `mchub sandbox`" if cloud == "sandbox" else ""
        raise CloudError(
            f"cloud {cloud!r} is not configured: add it to {where}{hint}, "
            f"or set MCHUB_CLOUD to a cloud that is ({error})"
        ) from error
    return region


def _open(cloud: str, clouds_yaml: Path | None) -> Connection:
    region = _region(cloud, clouds_yaml)
    conn = openstack.connection.Connection(config=region)
    try:
        conn.authorize()
    except os_exceptions.SDKException as error:
        raise _auth_failure(cloud, region.config["auth"].get("auth_url"), error) from error
    return conn


class CloudTarget(BaseModel):
    """Where a cluster is built: which kind of cloud, and for the sandbox, its address."""

    name: str
    kind: Literal["openstack", "sandbox"]
    sandbox_url: str = ""


def target(cloud: str | None = None, clouds_yaml: Path | None = None) -> CloudTarget:
    cloud = cloud or get_settings().cloud
    region = _region(cloud, clouds_yaml or _clouds_yaml_for(cloud))
    sandbox_url = _sandbox_url(region)
    if sandbox_url:
        return CloudTarget(name=cloud, kind="sandbox", sandbox_url=sandbox_url)
    return CloudTarget(name=cloud, kind="openstack")


def _sandbox_url(region: CloudRegion) -> str | None:
    """The sandbox's address, which its clouds.yaml gives; None for a real OpenStack."""
    return region.config.get("mchub_sandbox_url")


def terraform_env(cloud: str | None = None, clouds_yaml: Path | None = None) -> dict[str, str]:
    """The cloud's credentials as the OS_* variables Terraform's OpenStack code reads.

    Magic Castle's provider (and the sandbox module) take credentials from the environment,
    so they never appear in main.tf.json, plan files or logs. For the sandbox, PATH also
    begins with this interpreter's folder: its module's provisioners run `python3`, and the
    first one on PATH may be a wrapper such as pyenv's shim, 0.1 s of CPU before each call.
    """
    cloud = cloud or get_settings().cloud
    region = _region(cloud, clouds_yaml or _clouds_yaml_for(cloud))
    env = {f"OS_{key.upper()}": str(value) for key, value in region.config["auth"].items() if value is not None}
    optional = {
        "OS_REGION_NAME": region.get_region_name(),
        "OS_INTERFACE": region.config.get("interface"),
        "OS_AUTH_TYPE": region.config.get("auth_type"),
        "OS_IDENTITY_API_VERSION": region.config.get("identity_api_version"),
    }
    env.update({key: str(value) for key, value in optional.items() if value})
    if _sandbox_url(region):
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    return env


def _auth_failure(cloud: str, auth_url: str | None, error: Exception) -> CloudError:
    # openstacksdk wraps keystoneauth's precise exception; the wrapped one says what went wrong.
    cause = error.__context__
    if isinstance(cause, ks_exceptions.Unauthorized):
        return CloudError(
            f"cloud {cloud!r} refused the credentials in clouds.yaml: check the username, "
            "password or application credential"
        )
    if isinstance(cause, (ks_exceptions.ConnectFailure, ks_exceptions.DiscoveryFailure)):
        return CloudError(
            f"cloud {cloud!r} cannot be reached at {auth_url}: is it up, and is auth_url in clouds.yaml right?"
        )
    return CloudError(f"cloud {cloud!r} could not be signed in to at {auth_url}: {error}")


def forget(cloud: str | None = None) -> None:
    """Drop cached connections (all, or those to one cloud), e.g. after credentials change."""
    with _lock:
        for key in [k for k in _connections if cloud is None or k[0] == cloud]:
            _connections.pop(key).close()
