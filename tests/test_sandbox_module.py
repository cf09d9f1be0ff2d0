"""The sandbox's Terraform module (sandbox/terraform), applied by real Terraform to the real sandbox.

Each test builds its own cluster in a fresh folder: main.tf.json written by mchub.terraform.config
from a cluster spec (the hub's defaults unless said), Terraform run by mchub's runner with the
OS_* variables of the sandbox's clouds.yaml (as the hub passes credentials), and the result
looked at with openstacksdk, the admin usage API and the cluster's service URLs.
"""

import ipaddress
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mchub.cloud.connection import terraform_env
from mchub.settings import get_settings
from mchub.spec.model import default_spec_data, parse_spec
from mchub.terraform import config
from mchub.terraform.binary import TerraformNotFound, find_terraform
from mchub.terraform.errors import TerraformError
from mchub.terraform.runner import Terraform
from sandbox.clouds import write_clouds_yaml

DOMAIN = "sandbox.mchub.dev"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"


class Cluster:
    """One cluster's folder: its spec (editable `data`), main.tf.json, and Terraform run in it."""

    def __init__(self, workdir: Path, data: dict[str, Any], sandbox_url: str, env: dict[str, str], home: Path) -> None:
        self.workdir = workdir
        self.data = data
        self.sandbox_url = sandbox_url
        self.terraform = Terraform(workdir, home=home, env=env, timeout=120, grace_period=10)
        self.write()
        self.terraform.init()

    @property
    def hostname(self) -> str:
        return f"{self.data['cluster_name']}.{self.data['domain']}"

    def write(self) -> None:
        config.write(parse_spec(self.data), "sandbox", self.workdir, self.sandbox_url)

    def planned_changes(self, destroy: bool = False) -> dict[str, list[str]]:
        """Address → actions of every resource the plan changes (written to tfplan)."""
        self.terraform.plan(destroy=destroy)
        changes = self.terraform.show_plan().get("resource_changes", [])
        return {c["address"]: c["change"]["actions"] for c in changes if c["change"]["actions"] != ["no-op"]}

    def apply(self) -> float:
        """Plan and apply; the apply's duration in seconds."""
        self.terraform.plan()
        return self.terraform.apply().duration_seconds

    def destroy(self) -> None:
        self.terraform.plan(destroy=True)
        self.terraform.apply(step="destroy")

    def outputs(self) -> dict[str, Any]:
        return {name: output.value for name, output in self.terraform.outputs().items()}


@pytest.fixture(scope="session")
def terraform_available() -> None:
    try:
        find_terraform(get_settings().terraform_binary)
    except TerraformNotFound as error:
        pytest.skip(f"no Terraform to apply the sandbox module with: {error}")


@pytest.fixture
def make_cluster(
    terraform_available: None, clean_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Cluster]:
    """make_cluster(name, domain=..., cloud="sandbox"): the folder of the hub's default cluster, initialised."""
    # Only the credentials the test hands Terraform may reach the module, not the shell's.
    for key in [key for key in os.environ if key.startswith("OS_")]:
        monkeypatch.delenv(key)

    def make(name: str, domain: str = DOMAIN, cloud: str = "sandbox") -> Cluster:
        workdir = tmp_path / f"{name}.{domain}"
        workdir.mkdir()
        data = {**default_spec_data(domain=domain, name=name), "public_keys": [PUBLIC_KEY]}
        env = terraform_env(cloud, clean_sandbox.clouds_yaml)
        return Cluster(workdir, data, clean_sandbox.url, env, tmp_path / "home")

    return make


@pytest.fixture
def conn(clean_sandbox) -> Iterator[Any]:
    connection = clean_sandbox.connect()
    yield connection
    connection.close()


def in_use(sandbox) -> dict[str, int]:
    response = sandbox.admin().get("/usage")
    response.raise_for_status()
    return response.json()["in_use"]


def servers_of(conn, hostname: str) -> dict[str, Any]:
    return {s.name: s for s in conn.compute.servers() if s.metadata.get("cluster") == hostname}


def volumes_of(conn, hostname: str) -> dict[str, int]:
    return {v.name: v.size for v in conn.block_storage.volumes() if v.metadata.get("cluster") == hostname}


def floating_ips_of(conn, hostname: str) -> dict[str, str]:
    """Instance name → address of the cluster's floating IPs (description "<hostname> <instance>")."""
    found = {}
    for ip in conn.network.ips():
        owner, _, instance = (ip.description or "").partition(" ")
        if owner == hostname:
            found[instance] = ip.floating_ip_address
    return found


def status_codes(urls: dict[str, str]) -> dict[str, int]:
    return {service: httpx.get(url, timeout=5).status_code for service, url in urls.items()}


def test_default_cluster_is_built_with_magic_castles_outputs_and_destroyed_to_nothing(
    make_cluster, clean_sandbox, conn
):
    before = in_use(clean_sandbox)
    cluster = make_cluster("demo")

    seconds = cluster.apply()
    print(f"\napply of the default cluster (mgmt, login, node + 3 volumes): {seconds:.1f} s")

    servers = servers_of(conn, "demo.sandbox.mchub.dev")
    assert {name: s.flavor.name for name, s in servers.items()} == {
        "demo-mgmt1": "p4-6gb",
        "demo-login1": "p2-3gb",
        "demo-node1": "p2-3gb",
    }
    login = dict(servers["demo-login1"].metadata)
    # The id of the terraform_data resource that made it: a destroy deletes that one only.
    assert re.fullmatch(r"[0-9a-f-]{36}", login.pop("terraform_id"))
    assert login == {"cluster": "demo.sandbox.mchub.dev", "instance": "login1", "tags": "login,public,proxy"}
    # p-flavors have no root disk: their instances boot from a 10 GB volume made from the image.
    assert not servers["demo-mgmt1"].image.get("id")
    root = next(v for v in conn.block_storage.volumes() if v.name == "demo-mgmt1-root")
    assert root.volume_image_metadata["image_name"] == "Rocky-9"
    assert volumes_of(conn, "demo.sandbox.mchub.dev") == {
        "demo-nfs-home": 100,
        "demo-nfs-project": 100,
        "demo-nfs-scratch": 100,
        "demo-mgmt1-root": 10,
        "demo-login1-root": 10,
        "demo-node1-root": 10,
    }
    after = in_use(clean_sandbox)
    assert {key: after[key] - before[key] for key in after} == {
        "instances": 3,
        "cores": 4 + 2 + 2,
        "ram": 6144 + 3072 + 3072,
        "volumes": 6,
        "gigabytes": 3 * 100 + 3 * 10,
        "floating_ips": 1,
    }

    outputs = cluster.outputs()
    address = outputs["public_ip"]["login1"]
    assert outputs["public_ip"] == {"login1": address}
    assert ipaddress.ip_address(address) in ipaddress.ip_network("100.64.0.0/10")
    assert floating_ips_of(conn, "demo.sandbox.mchub.dev") == {"login1": address}
    assert outputs["public_instances"] == {
        "login1": {"public_ip": address, "prefix": "login", "tags": ["login", "public", "proxy"]}
    }
    assert (outputs["cluster_name"], outputs["domain"]) == ("demo", "sandbox.mchub.dev")
    accounts = outputs["accounts"]
    assert accounts["guests"]["usernames"] == "user[01-10]"
    assert len(accounts["guests"]["password"]) >= 8
    assert accounts["sudoer"]["username"] == "centos"
    assert cluster.terraform.outputs()["accounts"].sensitive
    urls = outputs["service_urls"]
    assert urls == {
        "jupyterhub": f"{clean_sandbox.url}/sandbox/clusters/demo.sandbox.mchub.dev/jupyterhub",
        "freeipa": f"{clean_sandbox.url}/sandbox/clusters/demo.sandbox.mchub.dev/freeipa",
    }
    assert status_codes(urls) == {"jupyterhub": 200, "freeipa": 200}

    # Nothing drifts: the generated password is kept, no object is planned again.
    assert cluster.planned_changes() == {}
    assert cluster.outputs()["accounts"]["guests"]["password"] == accounts["guests"]["password"]

    cluster.destroy()
    assert in_use(clean_sandbox) == before
    assert servers_of(conn, "demo.sandbox.mchub.dev") == {}
    assert volumes_of(conn, "demo.sandbox.mchub.dev") == {}
    assert floating_ips_of(conn, "demo.sandbox.mchub.dev") == {}
    assert status_codes(urls) == {"jupyterhub": 404, "freeipa": 404}


def test_more_nodes_create_only_the_new_ones(make_cluster, conn):
    cluster = make_cluster("grow")
    cluster.apply()
    ids_before = {name: s.id for name, s in servers_of(conn, cluster.hostname).items()}

    cluster.data["instances"]["node"]["count"] = 3
    cluster.write()
    assert cluster.planned_changes() == {
        'module.cluster.terraform_data.instance["node2"]': ["create"],
        'module.cluster.terraform_data.instance["node3"]': ["create"],
        'module.cluster.terraform_data.boot_volume["node2"]': ["create"],
        'module.cluster.terraform_data.boot_volume["node3"]': ["create"],
    }
    cluster.terraform.apply()

    ids_after = {name: s.id for name, s in servers_of(conn, cluster.hostname).items()}
    assert set(ids_after) == {"grow-mgmt1", "grow-login1", "grow-node1", "grow-node2", "grow-node3"}
    assert {name: ids_after[name] for name in ids_before} == ids_before


def test_a_flavor_with_a_root_disk_replaces_the_instance_and_drops_its_boot_volume(make_cluster, conn):
    cluster = make_cluster("resize")
    cluster.apply()

    cluster.data["instances"]["node"]["type"] = "c8-30gb"
    cluster.write()
    assert cluster.planned_changes() == {
        'module.cluster.terraform_data.instance["node1"]': ["delete", "create"],
        'module.cluster.terraform_data.boot_volume["node1"]': ["delete"],
    }
    cluster.terraform.apply()

    node = servers_of(conn, cluster.hostname)["resize-node1"]
    assert node.flavor.name == "c8-30gb"
    assert node.image.id == conn.image.find_image("Rocky-9", ignore_missing=False).id
    assert "resize-node1-root" not in volumes_of(conn, cluster.hostname)


def test_quota_refusal_fails_the_apply_with_novas_message_and_destroy_leaves_nothing(make_cluster, clean_sandbox):
    before = in_use(clean_sandbox)
    clean_sandbox.set_knobs(quotas={"cores": 6})  # the cluster needs 8
    cluster = make_cluster("tight")

    with pytest.raises(TerraformError) as refused:
        cluster.apply()

    assert re.search(r"Quota exceeded for cores: Requested \d+, but already used \d+ of 6 cores", str(refused.value))
    assert "sandbox-password" not in str(refused.value)
    cluster.destroy()
    assert in_use(clean_sandbox) == before


def test_apply_again_after_a_failed_server_create_finishes_the_cluster(make_cluster, clean_sandbox, conn):
    clean_sandbox.set_knobs(fail_next_server_creates=1)
    cluster = make_cluster("retry")

    with pytest.raises(TerraformError, match="Unexpected API Error"):
        cluster.apply()
    assert len(servers_of(conn, cluster.hostname)) == 2

    cluster.apply()
    assert set(servers_of(conn, cluster.hostname)) == {"retry-mgmt1", "retry-login1", "retry-node1"}


def test_clusters_named_alike_in_two_domains_never_touch_each_others_objects(make_cluster, clean_sandbox, conn):
    first = make_cluster("twin", domain="one.example")
    # The second logs in with an application credential, the other way OS_* can carry credentials.
    second = make_cluster("twin", domain="two.example", cloud="sandbox-appcred")
    first.apply()
    second.apply()
    kept = {
        "servers": {name: s.id for name, s in servers_of(conn, second.hostname).items()},
        "volumes": volumes_of(conn, second.hostname),
        "floating_ips": floating_ips_of(conn, second.hostname),
    }
    assert kept["floating_ips"] == second.outputs()["public_ip"] != first.outputs()["public_ip"]
    first_urls, second_urls = first.outputs()["service_urls"], second.outputs()["service_urls"]

    first.destroy()

    assert servers_of(conn, first.hostname) == {}
    assert {name: s.id for name, s in servers_of(conn, second.hostname).items()} == kept["servers"]
    assert volumes_of(conn, second.hostname) == kept["volumes"]
    assert floating_ips_of(conn, second.hostname) == kept["floating_ips"]
    assert status_codes(second_urls) == {"jupyterhub": 200, "freeipa": 200}
    assert status_codes(first_urls) == {"jupyterhub": 404, "freeipa": 404}


def test_a_floating_ip_left_by_an_interrupted_create_is_taken_back_and_another_clusters_is_not(
    make_cluster, clean_sandbox, conn
):
    cluster = make_cluster("again")
    cluster.apply()
    planned = cluster.outputs()["public_ip"]  # the module picks the same addresses every time
    cluster.destroy()
    public = next(network.id for network in conn.network.networks() if network.is_router_external)
    # What an apply interrupted after the cloud answered leaves: the address held, no state.
    conn.network.create_ip(
        floating_network_id=public, floating_ip_address=planned["login1"], description=f"{cluster.hostname} login1"
    )

    cluster.apply()
    assert floating_ips_of(conn, cluster.hostname) == planned == cluster.outputs()["public_ip"]
    assert in_use(clean_sandbox)["floating_ips"] == 1

    cluster.destroy()
    assert floating_ips_of(conn, cluster.hostname) == {}
    conn.network.create_ip(floating_network_id=public, floating_ip_address=planned["login1"], description="someone else")
    with pytest.raises(TerraformError, match="already allocated"):
        cluster.apply()
    assert [ip.description for ip in conn.network.ips()] == ["someone else"]


def test_the_modules_provisioners_run_the_hubs_own_python(tmp_path: Path) -> None:
    # Not the first python3 on PATH, which may be a wrapper (pyenv's shim) costing 0.1 s a call.
    clouds_yaml = tmp_path / "clouds.yaml"
    write_clouds_yaml(clouds_yaml, "127.0.0.1", 9)
    found = shutil.which("python3", path=terraform_env("sandbox", clouds_yaml)["PATH"])
    assert found is not None and Path(found).resolve() == Path(sys.executable).resolve()
