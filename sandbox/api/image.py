"""Glance v2: version discovery (which openstacksdk requires), image list and show."""

import hashlib

from fastapi import APIRouter, Request, Response

from sandbox import accounts
from sandbox.api.common import base_url, iso, on_paths, reply
from sandbox.catalog import CREATED_AT, IMAGES, Image
from sandbox.faults import OpenStackError, Service
from sandbox.listing import paginate, select


def _versions(base: str) -> dict:
    return {
        "versions": [
            {"id": version, "status": status, "links": [{"rel": "self", "href": f"{base}/image/v2/"}]}
            for version, status in (("v2.16", "CURRENT"), ("v2.15", "SUPPORTED"), ("v2.0", "SUPPORTED"))
        ]
    }


def image_body(image: Image) -> dict:
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "owner": accounts.ADMIN_PROJECT_ID,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "disk_format": "qcow2",
        "container_format": "bare",
        "size": image.size,
        "virtual_size": None,
        "checksum": hashlib.md5(image.id.encode()).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(image.id.encode()).hexdigest(),
        "os_distro": image.os_distro,
        "os_version": image.os_version,
        "tags": [],
        "created_at": iso(CREATED_AT),
        "updated_at": iso(CREATED_AT),
        "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    }


# Images never change, so their bodies are built once.
IMAGE_BODIES = [image_body(i) for i in IMAGES]


def router() -> APIRouter:
    api = APIRouter()

    @on_paths(api, ["/image", "/image/"])
    async def versions(request: Request) -> Response:
        return reply(_versions(base_url(request)), 300)

    @api.get("/image/versions")
    async def versions_list(request: Request) -> Response:
        return reply(_versions(base_url(request)))

    @api.get("/image/v2/images")
    async def images(request: Request) -> Response:
        items = select(IMAGE_BODIES, request.query_params)
        page, next_url = paginate(Service.IMAGE, items, request.query_params, request.url)
        body: dict = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if next_url:
            # Glance's next link is relative to its endpoint.
            body["next"] = next_url.removeprefix(base_url(request) + "/image")
        return reply(body)

    @api.get("/image/v2/images/{image_id}")
    async def image(image_id: str) -> Response:
        found = next((i for i in IMAGE_BODIES if i["id"] == image_id), None)
        if found is None:
            raise OpenStackError(Service.IMAGE, 404, f"No image found with ID {image_id}")
        return reply(found)

    return api
