"""Neutron v2.0: networks, subnets, quotas with usage and floating IPs, with quotas enforced as Neutron does."""

import ipaddress
import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from sandbox import accounts
from sandbox.addresses import allocation_pool, free_address, gateway_address, in_pool
from sandbox.api.common import Description, IpAddress, Name, base_url, iso, on_paths, reply
from sandbox.catalog import (
    CREATED_AT,
    NETWORKS,
    NEUTRON_BASE_USAGE,
    NEUTRON_FIXED_QUOTAS,
    Network,
    QuotaSizes,
    find_network,
)
from sandbox.faults import OpenStackError, Service
from sandbox.listing import paginate, select
from sandbox.quota import QuotaExceeded, check
from sandbox.state import CloudState, FloatingIp, Store, utcnow

PREFIX = "/networking/v2.0"
# Ports the project's router and DHCP agent hold on its network.
INFRASTRUCTURE_PORTS = 2


class _NewFloatingIp(BaseModel, extra="allow"):
    floating_network_id: Name
    floating_ip_address: IpAddress | None = None
    port_id: Name | None = None
    fixed_ip_address: IpAddress | None = None
    description: Description = ""


class CreateFloatingIp(BaseModel):
    floatingip: _NewFloatingIp


def _owner(external: bool) -> str:
    # The external network belongs to the cloud's admin project; the project network to ours.
    return accounts.ADMIN_PROJECT_ID if external else accounts.PROJECT_ID


def _stamps() -> dict:
    return {"created_at": iso(CREATED_AT), "updated_at": iso(CREATED_AT), "revision_number": 1, "tags": []}


def _network_bodies() -> list[dict]:
    return [
        {
            "id": network.id,
            "name": network.name,
            "status": "ACTIVE",
            "admin_state_up": True,
            "shared": False,
            "router:external": network.external,
            "is_default": network.external,
            "subnets": [network.subnet_id],
            "mtu": 1500 if network.external else 1450,
            "port_security_enabled": True,
            "availability_zones": ["nova"],
            "availability_zone_hints": [],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "description": "",
            "project_id": _owner(network.external),
            "tenant_id": _owner(network.external),
            **_stamps(),
        }
        for network in NETWORKS
    ]


def _subnet_bodies() -> list[dict]:
    bodies = []
    for network in NETWORKS:
        start, end = allocation_pool(network.cidr)
        bodies.append(
            {
                "id": network.subnet_id,
                "name": f"{network.name}-subnet",
                "network_id": network.id,
                "cidr": network.cidr,
                "ip_version": 4,
                "gateway_ip": gateway_address(network.cidr),
                "allocation_pools": [{"start": start, "end": end}],
                "enable_dhcp": not network.external,
                "dns_nameservers": [],
                "host_routes": [],
                "description": "",
                "project_id": _owner(network.external),
                "tenant_id": _owner(network.external),
                **_stamps(),
            }
        )
    return bodies


# Networks and subnets never change, so their bodies are built once.
NETWORK_BODIES = _network_bodies()
SUBNET_BODIES = _subnet_bodies()


def floating_ip_body(ip: FloatingIp) -> dict:
    stamp = iso(ip.created_at)
    return {
        "id": ip.id,
        "floating_ip_address": ip.address,
        "floating_network_id": ip.network_id,
        "port_id": ip.port_id,
        "fixed_ip_address": ip.fixed_ip,
        "router_id": None,
        "status": "ACTIVE" if ip.port_id else "DOWN",
        "description": ip.description,
        "dns_domain": "",
        "dns_name": "",
        "port_details": None,
        "qos_policy_id": None,
        "project_id": accounts.PROJECT_ID,
        "tenant_id": accounts.PROJECT_ID,
        "created_at": stamp,
        "updated_at": stamp,
        "revision_number": 0,
        "tags": [],
    }


def quota_body(state: CloudState | None, with_usage: bool) -> dict:
    """The project's Neutron quotas; `state` None means the defaults with nothing in use."""
    limits = state.knobs.quotas if state else QuotaSizes()
    used = dict(NEUTRON_BASE_USAGE) if state else {}
    if state:
        used["floatingip"] = len(state.floating_ips)
        used["port"] = len(state.servers) + INFRASTRUCTURE_PORTS
    values = {"floatingip": limits.floating_ips, **NEUTRON_FIXED_QUOTAS}
    return {
        "quota": {
            name: {"used": used.get(name, 0), "limit": limit, "reserved": 0} if with_usage else limit
            for name, limit in values.items()
        }
    }


def _listed(key: str, items: list[dict], request: Request) -> Response:
    page, next_url = paginate(Service.NETWORK, select(items, request.query_params), request.query_params, request.url)
    body: dict = {key: page}
    if next_url:
        body[f"{key}_links"] = [{"rel": "next", "href": next_url}]
    return reply(body)


def _not_found(kind: str, item_id: str) -> OpenStackError:
    return OpenStackError(
        Service.NETWORK, 404, f"{kind} {item_id} could not be found.", kind=f"{kind.replace(' ', '')}NotFound"
    )


def _one(key: str, kind: str, items: list[dict], item_id: str) -> Response:
    found = next((item for item in items if item["id"] == item_id), None)
    if found is None:
        raise _not_found(kind, item_id)
    return reply({key: found})


def _floating_address(state: CloudState, network: Network, requested: str | None) -> str:
    """The address a new floating IP gets: the one requested if it is free, else the lowest free one."""
    taken = {ip.address for ip in state.floating_ips.values()}
    if requested is None:
        address = free_address(network.cidr, taken)
        if address is None:
            raise OpenStackError(
                Service.NETWORK,
                409,
                f"No more IP addresses available on network {network.id}.",
                kind="IpAddressGenerationFailure",
            )
        return address
    version = ipaddress.ip_network(network.cidr).version
    if ipaddress.ip_address(requested).version != version:
        raise OpenStackError(
            Service.NETWORK,
            400,
            f"IP address {requested} is not a valid IP for any of the subnets on the specified network: "
            f"network {network.id} has only an IPv{version} subnet ({network.cidr}).",
            kind="InvalidIpForNetwork",
        )
    if not in_pool(network.cidr, requested):
        raise OpenStackError(
            Service.NETWORK,
            400,
            f"IP address {requested} is not a valid IP for any of the subnets on the specified network.",
            kind="InvalidIpForNetwork",
        )
    if requested in taken:
        raise OpenStackError(
            Service.NETWORK,
            409,
            f"IP address {requested} already allocated in subnet {network.subnet_id}",
            kind="IpAddressAlreadyAllocated",
        )
    return requested


def router(store: Store) -> APIRouter:
    api = APIRouter()

    def floating_ips() -> list[dict]:
        return [floating_ip_body(ip) for ip in sorted(store.state.floating_ips.values(), key=lambda i: i.created_at)]

    @on_paths(api, ["/networking", "/networking/"])
    async def versions(request: Request) -> Response:
        links = [{"rel": "self", "href": f"{base_url(request)}{PREFIX}/"}]
        return reply({"versions": [{"id": "v2.0", "status": "CURRENT", "links": links}]})

    @on_paths(api, [PREFIX, PREFIX + "/"])
    async def resources(request: Request) -> Response:
        base = base_url(request)
        names = [("network", "networks"), ("subnet", "subnets"), ("floatingip", "floatingips"), ("quota", "quotas")]
        listed = [
            {"name": singular, "collection": plural, "links": [{"rel": "self", "href": f"{base}{PREFIX}/{plural}"}]}
            for singular, plural in names
        ]
        return reply({"resources": listed})

    @api.get(PREFIX + "/networks")
    async def networks(request: Request) -> Response:
        return _listed("networks", NETWORK_BODIES, request)

    @api.get(PREFIX + "/networks/{network_id}")
    async def network(network_id: str) -> Response:
        return _one("network", "Network", NETWORK_BODIES, network_id)

    @api.get(PREFIX + "/subnets")
    async def subnets(request: Request) -> Response:
        return _listed("subnets", SUBNET_BODIES, request)

    @api.get(PREFIX + "/subnets/{subnet_id}")
    async def subnet(subnet_id: str) -> Response:
        return _one("subnet", "Subnet", SUBNET_BODIES, subnet_id)

    @on_paths(api, [PREFIX + "/quotas/{project_id}" + suffix for suffix in ("", "/details", "/default")])
    async def quotas(project_id: str, request: Request) -> Response:
        path = request.url.path
        ours = project_id == accounts.PROJECT_ID and not path.endswith("/default")
        return reply(quota_body(store.state if ours else None, with_usage=path.endswith("/details")))

    @api.get(PREFIX + "/floatingips")
    async def list_floating_ips(request: Request) -> Response:
        return _listed("floatingips", floating_ips(), request)

    @api.get(PREFIX + "/floatingips/{ip_id}")
    async def floating_ip(ip_id: str) -> Response:
        return _one("floatingip", "Floating IP", floating_ips(), ip_id)

    @api.post(PREFIX + "/floatingips")
    async def create_floating_ip(body: CreateFloatingIp) -> Response:
        new = body.floatingip
        network = find_network(new.floating_network_id)
        if network is None or network.id != new.floating_network_id:
            raise _not_found("Network", new.floating_network_id)
        if not network.external:
            raise OpenStackError(
                Service.NETWORK,
                400,
                f"Bad floatingip request: Network {network.id} is not a valid external network.",
                kind="BadRequest",
            )
        try:
            check(store.state, floating_ips=1)
        except QuotaExceeded:
            raise OpenStackError(
                Service.NETWORK, 409, "Quota exceeded for resources: ['floatingip'].", kind="OverQuota"
            ) from None
        address = _floating_address(store.state, network, new.floating_ip_address)
        ip = FloatingIp(
            id=str(uuid.uuid4()),
            address=address,
            network_id=network.id,
            port_id=new.port_id,
            fixed_ip=new.fixed_ip_address,
            description=new.description,
            created_at=utcnow(),
        )
        store.state.floating_ips[ip.id] = ip
        store.save()
        return reply({"floatingip": floating_ip_body(ip)}, 201)

    @api.delete(PREFIX + "/floatingips/{ip_id}")
    async def delete_floating_ip(ip_id: str) -> Response:
        if ip_id not in store.state.floating_ips:
            raise _not_found("Floating IP", ip_id)
        del store.state.floating_ips[ip_id]
        store.save()
        return Response(status_code=204)

    return api
