"""What a built cluster is, read back from Terraform after an apply: its machines, volumes,
accounts and service URLs, and the quota it holds.

Machines, volumes and floating IPs come from Terraform's state, not from the spec: after a
failed or cancelled apply the cluster holds only part of what its spec asks for, and the
quota check of the next modification must count what is really held. Accounts and service
URLs come from the root outputs that main.tf.json exposes (mchub.terraform.config).
"""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, FieldSerializationInfo, SecretStr, field_serializer

from mchub.cloud.quota import Allocation
from mchub.cloud.resources import Flavor
from mchub.errors import MCHubError
from mchub.spec.model import ClusterSpec
from mchub.terraform.plan import Kind, describe_resource, label
from mchub.terraform.runner import Terraform, TerraformOutput

REVEAL_SECRETS = "reveal_secrets"
"""Serialization context key: with it True, the guest password is written in clear (cluster.json)."""

# Which machine's address is "the cluster's" address: the one people reach first.
_ADDRESS_TAGS = ("proxy", "login", "public")


class InstanceState(BaseModel):
    name: str
    flavor: str
    tags: list[str]
    public_ip: str | None


class VolumeState(BaseModel):
    name: str
    """As the plan summary names it: "nfs-home", or "mgmt1 (boot)" for a boot volume."""
    size_gb: int


class ClusterState(BaseModel):
    hostname: str
    instances: list[InstanceState]
    volumes: list[VolumeState]
    public_ip: str | None
    """Of the proxy (else login, else first public) instance."""
    guest_usernames: str
    """"user[01-10]", or "" without guest accounts."""
    guest_password: SecretStr
    sudoer: str
    service_urls: dict[str, str]
    """{"jupyterhub": url, "freeipa": url}"""
    account_portal_url: str | None = None
    """Mokey, where the cluster's users set their password and SSH keys (None: a state from
    before the hub read it)."""
    held: Allocation
    """What the cluster holds, for a later modification's quota check."""

    @field_serializer("guest_password")
    def _password(self, password: SecretStr, info: FieldSerializationInfo) -> str:
        if info.context and info.context.get(REVEAL_SECRETS):
            return password.get_secret_value()
        return str(password)


class ClusterStateError(MCHubError):
    """Terraform's outputs or state do not describe a finished cluster; the message says what to do."""


def read_cluster_state(tf: Terraform, spec: ClusterSpec, flavors: Mapping[str, Flavor]) -> ClusterState:
    """The cluster as Terraform's outputs and state describe it; nothing is written (the
    workspace keeps it with Workspace.save_cluster_state). `flavors` (name → Flavor, e.g. from
    mchub.cloud.resources) give the cores and RAM each instance holds."""
    outputs = tf.outputs()
    resources = _state_resources(tf.state_pull())
    # Tags are the spec's: Magic Castle gives every machine of a row the row's tags.
    tags = {host.name: list(host.tags) for host in spec.hosts()}
    public_ips: dict[str, str] = _output(outputs, "public_ip")
    instances = [
        InstanceState(name=r.name, flavor=r.flavor, tags=tags.get(r.name, []), public_ip=public_ips.get(r.name))
        for r in resources
        if r.kind == "instance"
    ]
    volumes = [VolumeState(name=r.name, size_gb=r.size_gb) for r in resources if r.kind == "volume"]
    accounts = _output(outputs, "accounts")
    return ClusterState(
        hostname=spec.hostname,
        instances=instances,
        volumes=volumes,
        public_ip=_cluster_address(instances),
        guest_usernames=accounts["guests"]["usernames"],
        guest_password=SecretStr(accounts["guests"]["password"]),
        sudoer=accounts["sudoer"]["username"],
        service_urls=_output(outputs, "service_urls"),
        account_portal_url=outputs["account_portal_url"].value if "account_portal_url" in outputs else None,
        held=_held(resources, flavors),
    )


class _CloudObject(BaseModel):
    """One cloud object of the state, as a person and the quota know it."""

    kind: Kind
    name: str
    flavor: str = ""
    size_gb: int = 0


def _state_resources(state: Mapping[str, Any]) -> list[_CloudObject]:
    held: list[_CloudObject] = []
    for resource in state.get("resources", []):
        if resource.get("mode") != "managed":
            continue
        for instance in resource.get("instances", []):
            address = f"{resource['type']}.{resource['name']}"
            kind, name = describe_resource(resource["type"], resource["name"], instance.get("index_key"), address)
            if kind == "other":
                continue
            values = instance.get("attributes") or {}
            if resource["type"] == "terraform_data":
                # The sandbox module keeps a cloud object's attributes in the resource's input,
                # which the state stores as a dynamic value: {"value": ..., "type": ...}.
                values = (values.get("input") or {}).get("value") or {}
            held.append(
                _CloudObject(
                    kind=kind,
                    name=name,
                    flavor=str(values.get("flavor_name") or values.get("flavor") or ""),
                    size_gb=int(values.get("size") or 0),
                )
            )
    return held


def cloud_objects(state: Mapping[str, Any]) -> list[str]:
    """What a Terraform state holds in the cloud, as a person knows it ("instance mgmt1",
    "volume nfs-home"): what a cancelled or failed run left there."""
    return [label(obj.kind, obj.name) for obj in _state_resources(state)]


def left_summary(objects: list[str] | None) -> str:
    """One line on what a cluster's state holds, for a cancelled or failed cluster."""
    if objects is None:
        return "what it holds in the cloud is unknown: Terraform's state cannot be read"
    if not objects:
        return "nothing of it is left in the cloud"
    return f"left in the cloud (from Terraform's state): {', '.join(objects)}"


def _held(resources: list[_CloudObject], flavors: Mapping[str, Flavor]) -> Allocation:
    total = Allocation()
    floating_ips: set[str] = set()  # a floating IP and its association are one address
    for resource in resources:
        if resource.kind == "instance":
            flavor = flavors.get(resource.flavor)
            if flavor is None:
                raise ClusterStateError(
                    f"instance {resource.name} has flavor {resource.flavor!r}, which the cloud does not "
                    "list; pass the cloud's flavors (mchub.cloud.resources) to count what the cluster holds"
                )
            total.instances += 1
            total.cores += flavor.vcpus
            total.ram += flavor.ram_mb
        elif resource.kind == "volume":
            total.volumes += 1
            total.volume_gb += resource.size_gb
        elif resource.kind == "floating_ip":
            floating_ips.add(resource.name)
    total.floating_ips = len(floating_ips)
    return total


def _cluster_address(instances: list[InstanceState]) -> str | None:
    for tag in _ADDRESS_TAGS:
        for instance in instances:
            if tag in instance.tags and instance.public_ip:
                return instance.public_ip
    return None


def _output(outputs: Mapping[str, TerraformOutput], name: str) -> Any:
    output = outputs.get(name)
    if output is None or output.value is None:
        raise ClusterStateError(
            f"Terraform has no output {name!r}: the last apply did not finish; plan and apply again"
        )
    return output.value
