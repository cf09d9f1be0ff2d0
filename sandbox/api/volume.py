"""Cinder v3: version discovery, limits, quota sets and volumes, with quotas enforced as Cinder does."""

import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from sandbox import accounts
from sandbox.api.common import (
    MAX_INT,
    Description,
    Metadata,
    MicroversionRange,
    Name,
    base_url,
    iso_micro,
    on_paths,
    reply,
)
from sandbox.catalog import (
    AVAILABILITY_ZONE,
    CINDER_FIXED_QUOTAS,
    QuotaSizes,
    find_image,
    stable_id,
)
from sandbox.faults import OpenStackError, Service
from sandbox.listing import paginate, select
from sandbox.quota import QuotaExceeded, Usage, check, usage_of
from sandbox.state import Store, Volume, utcnow

CINDER = MicroversionRange(Service.VOLUME, "volume", (3, 0), (3, 71), "OpenStack-Volume-microversion")
PREFIX = "/volume/v3"
VOLUME_TYPE = "__DEFAULT__"
VOLUME_TYPE_ID = stable_id("volume-type", VOLUME_TYPE)


class _NewVolume(BaseModel, extra="allow"):
    size: int = Field(strict=True, ge=1, le=MAX_INT, description="GB")
    name: Name | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    imageRef: Name | None = None


class CreateVolume(BaseModel):
    volume: _NewVolume


def _version(base: str) -> dict:
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": CINDER.max_text,
        "min_version": CINDER.min_text,
        "updated": "2023-08-31T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}{PREFIX}/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }


def _links(base: str, volume_id: str) -> list[dict]:
    return [
        {"rel": "self", "href": f"{base}{PREFIX}/volumes/{volume_id}"},
        {"rel": "bookmark", "href": f"{base}/volume/volumes/{volume_id}"},
    ]


def volume_body(volume: Volume, base: str) -> dict:
    created = iso_micro(volume.created_at)
    body = {
        "id": volume.id,
        "name": volume.name,
        "description": volume.description,
        "size": volume.size,
        "status": "available",
        "metadata": volume.metadata,
        "bootable": "true" if volume.image_id else "false",
        "volume_type": VOLUME_TYPE,
        "volume_type_id": VOLUME_TYPE_ID,
        "availability_zone": AVAILABILITY_ZONE,
        "attachments": [],
        "encrypted": False,
        "multiattach": False,
        "snapshot_id": None,
        "source_volid": None,
        "consistencygroup_id": None,
        "group_id": None,
        "replication_status": None,
        "user_id": accounts.USER_ID,
        "os-vol-tenant-attr:tenant_id": accounts.PROJECT_ID,
        "consumes_quota": True,
        "created_at": created,
        "updated_at": created,
        "links": _links(base, volume.id),
    }
    if volume.image_id:
        image = find_image(volume.image_id)
        body["volume_image_metadata"] = {"image_id": volume.image_id, "image_name": image.name if image else ""}
    return body


def quota_set_body(project_id: str, limits: QuotaSizes, usage: Usage, with_usage: bool) -> dict:
    values = {
        "volumes": (limits.volumes, usage.volumes),
        "gigabytes": (limits.gigabytes, usage.gigabytes),
        **{name: (limit, 0) for name, limit in CINDER_FIXED_QUOTAS.items()},
    }
    quota_set = {
        name: {"limit": limit, "in_use": used, "reserved": 0, "allocated": 0} if with_usage else limit
        for name, (limit, used) in values.items()
    }
    return {"quota_set": {"id": project_id, **quota_set}}


def _over_quota(over: QuotaExceeded) -> OpenStackError:
    if over.resource == "gigabytes":
        message = (
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. "
            f"Requested {over.requested}G, quota is {over.limit}G and {over.used}G has been consumed."
        )
    else:
        message = f"VolumeLimitExceeded: Maximum number of volumes allowed ({over.limit}) exceeded for quota 'volumes'."
    return OpenStackError(Service.VOLUME, 413, message)


def router(store: Store) -> APIRouter:
    api = APIRouter()

    def volume_or_404(volume_id: str) -> Volume:
        volume = store.state.volumes.get(volume_id)
        if volume is None:
            raise OpenStackError(Service.VOLUME, 404, f"Volume {volume_id} could not be found.")
        return volume

    @on_paths(api, ["/volume", "/volume/"])
    async def versions(request: Request) -> Response:
        return reply({"versions": [_version(base_url(request))]}, 300)

    @on_paths(api, [PREFIX, PREFIX + "/"])
    async def version(request: Request) -> Response:
        return reply({"versions": [_version(base_url(request))]})

    @api.get(PREFIX + "/limits")
    async def limits(request: Request) -> Response:
        quotas = store.state.knobs.quotas
        usage = usage_of(store.state)
        absolute = {
            "maxTotalVolumes": quotas.volumes,
            "totalVolumesUsed": usage.volumes,
            "maxTotalVolumeGigabytes": quotas.gigabytes,
            "totalGigabytesUsed": usage.gigabytes,
            "maxTotalSnapshots": CINDER_FIXED_QUOTAS["snapshots"],
            "totalSnapshotsUsed": 0,
            "maxTotalBackups": CINDER_FIXED_QUOTAS["backups"],
            "totalBackupsUsed": 0,
            "maxTotalBackupGigabytes": CINDER_FIXED_QUOTAS["backup_gigabytes"],
            "totalBackupGigabytesUsed": 0,
        }
        return CINDER.of(request).reply({"limits": {"rate": [], "absolute": absolute}})

    @on_paths(api, [PREFIX + "/os-quota-sets/{project_id}", PREFIX + "/os-quota-sets/{project_id}/defaults"])
    async def quota_set(project_id: str, request: Request) -> Response:
        version = CINDER.of(request)
        ours = project_id == accounts.PROJECT_ID and not request.url.path.endswith("/defaults")
        limits = store.state.knobs.quotas if ours else QuotaSizes()
        usage = usage_of(store.state) if ours else Usage()
        with_usage = request.query_params.get("usage", "").lower() == "true"
        return version.reply(quota_set_body(project_id, limits, usage, with_usage))

    @on_paths(api, [PREFIX + "/volumes", PREFIX + "/volumes/detail"])
    async def volumes(request: Request) -> Response:
        version = CINDER.of(request)
        base = base_url(request)
        newest_first = sorted(store.state.volumes.values(), key=lambda v: v.created_at, reverse=True)
        items = select([volume_body(v, base) for v in newest_first], request.query_params)
        page, next_url = paginate(Service.VOLUME, items, request.query_params, request.url)
        if not request.url.path.endswith("/detail"):
            page = [{"id": v["id"], "name": v["name"], "links": v["links"]} for v in page]
        body: dict = {"volumes": page}
        if next_url:
            body["volumes_links"] = [{"rel": "next", "href": next_url}]
        return version.reply(body)

    @api.post(PREFIX + "/volumes")
    async def create_volume(body: CreateVolume, request: Request) -> Response:
        version = CINDER.of(request)
        new = body.volume
        image_id = None
        if new.imageRef:
            image = find_image(new.imageRef)
            if image is None:
                raise OpenStackError(
                    Service.VOLUME, 400, f"Invalid image identifier or unable to access requested image: {new.imageRef}"
                )
            image_id = image.id
        try:
            check(store.state, gigabytes=new.size, volumes=1)
        except QuotaExceeded as over:
            raise _over_quota(over) from None
        volume = Volume(
            id=str(uuid.uuid4()),
            name=new.name,
            description=new.description,
            size=new.size,
            metadata=new.metadata or {},
            image_id=image_id,
            created_at=utcnow(),
        )
        store.state.volumes[volume.id] = volume
        store.save()
        return version.reply({"volume": volume_body(volume, base_url(request))}, 202)

    @api.get(PREFIX + "/volumes/{volume_id}")
    async def volume(volume_id: str, request: Request) -> Response:
        return CINDER.of(request).reply({"volume": volume_body(volume_or_404(volume_id), base_url(request))})

    @api.delete(PREFIX + "/volumes/{volume_id}")
    async def delete_volume(volume_id: str, request: Request) -> Response:
        version = CINDER.of(request)
        volume_or_404(volume_id)
        del store.state.volumes[volume_id]
        store.save()
        return Response(status_code=202, headers=version.headers())

    return api
