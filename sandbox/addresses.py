"""Fake but well-formed addresses for subnets, servers and floating IPs."""

import ipaddress
import secrets
from collections.abc import Collection


def gateway_address(cidr: str) -> str:
    """The router's address on a subnet: its first host, as Neutron picks by default."""
    return str(ipaddress.ip_network(cidr).network_address + 1)


def allocation_pool(cidr: str) -> tuple[str, str]:
    """First and last address Neutron hands out on a subnet: every host but the gateway."""
    network = ipaddress.ip_network(cidr)
    return str(network.network_address + 2), str(network.broadcast_address - 1)


def in_pool(cidr: str, address: str) -> bool:
    """Whether `address` is one Neutron could hand out on the subnet `cidr`."""
    start, end = (ipaddress.ip_address(a) for a in allocation_pool(cidr))
    try:
        candidate = ipaddress.ip_address(address)
    except ValueError:
        return False
    # An address of the other IP version is in no pool (and cannot be compared with its ends).
    return candidate.version == start.version and start <= candidate <= end


def free_address(cidr: str, taken: Collection[str]) -> str | None:
    """The lowest address of the subnet's allocation pool not in `taken`; None when all are."""
    start, end = (ipaddress.ip_address(a) for a in allocation_pool(cidr))
    candidate = start
    while candidate <= end:
        if str(candidate) not in taken:
            return str(candidate)
        candidate += 1
    return None


def mac_address() -> str:
    """A MAC in the fa:16:3e prefix that OpenStack gives every port."""
    return "fa:16:3e:" + ":".join(f"{byte:02x}" for byte in secrets.token_bytes(3))
