"""Which flavors a row of machines may use: Magic Castle's roles need a minimum size.

A row's role comes from its tags; a row with several roles (mgmt and login on one machine)
needs the largest minimum of each.
"""

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from mchub.cloud.resources import Flavor


class Minimum(BaseModel):
    ram_mb: int
    vcpus: int

    def describe(self) -> str:
        return f"at least {self.ram_mb / 1024:g} GB of RAM and {self.vcpus} vCPU"


# FreeIPA, Slurm's controller and database, and Puppet's server share the mgmt machine.
ROLE_MINIMUMS: dict[str, Minimum] = {
    "mgmt": Minimum(ram_mb=6144, vcpus=2),
    "login": Minimum(ram_mb=2048, vcpus=2),
    "node": Minimum(ram_mb=2048, vcpus=1),
}
DEFAULT_ROLE = "node"


def roles_of(tags: Iterable[str]) -> list[str]:
    """The roles with a minimum size among `tags`; a row with none of them is a node."""
    roles = [role for role in ROLE_MINIMUMS if role in set(tags)]
    return roles or [DEFAULT_ROLE]


def minimum_for(tags: Iterable[str]) -> Minimum:
    roles = [ROLE_MINIMUMS[role] for role in roles_of(tags)]
    return Minimum(ram_mb=max(m.ram_mb for m in roles), vcpus=max(m.vcpus for m in roles))


def fits(flavor: Flavor, tags: Iterable[str]) -> bool:
    minimum = minimum_for(tags)
    return flavor.ram_mb >= minimum.ram_mb and flavor.vcpus >= minimum.vcpus


def flavors_for(flavors: Sequence[Flavor], tags: Iterable[str]) -> list[Flavor]:
    """The flavors big enough for a row with `tags`, smallest first (by RAM, then vCPU)."""
    tags = list(tags)
    return sorted((f for f in flavors if fits(f, tags)), key=lambda f: (f.ram_mb, f.vcpus, f.name))


def too_small(flavor: Flavor, tags: Iterable[str]) -> str | None:
    """Why `flavor` cannot serve a row with `tags`, None when it can."""
    tags = list(tags)
    if fits(flavor, tags):
        return None
    role = "/".join(roles_of(tags))
    return (
        f"{flavor.name} ({flavor.vcpus} vCPU, {flavor.ram_mb / 1024:g} GB RAM) is too small for a {role} "
        f"instance, which needs {minimum_for(tags).describe()}; choose a larger flavor"
    )
