"""Quota usage of the sandbox project and the check every create goes through.

Usage is counted from the live resources, never kept as a separate number, so it cannot
drift from what exists.
"""

from pydantic import BaseModel

from sandbox.catalog import QuotaSizes, find_flavor
from sandbox.state import CloudState


class Usage(BaseModel):
    instances: int = 0
    cores: int = 0
    ram: int = 0
    volumes: int = 0
    gigabytes: int = 0
    floating_ips: int = 0


def usage_of(state: CloudState) -> Usage:
    usage = Usage(
        instances=len(state.servers),
        volumes=len(state.volumes),
        gigabytes=sum(v.size for v in state.volumes.values()),
        floating_ips=len(state.floating_ips),
    )
    for server in state.servers.values():
        flavor = find_flavor(server.flavor_id)
        if flavor is not None:
            usage.cores += flavor.vcpus
            usage.ram += flavor.ram
    return usage


class QuotaExceeded(Exception):
    """A create would take `resource` over its limit; each API words this its own way."""

    def __init__(self, resource: str, requested: int, used: int, limit: int) -> None:
        super().__init__(f"{resource}: requested {requested}, {used} of {limit} used")
        self.resource = resource
        self.requested = requested
        self.used = used
        self.limit = limit


def check(state: CloudState, **requested: int) -> None:
    """Raise QuotaExceeded for the first of `requested` (in the order given) that does not fit."""
    limits: QuotaSizes = state.knobs.quotas
    usage = usage_of(state)
    for resource, amount in requested.items():
        limit = getattr(limits, resource)
        used = getattr(usage, resource)
        if limit >= 0 and used + amount > limit:
            raise QuotaExceeded(resource, amount, used, limit)
