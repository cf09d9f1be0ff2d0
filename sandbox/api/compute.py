"""Nova v2.1: flavors, limits, quota sets and servers, with quotas enforced as Nova does."""

import hashlib
import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from sandbox import accounts
from sandbox.addresses import free_address, mac_address
from sandbox.api.common import (
    Metadata,
    Microversion,
    MicroversionRange,
    Name,
    base_url,
    iso,
    on_paths,
    reply,
)
from sandbox.catalog import (
    AVAILABILITY_ZONE,
    FLAVORS,
    NOVA_FIXED_QUOTAS,
    PROJECT_NETWORK,
    Flavor,
    QuotaSizes,
    find_flavor,
    find_image,
)
from sandbox.faults import OpenStackError, Service, injected_failure
from sandbox.listing import paginate, select
from sandbox.quota import QuotaExceeded, Usage, check, usage_of
from sandbox.state import Server, Store, utcnow

NOVA = MicroversionRange(Service.COMPUTE, "compute", (2, 1), (2, 96), "X-OpenStack-Nova-API-Version")
PREFIX = "/compute/v2.1"
# Nova's hostId: sha224 of project and compute host; the sandbox has one host.
SANDBOX_HOST_ID = hashlib.sha224(f"{accounts.PROJECT_ID}sandbox-compute".encode()).hexdigest()


class _BlockDevice(BaseModel, extra="allow"):
    boot_index: int | Name | None = None
    source_type: Name | None = None
    uuid: Name | None = None


class _NewServer(BaseModel, extra="allow"):
    name: Name
    flavorRef: Name
    imageRef: Name | None = None
    metadata: Metadata = {}
    key_name: Name | None = None
    block_device_mapping_v2: list[_BlockDevice] = []


class CreateServer(BaseModel):
    server: _NewServer


def _version_entry(base: str, current: bool) -> dict:
    if current:
        entry = {"id": "v2.1", "status": "CURRENT", "version": NOVA.max_text, "min_version": NOVA.min_text}
        href = f"{base}{PREFIX}/"
    else:
        entry = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": ""}
        href = f"{base}/compute/v2/"
    return {**entry, "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": href}]}


def _links(base: str, kind: str, item_id: str) -> list[dict]:
    return [
        {"rel": "self", "href": f"{base}{PREFIX}/{kind}/{item_id}"},
        {"rel": "bookmark", "href": f"{base}/compute/{kind}/{item_id}"},
    ]


def flavor_body(flavor: Flavor, base: str, version: Microversion) -> dict:
    body = {
        "id": flavor.id,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "swap": 0 if version.at_least(2, 75) else "",
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": True,
        "rxtx_factor": 1.0,
        "links": _links(base, "flavors", flavor.id),
    }
    if version.at_least(2, 55):
        body["description"] = flavor.description
    if version.at_least(2, 61):
        body["extra_specs"] = flavor.extra_specs
    return body


def _server_flavor(flavor: Flavor, base: str, version: Microversion) -> dict:
    if not version.at_least(2, 47):
        return {"id": flavor.id, "links": [{"rel": "bookmark", "href": f"{base}/compute/flavors/{flavor.id}"}]}
    return {
        "original_name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "ephemeral": 0,
        "swap": 0,
        "extra_specs": flavor.extra_specs,
    }


def server_status(server: Server, build_seconds: float) -> str:
    """BUILD for the first `build_seconds` of a server's life (the knob as it is now), then ACTIVE."""
    building = (utcnow() - server.created_at).total_seconds() < build_seconds
    return "BUILD" if building else "ACTIVE"


def server_body(server: Server, base: str, version: Microversion, build_seconds: float) -> dict:
    flavor = find_flavor(server.flavor_id)
    created = iso(server.created_at)
    image = (
        {"id": server.image_id, "links": [{"rel": "bookmark", "href": f"{base}/compute/images/{server.image_id}"}]}
        if server.image_id
        else ""
    )
    address = {
        "version": 4,
        "addr": server.private_ip,
        "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": server.mac_address,
    }
    return {
        "id": server.id,
        "name": server.name,
        "status": server_status(server, build_seconds),
        "tenant_id": accounts.PROJECT_ID,
        "user_id": accounts.USER_ID,
        "metadata": server.metadata,
        "hostId": SANDBOX_HOST_ID,
        "image": image,
        "flavor": _server_flavor(flavor, base, version) if flavor else {},
        "created": created,
        "updated": created,
        "addresses": {PROJECT_NETWORK.name: [address]},
        "accessIPv4": "",
        "accessIPv6": "",
        "links": _links(base, "servers", server.id),
        "key_name": server.key_name,
        "progress": 0,
        "config_drive": "",
        "locked": False,
        "description": None,
        "tags": [],
        "security_groups": [{"name": "default"}],
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": AVAILABILITY_ZONE,
        "OS-EXT-STS:power_state": 1,
        "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:vm_state": "active",
        "OS-SRV-USG:launched_at": iso(server.created_at).rstrip("Z"),
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": [],
    }


def quota_set_body(project_id: str, limits: QuotaSizes, usage: Usage, version: Microversion, with_usage: bool) -> dict:
    values = {
        "instances": (limits.instances, usage.instances),
        "cores": (limits.cores, usage.cores),
        "ram": (limits.ram, usage.ram),
        **{name: (limit, 0) for name, limit in NOVA_FIXED_QUOTAS.items()},
    }
    if not version.at_least(2, 57):
        values.update(injected_files=(5, 0), injected_file_content_bytes=(10240, 0), injected_file_path_bytes=(255, 0))
    quota_set = {
        name: {"limit": limit, "in_use": used, "reserved": 0} if with_usage else limit
        for name, (limit, used) in values.items()
    }
    return {"quota_set": {"id": project_id, **quota_set}}


def _image_of(new: _NewServer) -> str | None:
    """The image the server boots from: imageRef, else its boot volume's source image, if any."""
    ref = new.imageRef
    if not ref:
        boot = next((d for d in new.block_device_mapping_v2 if str(d.boot_index) == "0"), None)
        if boot is None:
            raise OpenStackError(
                Service.COMPUTE,
                400,
                "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device "
                "mapping combination is not valid.",
            )
        if boot.source_type != "image" or not boot.uuid:
            return None
        ref = boot.uuid
    image = find_image(ref)
    if image is None:
        raise OpenStackError(Service.COMPUTE, 400, f"Image {ref} could not be found.")
    if image.status != "active":
        raise OpenStackError(Service.COMPUTE, 400, f"Image {image.id} is not active.")
    return image.id


def _flavor_or_404(flavor_id: str) -> Flavor:
    # Nova looks flavors up by id only; clients find one by name through the list.
    found = next((f for f in FLAVORS if f.id == flavor_id), None)
    if found is None:
        raise OpenStackError(Service.COMPUTE, 404, f"Flavor {flavor_id} could not be found.")
    return found


def router(store: Store) -> APIRouter:
    api = APIRouter()

    def server_or_404(server_id: str) -> Server:
        server = store.state.servers.get(server_id)
        if server is None:
            raise OpenStackError(Service.COMPUTE, 404, f"Instance {server_id} could not be found.")
        return server

    @on_paths(api, ["/compute", "/compute/"])
    async def versions(request: Request) -> Response:
        base = base_url(request)
        return reply({"versions": [_version_entry(base, False), _version_entry(base, True)]}, 300)

    @on_paths(api, [PREFIX, PREFIX + "/"])
    async def version(request: Request) -> Response:
        return NOVA.of(request).reply({"version": _version_entry(base_url(request), True)})

    @on_paths(api, [f"{PREFIX}/flavors", f"{PREFIX}/flavors/detail"])
    async def flavors(request: Request) -> Response:
        version = NOVA.of(request)
        base = base_url(request)
        items = select([flavor_body(f, base, version) for f in FLAVORS], request.query_params)
        page, next_url = paginate(Service.COMPUTE, items, request.query_params, request.url)
        if not request.url.path.endswith("/detail"):
            page = [{key: f[key] for key in ("id", "name", "links", "description") if key in f} for f in page]
        body: dict = {"flavors": page}
        if next_url:
            body["flavors_links"] = [{"rel": "next", "href": next_url}]
        return version.reply(body)

    @api.get(PREFIX + "/flavors/{flavor_id}")
    async def flavor(flavor_id: str, request: Request) -> Response:
        version = NOVA.of(request)
        return version.reply({"flavor": flavor_body(_flavor_or_404(flavor_id), base_url(request), version)})

    @api.get(PREFIX + "/flavors/{flavor_id}/os-extra_specs")
    async def extra_specs(flavor_id: str, request: Request) -> Response:
        return NOVA.of(request).reply({"extra_specs": _flavor_or_404(flavor_id).extra_specs})

    @api.get(PREFIX + "/limits")
    async def limits(request: Request) -> Response:
        quotas = store.state.knobs.quotas
        usage = usage_of(store.state)
        absolute = {
            "maxTotalInstances": quotas.instances,
            "totalInstancesUsed": usage.instances,
            "maxTotalCores": quotas.cores,
            "totalCoresUsed": usage.cores,
            "maxTotalRAMSize": quotas.ram,
            "totalRAMUsed": usage.ram,
            "maxServerMeta": NOVA_FIXED_QUOTAS["metadata_items"],
            "maxTotalKeypairs": NOVA_FIXED_QUOTAS["key_pairs"],
            "maxServerGroups": NOVA_FIXED_QUOTAS["server_groups"],
            "maxServerGroupMembers": NOVA_FIXED_QUOTAS["server_group_members"],
            "totalServerGroupsUsed": 0,
        }
        return NOVA.of(request).reply({"limits": {"rate": [], "absolute": absolute}})

    @on_paths(api, [PREFIX + "/os-quota-sets/{project_id}" + suffix for suffix in ("", "/detail", "/defaults")])
    async def quota_set(project_id: str, request: Request) -> Response:
        version = NOVA.of(request)
        path = request.url.path
        # Nova does not check the project; another project simply has the defaults and no usage.
        ours = project_id == accounts.PROJECT_ID and not path.endswith("/defaults")
        limits = store.state.knobs.quotas if ours else QuotaSizes()
        usage = usage_of(store.state) if ours else Usage()
        with_usage = path.endswith("/detail") or request.query_params.get("usage", "").lower() == "true"
        return version.reply(quota_set_body(project_id, limits, usage, version, with_usage))

    @on_paths(api, [PREFIX + "/servers", PREFIX + "/servers/detail"])
    async def servers(request: Request) -> Response:
        version = NOVA.of(request)
        base = base_url(request)
        newest_first = sorted(store.state.servers.values(), key=lambda s: s.created_at, reverse=True)
        build_seconds = store.state.knobs.build_seconds
        bodies = [server_body(s, base, version, build_seconds) for s in newest_first]
        items = select(bodies, request.query_params, ["name"])
        page, next_url = paginate(Service.COMPUTE, items, request.query_params, request.url)
        if not request.url.path.endswith("/detail"):
            page = [{"id": s["id"], "name": s["name"], "links": s["links"]} for s in page]
        body: dict = {"servers": page}
        if next_url:
            body["servers_links"] = [{"rel": "next", "href": next_url}]
        return version.reply(body)

    @api.post(PREFIX + "/servers")
    async def create_server(body: CreateServer, request: Request) -> Response:
        version = NOVA.of(request)
        new = body.server
        if store.take_injected_fault("fail_next_server_creates"):
            raise injected_failure(Service.COMPUTE, "fail_next_server_creates")
        flavor = find_flavor(new.flavorRef)
        if flavor is None:
            raise OpenStackError(Service.COMPUTE, 400, f"Flavor {new.flavorRef} could not be found.")
        image_id = _image_of(new)
        try:
            check(store.state, instances=1, cores=flavor.vcpus, ram=flavor.ram)
        except QuotaExceeded as over:
            raise OpenStackError(
                Service.COMPUTE,
                403,
                f"Quota exceeded for {over.resource}: Requested {over.requested}, but already used "
                f"{over.used} of {over.limit} {over.resource}",
            ) from None
        taken = {s.private_ip for s in store.state.servers.values()}
        private_ip = free_address(PROJECT_NETWORK.cidr, taken)
        if private_ip is None:
            raise OpenStackError(Service.COMPUTE, 500, f"No fixed IP address left on {PROJECT_NETWORK.name}.")
        server = Server(
            id=str(uuid.uuid4()),
            name=new.name,
            flavor_id=flavor.id,
            image_id=image_id,
            metadata=new.metadata,
            key_name=new.key_name,
            private_ip=private_ip,
            mac_address=mac_address(),
            created_at=utcnow(),
        )
        store.state.servers[server.id] = server
        store.save()
        base = base_url(request)
        created = {
            "id": server.id,
            "links": _links(base, "servers", server.id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
        }
        response = version.reply({"server": created}, 202)
        response.headers["Location"] = f"{base}{PREFIX}/servers/{server.id}"
        return response

    @api.get(PREFIX + "/servers/{server_id}")
    async def server(server_id: str, request: Request) -> Response:
        version = NOVA.of(request)
        body = server_body(server_or_404(server_id), base_url(request), version, store.state.knobs.build_seconds)
        return version.reply({"server": body})

    @api.get(PREFIX + "/servers/{server_id}/metadata")
    async def server_metadata(server_id: str, request: Request) -> Response:
        return NOVA.of(request).reply({"metadata": server_or_404(server_id).metadata})

    @api.delete(PREFIX + "/servers/{server_id}")
    async def delete_server(server_id: str, request: Request) -> Response:
        version = NOVA.of(request)
        server_or_404(server_id)
        del store.state.servers[server_id]
        store.save()
        return Response(status_code=204, headers=version.headers())

    @api.get(PREFIX + "/os-availability-zone")
    async def availability_zones(request: Request) -> Response:
        zones = [{"zoneName": AVAILABILITY_ZONE, "zoneState": {"available": True}, "hosts": None}]
        return NOVA.of(request).reply({"availabilityZoneInfo": zones})

    return api
