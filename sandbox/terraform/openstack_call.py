#!/usr/bin/env python3
"""One OpenStack operation for the sandbox Terraform module, run by its local-exec provisioners.

    python3 openstack_call.py OPERATION        (OPERATION: see OPERATIONS at the bottom)

Credentials come from the standard OS_* environment variables, as they reach Magic Castle's
openstack provider; the operation's parameters come from MC_* variables that the provisioner
sets. Standard library only, so whatever python3 is on PATH runs it. On failure the cloud's
own message goes to stderr and the exit status is 1, so `terraform apply` fails showing it.
Neither the password nor the token is ever printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

# Real clouds take minutes to build a server or volume; the sandbox takes none.
WAIT_SECONDS = 600.0
HTTP_TIMEOUT_SECONDS = 60.0

# Catalog types that may name each service (block storage goes by several names).
CATALOG_TYPES = {
    "compute": ("compute",),
    "image": ("image",),
    "volume": ("block-storage", "volumev3", "volume"),
    "network": ("network",),
}
# Glance and Neutron catalog entries usually omit the API version that their paths start with.
VERSION_SUFFIXES = {"image": "/v2", "network": "/v2.0"}


class CallError(Exception):
    """A failure that the person running Terraform can act on; its message is shown as is."""


class HTTPFailure(CallError):
    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {message}")
        self.status = status


def param(name: str) -> str:
    """A parameter of the operation, set by the module's provisioner."""
    value = os.environ.get(f"MC_{name}")
    if value is None:
        raise CallError(f"MC_{name} is not set: the module's provisioner must pass it in `environment`")
    return value


def credential(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise CallError(f"{name} is not set: export the cloud's OS_* credentials before running Terraform")
    return value


def domain(prefix: str) -> dict[str, str]:
    """Keystone domain reference from OS_<prefix>_DOMAIN_ID or _NAME (default: Default)."""
    domain_id = os.environ.get(f"OS_{prefix}_DOMAIN_ID")
    if domain_id:
        return {"id": domain_id}
    return {"name": os.environ.get(f"OS_{prefix}_DOMAIN_NAME") or "Default"}


def auth_request() -> dict[str, Any]:
    """Keystone v3 token request: application credential if given, else project-scoped password."""
    if os.environ.get("OS_APPLICATION_CREDENTIAL_ID"):
        secret = {
            "id": credential("OS_APPLICATION_CREDENTIAL_ID"),
            "secret": credential("OS_APPLICATION_CREDENTIAL_SECRET"),
        }
        return {"auth": {"identity": {"methods": ["application_credential"], "application_credential": secret}}}
    user = {"name": credential("OS_USERNAME"), "password": credential("OS_PASSWORD"), "domain": domain("USER")}
    project_id = os.environ.get("OS_PROJECT_ID")
    project = {"id": project_id} if project_id else {"name": credential("OS_PROJECT_NAME"), "domain": domain("PROJECT")}
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": project},
        }
    }


def cloud_message(raw: bytes) -> str:
    """The human message in an OpenStack error body ({"forbidden": {"message": ...}} and kin)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:500] or "(empty answer)"
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return body["message"]
        for value in body.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return json.dumps(body)[:500]


def send(method: str, url: str, what: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[Any, Any]:
    """One HTTP exchange: (response headers, decoded JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            raw = response.read()
            return response.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raise HTTPFailure(what, error.code, cloud_message(error.read())) from None
    except urllib.error.URLError as error:
        raise CallError(f"{what}: cannot reach {url}: {error.reason}") from None


class Cloud:
    """A Keystone-authenticated session: one token, endpoints from its catalog."""

    def __init__(self) -> None:
        auth_url = credential("OS_AUTH_URL").rstrip("/")
        if not auth_url.endswith("/v3"):
            auth_url += "/v3"
        headers, body = send("POST", f"{auth_url}/auth/tokens", "identity: authenticate", auth_request())
        token = headers.get("X-Subject-Token")
        if not token:
            raise CallError(f"identity: {auth_url} answered without an X-Subject-Token header")
        self._token = token
        self._catalog = body["token"].get("catalog", [])
        self._region = os.environ.get("OS_REGION_NAME") or None
        self._interface = (os.environ.get("OS_INTERFACE") or "public").replace("URL", "")

    def endpoint(self, service: str) -> str:
        """The URL of `service` in the catalog (preferred type first), with its API version."""
        for catalog_type in CATALOG_TYPES[service]:
            for entry in (e for e in self._catalog if e.get("type") == catalog_type):
                for endpoint in entry.get("endpoints", []):
                    region = endpoint.get("region_id") or endpoint.get("region")
                    if endpoint.get("interface") == self._interface and self._region in (None, region):
                        url = endpoint["url"].rstrip("/")
                        suffix = VERSION_SUFFIXES.get(service, "")
                        return url if url.endswith(suffix) else url + suffix
        region = f" in region {self._region}" if self._region else ""
        raise CallError(
            f"the cloud's catalog has no {self._interface} {service} endpoint{region}; "
            "check OS_REGION_NAME and OS_INTERFACE"
        )

    def call(self, method: str, service: str, path: str, body: Any = None) -> Any:
        url = self.endpoint(service) + path
        return self.fetch(method, url, f"{service} {method} {path.split('?')[0]}", body)

    def fetch(self, method: str, url: str, what: str, body: Any = None) -> Any:
        return send(method, url, what, body, {"X-Auth-Token": self._token})[1]

    def list(self, service: str, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a listing, following Nova/Cinder/Neutron `<key>_links` pages."""
        page = self.call("GET", service, path)
        items = list(page[key])
        while True:
            next_url = next((link["href"] for link in page.get(f"{key}_links", []) if link.get("rel") == "next"), None)
            if next_url is None:
                return items
            page = self.fetch("GET", next_url, f"{service} GET {path.split('?')[0]} (next page)")
            items.extend(page[key])

    def gone(self, service: str, path: str) -> bool:
        try:
            self.call("GET", service, path)
        except HTTPFailure as failure:
            if failure.status == 404:
                return True
            raise
        return False


def wait_until(what: str, done: Callable[[], bool]) -> None:
    """Poll `done` with a growing pause until it holds, or fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    pause = 0.1
    while not done():
        if time.monotonic() > deadline:
            raise CallError(f"gave up after {WAIT_SECONDS:.0f} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def delete_each(cloud: Cloud, service: str, kind: str, label: str, paths: list[str], wait: bool) -> None:
    """DELETE each path (one already gone is fine), waiting for it to vanish when `wait`."""
    if not paths:
        print(f"{kind} {label} is already gone")
    for path in paths:
        try:
            cloud.call("DELETE", service, path)
        except HTTPFailure as failure:
            if failure.status != 404:
                raise
        if wait:
            wait_until(f"{kind} {label} to be deleted", lambda path=path: cloud.gone(service, path))
        print(f"deleted {kind} {label}")


def undone_on_failure(
    cloud: Cloud, service: str, kind: str, label: str, path: str, finish: Callable[[], None]
) -> None:
    """Run `finish` (the rest of a create); if it fails or is interrupted, delete the new object.

    Terraform marks a resource whose create provisioner failed as tainted and never runs the
    destroy provisioner of a tainted resource: left here, the object would outlive the cluster.
    """
    try:
        finish()
    except BaseException:
        try:
            delete_each(cloud, service, kind, label, [path], wait=False)
        except CallError as error:
            print(f"could not delete the half-made {kind} {label} ({error}); delete it by hand", file=sys.stderr)
        raise


# Servers: named <cluster_name>-<instance> like Magic Castle's, told apart by metadata.cluster.


def cluster_servers(cloud: Cloud, name: str, cluster: str) -> list[dict[str, Any]]:
    servers = cloud.list("compute", "/servers/detail", "servers")
    return [s for s in servers if s.get("name") == name and (s.get("metadata") or {}).get("cluster") == cluster]


def flavor_id(cloud: Cloud, wanted: str) -> str:
    flavors = cloud.list("compute", "/flavors/detail", "flavors")
    for flavor in flavors:
        if wanted in (flavor.get("name"), flavor.get("id")):
            return flavor["id"]
    names = ", ".join(sorted(flavor.get("name", "?") for flavor in flavors))
    raise CallError(f"flavor {wanted!r} does not exist on this cloud; set the instance type to one of: {names}")


def image_id(cloud: Cloud, wanted: str) -> str:
    images = cloud.call("GET", "image", "/images?" + urllib.parse.urlencode({"name": wanted}))["images"]
    for image in images:
        if image.get("name") == wanted:
            return image["id"]
    raise CallError(f"image {wanted!r} does not exist on this cloud; set image to the name of an available image")


def boot_from(cloud: Cloud, volume_name: str, cluster: str) -> dict[str, Any]:
    """Nova's block device mapping that boots a server from the cluster's volume `volume_name`."""
    volumes = cluster_volumes(cloud, volume_name, cluster)
    if not volumes:
        raise CallError(f"boot volume {volume_name} of {cluster} does not exist; apply again to recreate it")
    return {
        "boot_index": 0,
        "uuid": volumes[0]["id"],
        "source_type": "volume",
        "destination_type": "volume",
        "delete_on_termination": False,
    }


def server_ready(cloud: Cloud, server_id: str, name: str) -> bool:
    server = cloud.call("GET", "compute", f"/servers/{server_id}")["server"]
    if server.get("status") == "ERROR":
        fault = (server.get("fault") or {}).get("message", "no reason given")
        raise CallError(f"server {name} failed to build: {fault}")
    return server.get("status") == "ACTIVE"


def create_server(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    existing = cluster_servers(cloud, name, cluster)
    if existing:
        # A run interrupted after the server was made but before Terraform saved it: keep it.
        server_id = existing[0]["id"]
        print(f"server {name} of {cluster} exists already ({server_id}), keeping it")
    else:
        server: dict[str, Any] = {
            "name": name,
            "flavorRef": flavor_id(cloud, param("FLAVOR")),
            "metadata": {"cluster": cluster, "instance": param("INSTANCE"), "tags": param("TAGS")},
        }
        boot_volume = param("BOOT_VOLUME")
        if boot_volume:
            # The volume already holds the image (see create_volume): the server boots from it.
            server["block_device_mapping_v2"] = [boot_from(cloud, boot_volume, cluster)]
        else:
            server["imageRef"] = image_id(cloud, param("IMAGE"))
        server_id = cloud.call("POST", "compute", "/servers", {"server": server})["server"]["id"]
        print(f"created server {name} ({server_id})")
    undone_on_failure(
        cloud, "compute", "server", name, f"/servers/{server_id}",
        lambda: wait_until(f"server {name} to become ACTIVE", lambda: server_ready(cloud, server_id, name)),
    )


def delete_server(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    paths = [f"/servers/{server['id']}" for server in cluster_servers(cloud, name, cluster)]
    delete_each(cloud, "compute", "server", name, paths, wait=True)


# Volumes: named <cluster_name>-<tag>-<name> (or <cluster_name>-<instance>-root for a boot
# volume), told apart by metadata.cluster.


def cluster_volumes(cloud: Cloud, name: str, cluster: str) -> list[dict[str, Any]]:
    volumes = cloud.list("volume", "/volumes/detail", "volumes")
    return [v for v in volumes if v.get("name") == name and (v.get("metadata") or {}).get("cluster") == cluster]


def volume_ready(cloud: Cloud, volume_id: str, name: str) -> bool:
    status = cloud.call("GET", "volume", f"/volumes/{volume_id}")["volume"].get("status")
    if status == "error":
        raise CallError(f"volume {name} failed to build (status error)")
    return status in ("available", "in-use")


def create_volume(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    existing = cluster_volumes(cloud, name, cluster)
    if existing:
        volume_id = existing[0]["id"]
        print(f"volume {name} of {cluster} exists already ({volume_id}), keeping it")
    else:
        volume: dict[str, Any] = {
            "name": name,
            "size": int(param("SIZE")),
            "description": f"{cluster} {name}",
            "metadata": {"cluster": cluster},
        }
        image = param("IMAGE")
        if image:
            volume["imageRef"] = image_id(cloud, image)
        volume_id = cloud.call("POST", "volume", "/volumes", {"volume": volume})["volume"]["id"]
        print(f"created volume {name} ({volume['size']} GB, {volume_id})")
    undone_on_failure(
        cloud, "volume", "volume", name, f"/volumes/{volume_id}",
        lambda: wait_until(f"volume {name} to become available", lambda: volume_ready(cloud, volume_id, name)),
    )


def delete_volume(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    paths = [f"/volumes/{volume['id']}" for volume in cluster_volumes(cloud, name, cluster)]
    delete_each(cloud, "volume", "volume", name, paths, wait=True)


# Floating IPs: the module picks the address; the description names cluster and instance,
# and is what finds an IP again, whatever address the cloud gave it.


def floating_ip_description() -> str:
    return f"{param('CLUSTER')} {param('INSTANCE')}"


def cluster_floating_ips(cloud: Cloud, description: str) -> list[dict[str, Any]]:
    return [ip for ip in cloud.list("network", "/floatingips", "floatingips") if ip.get("description") == description]


def external_network_id(cloud: Cloud) -> str:
    networks = cloud.list("network", "/networks?router%3Aexternal=True", "networks")
    external = [network for network in networks if network.get("router:external")]
    if not external:
        raise CallError("the cloud has no external network to allocate floating IPs from")
    return external[0]["id"]


def create_floating_ip(cloud: Cloud) -> None:
    address, description = param("ADDRESS"), floating_ip_description()
    existing = cluster_floating_ips(cloud, description)
    if existing:
        ip = existing[0]
        print(f"floating IP {ip.get('floating_ip_address')} of {description} exists already, keeping it")
    else:
        request = {
            "floating_network_id": external_network_id(cloud),
            "floating_ip_address": address,
            "description": description,
        }
        ip = cloud.call("POST", "network", "/floatingips", {"floatingip": request})["floatingip"]
        print(f"created floating IP {ip.get('floating_ip_address')} for {description}")
    undone_on_failure(
        cloud, "network", "floating IP", ip.get("floating_ip_address", "?"), f"/floatingips/{ip['id']}",
        lambda: check_address(ip, address, description),
    )


def check_address(ip: dict[str, Any], address: str, description: str) -> None:
    # The module outputs the address it asked for: a different one would be a lie.
    if ip.get("floating_ip_address") != address:
        raise CallError(
            f"the cloud gave {description} the floating IP {ip.get('floating_ip_address')}, not the "
            f"requested {address}: it must honour floating_ip_address"
        )


def delete_floating_ip(cloud: Cloud) -> None:
    description = floating_ip_description()
    paths = [f"/floatingips/{ip['id']}" for ip in cluster_floating_ips(cloud, description)]
    delete_each(cloud, "network", "floating IP", f"of {description}", paths, wait=False)


OPERATIONS: dict[str, Callable[[Cloud], None]] = {
    "create-server": create_server,
    "delete-server": delete_server,
    "create-volume": create_volume,
    "delete-volume": delete_volume,
    "create-floating-ip": create_floating_ip,
    "delete-floating-ip": delete_floating_ip,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in OPERATIONS:
        print(f"usage: {argv[0]} {{{','.join(OPERATIONS)}}}", file=sys.stderr)
        return 2
    try:
        OPERATIONS[argv[1]](Cloud())
    except CallError as error:
        print(f"{argv[1]}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{argv[1]}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
