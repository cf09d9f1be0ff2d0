"""The real `openstack` CLI (python-openstackclient) against the sandbox, configured only by its clouds.yaml."""

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox import accounts
from sandbox.catalog import PUBLIC_NETWORK

pytestmark = pytest.mark.live  # each `openstack` call starts the client anew: seconds apiece

OPENSTACK = Path(sys.executable).parent / "openstack"
HOSTNAME = "hpc.sandbox.mchub.dev"


def _openstack(cloud, *args: str, os_cloud: str = "sandbox") -> subprocess.CompletedProcess:
    # Only the sandbox's clouds.yaml: none of the developer's own OS_* settings.
    env = {name: value for name, value in os.environ.items() if not name.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    return subprocess.run(
        [str(OPENSTACK), "--os-cloud", os_cloud, *args], env=env, capture_output=True, text=True, timeout=60
    )


def _json(cloud, *args: str, os_cloud: str = "sandbox") -> Any:
    done = _openstack(cloud, *args, "-f", "json", os_cloud=os_cloud)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _in_use(cloud) -> dict[str, int]:
    return cloud.admin().get("/usage").json()["in_use"]


def test_flavor_list(clean_sandbox):
    flavors = {f["Name"]: (f["VCPUs"], f["RAM"], f["Disk"]) for f in _json(clean_sandbox, "flavor", "list")}
    assert flavors["p2-3gb"] == (2, 3072, 0)
    assert flavors["c16-60gb"] == (16, 61440, 20)
    assert len(flavors) == 7


def test_image_list(clean_sandbox):
    images = {i["Name"]: i["Status"] for i in _json(clean_sandbox, "image", "list")}
    assert images["Rocky-9"] == "active"
    assert images["Rocky-9-old"] == "deactivated"


def test_limits_show_gives_the_quotas(clean_sandbox):
    limits = {row["Name"]: row["Value"] for row in _json(clean_sandbox, "limits", "show", "--absolute")}
    assert (limits["max_total_cores"], limits["max_total_instances"], limits["max_total_ram_size"]) == (64, 20, 262144)
    assert (limits["max_total_volumes"], limits["max_total_volume_gigabytes"]) == (20, 2000)


def test_server_create_shows_in_quota_usage_and_delete_frees_it(clean_sandbox):
    server = _json(
        clean_sandbox,
        "server", "create", "--flavor", "p4-6gb", "--image", "Rocky-9", "--property", f"cluster={HOSTNAME}", "mgmt1",
    )
    assert server["status"] == "ACTIVE"
    usage = {row["Resource"]: row["In Use"] for row in _json(clean_sandbox, "quota", "show", "--usage")}
    assert (usage["instances"], usage["cores"], usage["ram"]) == (1, 4, 6144)
    assert _openstack(clean_sandbox, "server", "delete", "mgmt1").returncode == 0
    assert _in_use(clean_sandbox)["instances"] == 0


def test_volume_create_and_delete(clean_sandbox):
    volume = _json(clean_sandbox, "volume", "create", "--size", "100", "home")
    assert (volume["size"], volume["status"]) == (100, "available")
    assert _in_use(clean_sandbox)["gigabytes"] == 100
    assert _openstack(clean_sandbox, "volume", "delete", "home").returncode == 0
    assert _in_use(clean_sandbox)["gigabytes"] == 0


def test_floating_ip_create_and_delete(clean_sandbox):
    ip = _json(clean_sandbox, "floating", "ip", "create", "Public-Network")
    assert ipaddress.ip_address(ip["floating_ip_address"]) in ipaddress.ip_network(PUBLIC_NETWORK.cidr)
    assert _openstack(clean_sandbox, "floating", "ip", "delete", ip["floating_ip_address"]).returncode == 0
    assert _in_use(clean_sandbox)["floating_ips"] == 0


def test_over_quota_server_create_fails_with_novas_message(clean_sandbox):
    clean_sandbox.set_knobs(quotas={"cores": 1})
    done = _openstack(clean_sandbox, "server", "create", "--flavor", "p2-3gb", "--image", "Rocky-9", "node1")
    assert done.returncode == 1
    assert "Quota exceeded for cores: Requested 2, but already used 0 of 1 cores" in done.stderr


def test_wrong_password_fails_with_401(clean_sandbox):
    done = _openstack(clean_sandbox, "--os-password", "not-the-password", "flavor", "list")
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr
    assert "not-the-password" not in done.stderr


def test_application_credential_cloud_works(clean_sandbox):
    token = _json(clean_sandbox, "token", "issue", os_cloud="sandbox-appcred")
    assert token["project_id"] == accounts.PROJECT_ID
