#!/usr/bin/env python3
"""One OpenStack operation for the sandbox Terraform module, run by its local-exec provisioners.

    python3 -I -S openstack_call.py OPERATION  (OPERATION: see OPERATIONS at the bottom)

Credentials come from the standard OS_* environment variables, as they reach Magic Castle's
openstack provider; the operation's parameters come from MC_* variables that the provisioner
sets. Standard library only, so whatever python3 is on PATH runs it, isolated and without
site-packages (-I -S: it starts in a third of the time). On failure the cloud's
own message goes to stderr and the exit status is 1, so `terraform apply` fails showing it.
Neither the password nor the token is ever printed.

It behaves as Magic Castle's openstack provider does, so that what goes wrong there goes
wrong here too:
- a create always makes a new object, even where one of the same name exists (an object
  left by a run killed mid-apply is not adopted: it is a leak, and is seen as one);
- each object is tagged with the id of the terraform_data resource that made it
  (MC_RESOURCE_ID), and a delete removes only that resource's object, as the provider
  deletes by the id in its state;
- an interrupted create (SIGINT) deletes the object it made, as the provider's would be,
  saved as tainted and deleted by the next apply. Terraform kills a provisioner with
  SIGKILL right after passing on the interrupt, so a create runs in a child process that
  outlives that kill long enough to delete what it made, and holds the interrupt while its
  create request is in flight, so that no object is ever made without its id being known.
  A create that succeeded just as Terraform was interrupted, which Terraform counts as
  failed, deletes its object too (see outliving_a_kill).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

# Real clouds take minutes to build a server or volume; the sandbox takes none.
WAIT_SECONDS = 600.0
# How long a finished create watches for an interrupt that Terraform may have seen before it
# noticed the create end, and how long it then waits for Terraform to save its state.
LINGER_SECONDS = 0.2
VERDICT_SECONDS = 60.0
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


def say(text: str, error: bool = False) -> None:
    """Print a line for Terraform's log. An interrupted Terraform stops reading before a create
    has undone its object: what is said after that is lost, and must not stop the undoing."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


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
        INTERRUPTS.check_parent()
        if time.monotonic() > deadline:
            raise CallError(f"gave up after {WAIT_SECONDS:.0f} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def delete_each(cloud: Cloud, service: str, kind: str, label: str, paths: list[str], wait: bool) -> None:
    """DELETE each path (one already gone is fine), waiting for it to vanish when `wait`."""
    if not paths:
        say(f"{kind} {label} is already gone")
    for path in paths:
        try:
            cloud.call("DELETE", service, path)
        except HTTPFailure as failure:
            if failure.status != 404:
                raise
        if wait:
            wait_until(f"{kind} {label} to be deleted", lambda path=path: cloud.gone(service, path))
        say(f"deleted {kind} {label}")


class Interrupts:
    """SIGINT raises KeyboardInterrupt, except while held: then it waits until released. The
    death of the process `parent` counts as an interrupt too, noticed at `check_parent`."""

    def __init__(self) -> None:
        self.held = False
        self.pending = False
        self.parent: int | None = None

    def install(self, parent: int) -> None:
        self.parent = parent
        signal.signal(signal.SIGINT, self._on_signal)

    def check_parent(self) -> None:
        if self.parent is not None and os.getppid() != self.parent:
            raise KeyboardInterrupt

    def _on_signal(self, _signum: int, _frame: object) -> None:
        if self.held:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def release(self) -> None:
        self.held = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


INTERRUPTS = Interrupts()


def made(cloud: Cloud, service: str, kind: str, label: str, create: Callable[[], str], finish: Callable[[str], None]) -> None:
    """`create()` (the object's path), then `finish(path)`; if finishing fails or is interrupted,
    delete the new object, and likewise if Terraform turns out not to count the create as done
    (see outliving_a_kill).

    Terraform marks a resource whose create provisioner failed as tainted and never runs the
    destroy provisioner of a tainted resource: left here, the object would outlive the cluster.
    An interrupt that arrives during `create()` waits for its answer, so that the path of the
    object to delete is known.
    """
    INTERRUPTS.held = True
    try:
        path = create()
    except BaseException:
        INTERRUPTS.held = False
        raise
    try:
        INTERRUPTS.release()
        finish(path)
        INTERRUPTS.check_parent()  # killed meanwhile, Terraform counts the create as failed
    except BaseException:
        INTERRUPTS.held = True  # a second interrupt must not stop the deletion
        undo(cloud, service, kind, label, path)
        raise
    # Made: whether it stays is up to Terraform now, not to an interrupt.
    INTERRUPTS.held = True
    UNDO_IF_NOT_COUNTED.append(lambda: undo(cloud, service, kind, label, path))


def undo(cloud: Cloud, service: str, kind: str, label: str, path: str) -> None:
    try:
        delete_each(cloud, service, kind, label, [path], wait=False)
    except CallError as error:
        say(f"could not delete the half-made {kind} {label} ({error}); delete it by hand", error=True)


UNDO_IF_NOT_COUNTED: list[Callable[[], None]] = []
"""The deletions of what this create made, for when Terraform does not count it as done."""


def resource_id() -> str:
    """The id of the terraform_data resource this object belongs to (its `self.id`)."""
    return param("RESOURCE_ID")


def owned(item: dict[str, Any], cluster: str, terraform_id: str) -> bool:
    """`item` (a server or volume) was made by the resource `terraform_id` of `cluster`; an
    untagged one of the cluster was made before objects were tagged, and belongs to whichever
    resource has its name."""
    metadata = item.get("metadata") or {}
    return metadata.get("cluster") == cluster and metadata.get("terraform_id", terraform_id) == terraform_id


# Servers: named <cluster_name>-<instance> like Magic Castle's, told apart by metadata.cluster
# and metadata.terraform_id.


def resource_servers(cloud: Cloud, name: str, cluster: str, terraform_id: str) -> list[dict[str, Any]]:
    servers = cloud.list("compute", "/servers/detail", "servers")
    return [s for s in servers if s.get("name") == name and owned(s, cluster, terraform_id)]


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


def boot_from(cloud: Cloud, volume_name: str, cluster: str, terraform_id: str) -> dict[str, Any]:
    """Nova's block device mapping that boots a server from the volume the cluster's
    resource `terraform_id` made."""
    volumes = resource_volumes(cloud, volume_name, cluster, terraform_id)
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
    server: dict[str, Any] = {
        "name": name,
        "flavorRef": flavor_id(cloud, param("FLAVOR")),
        "metadata": {
            "cluster": cluster,
            "instance": param("INSTANCE"),
            "tags": param("TAGS"),
            "terraform_id": resource_id(),
        },
    }
    boot_volume = param("BOOT_VOLUME")
    if boot_volume:
        # The volume already holds the image (see create_volume): the server boots from it.
        server["block_device_mapping_v2"] = [boot_from(cloud, boot_volume, cluster, param("BOOT_VOLUME_ID"))]
    else:
        server["imageRef"] = image_id(cloud, param("IMAGE"))

    def create() -> str:
        server_id = cloud.call("POST", "compute", "/servers", {"server": server})["server"]["id"]
        say(f"created server {name} ({server_id})")
        return f"/servers/{server_id}"

    def finish(path: str) -> None:
        server_id = path.rsplit("/", 1)[1]
        wait_until(f"server {name} to become ACTIVE", lambda: server_ready(cloud, server_id, name))

    made(cloud, "compute", "server", name, create, finish)


def delete_server(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    paths = [f"/servers/{server['id']}" for server in resource_servers(cloud, name, cluster, resource_id())]
    delete_each(cloud, "compute", "server", name, paths, wait=True)


# Volumes: named <cluster_name>-<tag>-<name> (or <cluster_name>-<instance>-root for a boot
# volume), told apart by metadata.cluster and metadata.terraform_id.


def resource_volumes(cloud: Cloud, name: str, cluster: str, terraform_id: str) -> list[dict[str, Any]]:
    volumes = cloud.list("volume", "/volumes/detail", "volumes")
    return [v for v in volumes if v.get("name") == name and owned(v, cluster, terraform_id)]


def volume_ready(cloud: Cloud, volume_id: str, name: str) -> bool:
    status = cloud.call("GET", "volume", f"/volumes/{volume_id}")["volume"].get("status")
    if status == "error":
        raise CallError(f"volume {name} failed to build (status error)")
    return status in ("available", "in-use")


def create_volume(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    volume: dict[str, Any] = {
        "name": name,
        "size": int(param("SIZE")),
        "description": f"{cluster} {name}",
        "metadata": {"cluster": cluster, "terraform_id": resource_id()},
    }
    image = param("IMAGE")
    if image:
        volume["imageRef"] = image_id(cloud, image)

    def create() -> str:
        volume_id = cloud.call("POST", "volume", "/volumes", {"volume": volume})["volume"]["id"]
        say(f"created volume {name} ({volume['size']} GB, {volume_id})")
        return f"/volumes/{volume_id}"

    def finish(path: str) -> None:
        volume_id = path.rsplit("/", 1)[1]
        wait_until(f"volume {name} to become available", lambda: volume_ready(cloud, volume_id, name))

    made(cloud, "volume", "volume", name, create, finish)


def delete_volume(cloud: Cloud) -> None:
    name, cluster = param("NAME"), param("CLUSTER")
    paths = [f"/volumes/{volume['id']}" for volume in resource_volumes(cloud, name, cluster, resource_id())]
    delete_each(cloud, "volume", "volume", name, paths, wait=True)


# Floating IPs: the module picks the address, so a second IP for the same instance is refused
# by the cloud (the address is taken) rather than made; the description names cluster and
# instance, and with the address finds the IP again.


def floating_ip_description() -> str:
    return f"{param('CLUSTER')} {param('INSTANCE')}"


def resource_floating_ips(cloud: Cloud, description: str, address: str) -> list[dict[str, Any]]:
    ips = cloud.list("network", "/floatingips", "floatingips")
    return [ip for ip in ips if ip.get("description") == description and ip.get("floating_ip_address") == address]


def external_network_id(cloud: Cloud) -> str:
    networks = cloud.list("network", "/networks?router%3Aexternal=True", "networks")
    external = [network for network in networks if network.get("router:external")]
    if not external:
        raise CallError("the cloud has no external network to allocate floating IPs from")
    return external[0]["id"]


def create_floating_ip(cloud: Cloud) -> None:
    address, description = param("ADDRESS"), floating_ip_description()
    request = {
        "floating_network_id": external_network_id(cloud),
        "floating_ip_address": address,
        "description": description,
    }
    given: dict[str, Any] = {}

    def create() -> str:
        # The module picks the address, so an address already held with this very description
        # is this resource's own floating IP, made by a create that Terraform interrupted after
        # the cloud answered: take it back rather than fail on the taken address.
        for left in resource_floating_ips(cloud, description, address):
            given.update(left)
            say(f"took back floating IP {address} for {description}, left by an interrupted create")
            return f"/floatingips/{left['id']}"
        given.update(cloud.call("POST", "network", "/floatingips", {"floatingip": request})["floatingip"])
        say(f"created floating IP {given.get('floating_ip_address')} for {description}")
        return f"/floatingips/{given['id']}"

    made(cloud, "network", "floating IP", address, create, lambda _: check_address(given, address, description))


def check_address(ip: dict[str, Any], address: str, description: str) -> None:
    # The module outputs the address it asked for: a different one would be a lie.
    if ip.get("floating_ip_address") != address:
        raise CallError(
            f"the cloud gave {description} the floating IP {ip.get('floating_ip_address')}, not the "
            f"requested {address}: it must honour floating_ip_address"
        )


def delete_floating_ip(cloud: Cloud) -> None:
    description = floating_ip_description()
    paths = [f"/floatingips/{ip['id']}" for ip in resource_floating_ips(cloud, description, param("ADDRESS"))]
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
    operation = argv[1]
    if operation.startswith("create-"):
        outliving_a_kill(lambda: run(operation))
    return run(operation)


def run(operation: str) -> int:
    try:
        OPERATIONS[operation](Cloud())
    except CallError as error:
        say(f"{operation}: {error}", error=True)
        return 1
    except KeyboardInterrupt:
        say(f"{operation}: interrupted", error=True)
        return 130
    return 0


def outliving_a_kill(operation: Callable[[], int]) -> NoReturn:
    """Run `operation` in a child process and exit with its exit code.

    Terraform, interrupted, kills its provisioners with SIGKILL at once. The child is not its
    to kill: it gets the interrupt with the rest of the process group (or notices that this
    process has gone), deletes what it had half made, and exits; Terraform reads its output,
    and so waits for it, until then.

    A create counts as done only if this process exits 0 before such a kill: a create that
    succeeded in the child just as Terraform was interrupted is tainted all the same. So the
    child hands its exit code over a pipe and waits until this process has passed it on,
    told by a second pipe: "ok", written right before this process exits 0. Should that pipe
    close without it (this process was killed), the child deletes what it made. Terraform
    interrupted in the instant after this process exited 0, before it noticed the exit,
    counts the create as failed too: see `counted`.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    parent, terraform = os.getpid(), os.getppid()
    result_out, result_in = os.pipe()
    passed_out, passed_in = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(result_out)
        os.close(passed_in)
        code = 1
        try:
            INTERRUPTS.install(parent)
            code = operation()
            with contextlib.suppress(OSError):  # the parent has gone
                os.write(result_in, str(code).encode())
            os.close(result_in)
            if code == 0 and UNDO_IF_NOT_COUNTED and not counted(passed_out, terraform):
                say("Terraform did not count this create as done: deleting what it made", error=True)
                for deletion in UNDO_IF_NOT_COUNTED:
                    deletion()
        finally:
            with contextlib.suppress(OSError):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(result_in)
    os.close(passed_out)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child answers it
    reply = read_to_end(result_out)
    code = int(reply) if reply else 1  # nothing: the child died before it could say
    sys.stdout.flush()
    sys.stderr.flush()
    if code == 0:
        os.write(passed_in, b"ok")
    os._exit(code)  # at once: Terraform's kill may come any moment after the "ok"


def counted(passed: int, terraform: int) -> bool:
    """Whether Terraform counts this create as done. Surely not if the parent was killed
    before it passed the exit code on (`passed` closes without "ok"). Else yes, unless an
    interrupt arrives within LINGER_SECONDS: Terraform may then have counted it as failed,
    and its verdict is in the state it saves as it stops (a tainted resource). Without a
    local state (a remote backend) the object is kept: a leak rather than a lost object."""
    if read_to_end(passed) != b"ok":
        return False
    # Terraform's output has ended with the parent: what this process says now goes nowhere.
    with contextlib.suppress(OSError):
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
    deadline = time.monotonic() + LINGER_SECONDS
    while not INTERRUPTS.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    mine = os.environ.get("MC_RESOURCE_ID")  # none for a floating IP: the next create takes it back
    if not INTERRUPTS.pending or mine is None or not ended(terraform, VERDICT_SECONDS):
        return True
    try:
        state = json.loads(Path("terraform.tfstate").read_text())
    except (OSError, ValueError):
        return True
    return not any(
        instance.get("status") == "tainted"
        for resource in state.get("resources", [])
        for instance in resource.get("instances", [])
        if (instance.get("attributes") or {}).get("id") == mine
    )


def ended(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def read_to_end(pipe: int) -> bytes:
    data = b""
    while chunk := os.read(pipe, 64):
        data += chunk
    return data


if __name__ == "__main__":
    sys.exit(main(sys.argv))
