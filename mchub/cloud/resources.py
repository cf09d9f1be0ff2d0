"""What a cloud project offers a new cluster: flavors, usable images, and quotas with usage.

Flavors and images rarely change, so they are reused for `flavor_cache_seconds`; quota
usage moves with every cluster, so it is reused only for `quota_cache_seconds`.
"""

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from pydantic import BaseModel, computed_field

from mchub.cloud.connection import CloudError, connect
from mchub.settings import get_settings

# Magic Castle supports these distributions; anything else (Ubuntu, Windows, CentOS 7) would
# fail in Puppet half an hour after the user clicked Apply.
USABLE_IMAGE = re.compile(r"^(rocky|almalinux)-?(8|9)", re.IGNORECASE)


class Flavor(BaseModel):
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    gpus: int = 0

    @property
    def label(self) -> str:
        gpu = f", {self.gpus} GPU" if self.gpus else ""
        return f"{self.name} ({self.vcpus} vCPU, {self.ram_mb / 1024:g} GB RAM{gpu})"


class Image(BaseModel):
    name: str
    id: str


class Quota(BaseModel):
    """One quota of the project: `used` of `limit` (limit -1 means unlimited)."""

    name: str
    unit: str
    used: int
    limit: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def free(self) -> int | None:
        return None if self.limit < 0 else max(self.limit - self.used, 0)


class Quotas(BaseModel):
    instances: Quota
    cores: Quota
    ram: Quota
    volumes: Quota
    volume_gb: Quota
    floating_ips: Quota

    def all(self) -> list[Quota]:
        return [self.instances, self.cores, self.ram, self.volumes, self.volume_gb, self.floating_ips]


class CloudResources(BaseModel):
    cloud: str
    flavors: list[Flavor]
    images: list[Image]
    quotas: Quotas

    def flavor(self, name: str) -> Flavor | None:
        return next((f for f in self.flavors if f.name == name), None)


T = TypeVar("T")


class ResourceReader:
    """Reads a cloud's resources through its shared connection, caching per kind."""

    def __init__(self, cloud: str | None = None, clouds_yaml: Path | None = None) -> None:
        self.cloud = cloud or get_settings().cloud
        self.clouds_yaml = clouds_yaml
        self._cache: dict[str, tuple[float, object]] = {}  # kind → (fetched at, value)
        self._lock = threading.Lock()

    def read(self, *, fresh_quotas: bool = False) -> CloudResources:
        """Flavors, images and quotas; what has expired is fetched again, in parallel."""
        settings = get_settings()
        ttl = {
            "flavors": settings.flavor_cache_seconds,
            "images": settings.flavor_cache_seconds,
            "quotas": 0.0 if fresh_quotas else settings.quota_cache_seconds,
        }
        now = time.monotonic()
        with self._lock:
            stale = [kind for kind in ttl if now - self._cache.get(kind, (float("-inf"),))[0] >= ttl[kind]]
        if stale:
            conn = connect(self.cloud, self.clouds_yaml)
            fetchers: dict[str, Callable[[], object]] = {
                "flavors": lambda: _flavors(conn),
                "images": lambda: _images(conn),
                "quotas": lambda: _quotas(conn),
            }
            where = conn.config.config["auth"].get("auth_url")
            with ThreadPoolExecutor(max_workers=len(stale)) as pool:
                fetched = {kind: pool.submit(_asking_cloud, self.cloud, where, kind, fetchers[kind]) for kind in stale}
                values = {kind: future.result() for kind, future in fetched.items()}
            with self._lock:
                self._cache.update({kind: (time.monotonic(), value) for kind, value in values.items()})
        with self._lock:
            return CloudResources(cloud=self.cloud, **{kind: self._cache[kind][1] for kind in ttl})


def _asking_cloud(cloud: str, where: str | None, kind: str, fetch: Callable[[], T]) -> T:
    try:
        return fetch()
    except (ks_exceptions.ConnectFailure, ks_exceptions.ConnectTimeout) as error:
        # The cloud answered before (the connection is open) and has gone quiet: say so in
        # words, not with the HTTP library's retry report.
        raise CloudError(
            f"cloud {cloud!r} does not answer at {where} (asking for its {kind}): "
            "check that it is up, then try again"
        ) from error
    except (os_exceptions.SDKException, ks_exceptions.ClientException) as error:
        raise CloudError(f"cloud {cloud!r} did not give its {kind}: {error}") from error


def _flavors(conn) -> list[Flavor]:
    flavors = [
        Flavor(
            name=f.name,
            vcpus=f.vcpus,
            ram_mb=f.ram,
            disk_gb=f.disk,
            gpus=_gpu_count(f.extra_specs or {}),
        )
        for f in conn.compute.flavors(details=True)
    ]
    return sorted(flavors, key=lambda f: (f.vcpus, f.ram_mb, f.name))


def _gpu_count(extra_specs: dict[str, str]) -> int:
    # Clouds announce GPUs through PCI passthrough or vGPU resources in the flavor's extra specs.
    for key, value in extra_specs.items():
        if key == "resources:VGPU":
            return int(value)
        if key == "pci_passthrough:alias":
            return sum(int(part.split(":")[1]) for part in value.split(",") if ":" in part)
    return 0


def _images(conn) -> list[Image]:
    images = [
        Image(name=i.name, id=i.id)
        for i in conn.image.images()
        if i.status == "active" and i.name and USABLE_IMAGE.match(i.name)
    ]
    return sorted(images, key=lambda i: i.name)


def _quotas(conn) -> Quotas:
    nova = conn.compute.get_limits().absolute
    cinder = conn.block_storage.get_limits().absolute
    neutron = conn.network.get_quota(conn.current_project_id, details=True)
    fips = neutron.floating_ips
    return Quotas(
        instances=Quota(name="instances", unit="", used=nova.instances_used, limit=nova.instances),
        cores=Quota(name="cores", unit="vCPU", used=nova.total_cores_used, limit=nova.total_cores),
        ram=Quota(name="ram", unit="MB", used=nova.total_ram_used, limit=nova.total_ram),
        volumes=Quota(
            name="volumes", unit="", used=cinder.total_volumes_used, limit=cinder.max_total_volumes
        ),
        volume_gb=Quota(
            name="volume storage",
            unit="GB",
            used=cinder.total_gigabytes_used,
            limit=cinder.max_total_volume_gigabytes,
        ),
        floating_ips=Quota(
            name="floating IPs", unit="", used=fips["used"] + fips.get("reserved", 0), limit=fips["limit"]
        ),
    )


_readers: dict[str, ResourceReader] = {}


def reader(cloud: str | None = None) -> ResourceReader:
    """The process-wide reader of `cloud`, so its cache serves every caller."""
    cloud = cloud or get_settings().cloud
    return _readers.setdefault(cloud, ResourceReader(cloud))
