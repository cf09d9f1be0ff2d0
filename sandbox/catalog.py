"""What the sandbox cloud offers and never changes: flavors, images, networks, quota defaults.

The sizes copy a typical Alliance (Compute Canada) OpenStack project, so the form and the
quota arithmetic meet the same numbers as on a real cloud. IDs are derived from names so
they stay the same across restarts, as a real cloud's do.
"""

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, Field

_NAMESPACE = uuid.UUID("6c1d7a52-3f4e-4c38-9d1b-5f0a8e2b7c61")

# When the catalog "was created": fixed so responses do not change between restarts.
CREATED_AT = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

REGION = "RegionOne"
AVAILABILITY_ZONE = "nova"


def stable_id(kind: str, name: str) -> str:
    """The UUID of catalog entry `name` of `kind`, the same in every run."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))


class Flavor(BaseModel):
    id: str
    name: str
    vcpus: int
    ram: int  # MB
    disk: int  # GB; 0 means the server boots from a volume
    description: str | None = None
    extra_specs: dict[str, str] = {}


class Image(BaseModel):
    id: str
    name: str
    status: str  # active, deactivated, ...
    os_distro: str
    os_version: str
    size: int  # bytes
    min_disk: int = 0
    min_ram: int = 0


class Network(BaseModel):
    id: str
    name: str
    external: bool
    cidr: str
    subnet_id: str


def _flavor(name: str, vcpus: int, ram: int, disk: int, **extra: object) -> Flavor:
    return Flavor(id=stable_id("flavor", name), name=name, vcpus=vcpus, ram=ram, disk=disk, **extra)


FLAVORS: tuple[Flavor, ...] = (
    _flavor("p1-1.5gb", 1, 1536, 0),
    _flavor("p2-3gb", 2, 3072, 0),
    _flavor("p4-6gb", 4, 6144, 0),
    _flavor("p8-12gb", 8, 12288, 0),
    _flavor("c8-30gb", 8, 30720, 20),
    _flavor("c16-60gb", 16, 61440, 20),
    # Alliance clouds expose GPUs as vGPUs, announced through the placement resource.
    _flavor(
        "g1-8gb-c4-22gb",
        4,
        22528,
        20,
        description="1 GPU (vGPU, 8 GB)",
        extra_specs={"resources:VGPU": "1"},
    ),
)


def _image(name: str, status: str, distro: str, version: str, size_mb: int, **extra: int) -> Image:
    return Image(
        id=stable_id("image", name),
        name=name,
        status=status,
        os_distro=distro,
        os_version=version,
        size=size_mb * 1024 * 1024,
        **extra,
    )


IMAGES: tuple[Image, ...] = (
    _image("Rocky-9", "active", "rocky", "9", 1024),
    _image("AlmaLinux-9", "active", "almalinux", "9", 980),
    _image("Rocky-8", "active", "rocky", "8", 1900),
    # Clusters cannot use these; the form must leave them out.
    _image("Ubuntu-24.04", "active", "ubuntu", "24.04", 600),
    _image("Windows-Server-2022", "active", "windows", "2022", 12000, min_disk=40, min_ram=4096),
    _image("CentOS-7", "active", "centos", "7", 850),
    _image("Rocky-9-old", "deactivated", "rocky", "9", 1010),
)

PUBLIC_NETWORK = Network(
    id=stable_id("network", "Public-Network"),
    name="Public-Network",
    external=True,
    # Shared address space (RFC 6598): never routed on the internet, and wide enough that the
    # sandbox's Terraform module can pick floating IPs by hashing names with few collisions.
    cidr="100.64.0.0/10",
    subnet_id=stable_id("subnet", "Public-Network"),
)
PROJECT_NETWORK = Network(
    id=stable_id("network", "sandbox-project-network"),
    name="sandbox-project-network",
    external=False,
    cidr="10.0.0.0/16",
    subnet_id=stable_id("subnet", "sandbox-project-network"),
)
NETWORKS: tuple[Network, ...] = (PUBLIC_NETWORK, PROJECT_NETWORK)


# Above any real project's quota (and within the 32-bit integers OpenStack's databases keep).
MAX_QUOTA = 1_000_000_000


class QuotaSizes(BaseModel, extra="forbid", strict=True):
    """The project's quota limits that the sandbox enforces; -1 means unlimited."""

    instances: int = Field(20, ge=-1, le=MAX_QUOTA)
    cores: int = Field(64, ge=-1, le=MAX_QUOTA)
    ram: int = Field(262144, ge=-1, le=MAX_QUOTA, description="MB")
    volumes: int = Field(20, ge=-1, le=MAX_QUOTA)
    gigabytes: int = Field(2000, ge=-1, le=MAX_QUOTA)
    floating_ips: int = Field(5, ge=-1, le=MAX_QUOTA)


# Quotas reported but not enforced: what a fresh project on a real cloud shows.
NOVA_FIXED_QUOTAS = {"key_pairs": 100, "metadata_items": 128, "server_groups": 10, "server_group_members": 10}
CINDER_FIXED_QUOTAS = {
    "snapshots": 10,
    "backups": 10,
    "backup_gigabytes": 1000,
    "per_volume_gigabytes": -1,
    "groups": 10,
}
NEUTRON_FIXED_QUOTAS = {
    "network": 100,
    "subnet": 100,
    "subnetpool": -1,
    "port": 500,
    "router": 10,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
}
# What the project holds from the start on the network side: its network, subnet, router,
# default security group and that group's rules.
NEUTRON_BASE_USAGE = {"network": 1, "subnet": 1, "router": 1, "security_group": 1, "security_group_rule": 4}


def find_flavor(ref: str) -> Flavor | None:
    """The flavor whose id or name is `ref`, or that a flavor URL (…/flavors/<id>) names."""
    key = ref.rstrip("/").rsplit("/", 1)[-1]
    return next((f for f in FLAVORS if key in (f.id, f.name)), None)


def find_image(ref: str) -> Image | None:
    """The image whose id or name is `ref`, or that an image URL (…/images/<id>) names."""
    key = ref.rstrip("/").rsplit("/", 1)[-1]
    return next((i for i in IMAGES if key in (i.id, i.name)), None)


def find_network(ref: str) -> Network | None:
    return next((n for n in NETWORKS if ref in (n.id, n.name)), None)
