"""Quota arithmetic: what a cluster spec takes from a project, and whether it fits.

An existing cluster's own resources count as available to its modification: growing a
cluster from 3 to 5 nodes needs only the 2 new nodes' share of the free quota.
"""

from collections.abc import Mapping

from pydantic import BaseModel

from mchub.cloud.resources import CloudResources, Flavor, Quota
from mchub.errors import MCHubError
from mchub.spec.model import ClusterSpec

# Magic Castle gives an instance whose flavor has a smaller root disk than this a boot
# volume of this size, which counts against the volume quotas.
ROOT_DISK_GB = 10


class UnknownFlavor(MCHubError, ValueError):
    def __init__(self, prefix: str, flavor: str) -> None:
        super().__init__(f"instances.{prefix}.type: {flavor!r} is not a flavor of this cloud")


class Allocation(BaseModel):
    """Resources of each quota held (or to be held) by one cluster."""

    instances: int = 0
    cores: int = 0
    ram: int = 0
    volumes: int = 0
    volume_gb: int = 0
    floating_ips: int = 0


def allocation_of(spec: ClusterSpec, flavors: Mapping[str, Flavor]) -> Allocation:
    """Σ count × flavor over every instance row, plus volumes and public IPs."""
    total = Allocation()
    for prefix, group in spec.instances.items():
        flavor = flavors.get(group.type)
        if flavor is None:
            raise UnknownFlavor(prefix, group.type)
        total.instances += group.count
        total.cores += group.count * flavor.vcpus
        total.ram += group.count * flavor.ram_mb
        if flavor.disk_gb < ROOT_DISK_GB:
            total.volumes += group.count
            total.volume_gb += group.count * ROOT_DISK_GB
        if "public" in group.tags:
            total.floating_ips += group.count
    for named in spec.volumes.values():
        for volume in named.values():
            total.volumes += 1
            total.volume_gb += volume.size
    return total


class Shortfall(BaseModel):
    """One quota the cluster does not fit in."""

    quota: str
    unit: str
    needed: int
    available: int
    held: int

    @property
    def message(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        own = f" (counting the {self.held}{unit} this cluster already holds)" if self.held else ""
        return (
            f"{self.quota}: the cluster needs {self.needed}{unit}, "
            f"the project has {self.available}{unit} free{own}"
        )


class QuotaLine(BaseModel):
    """One quota as the form's bar shows it: used by others, this cluster, and what is left."""

    quota: Quota
    held: int
    needed: int

    @property
    def used_by_others(self) -> int:
        return self.quota.used - self.held

    @property
    def available(self) -> int | None:
        return None if self.quota.free is None else self.quota.free + self.held

    @property
    def shortfall(self) -> Shortfall | None:
        available = self.available
        if available is None or self.needed <= available:
            return None
        return Shortfall(
            quota=self.quota.name,
            unit=self.quota.unit,
            needed=self.needed,
            available=available,
            held=self.held,
        )


def quota_lines(
    spec: ClusterSpec, resources: CloudResources, held: Allocation | None = None
) -> list[QuotaLine]:
    """Every quota with what the spec needs of it, in the form's order."""
    needed = allocation_of(spec, {f.name: f for f in resources.flavors})
    held = held or Allocation()
    return [
        QuotaLine(quota=quota, held=getattr(held, field), needed=getattr(needed, field))
        for field, quota in resources.quotas
    ]


def check_quota(
    spec: ClusterSpec, resources: CloudResources, held: Allocation | None = None
) -> list[Shortfall]:
    """Every quota the spec does not fit in, empty when it fits."""
    return [line.shortfall for line in quota_lines(spec, resources, held) if line.shortfall]
