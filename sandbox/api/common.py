"""Pieces every OpenStack router of the sandbox uses: URLs, timestamps, microversions, routes, field bounds."""

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field, StringConstraints

from sandbox.catalog import NOVA_FIXED_QUOTAS
from sandbox.faults import OpenStackError, Service


# "2.79": a few digits each side, so a hostile header cannot make int() parse thousands of digits.
_VERSION = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})")


# What OpenStack's APIs bound, and the sandbox with them: names, descriptions, metadata keys
# and values are at most 255 characters (their database columns); a server has at most 128
# metadata items (Nova's metadata_items quota); sizes fit the databases' 32-bit integers.
MAX_TEXT = 255
MAX_METADATA_ITEMS = NOVA_FIXED_QUOTAS["metadata_items"]
MAX_INT = 2**31 - 1


def _printable(text: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in text):
        raise ValueError("must not hold control characters or line breaks")
    return text


def _ip_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not a valid IP address") from None


# A name, or the id or URL of something to find (ids are only ever dictionary keys, never paths).
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT), AfterValidator(_printable)]
Description = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
# Nova's metadata schema: keys of letters, digits and - _ : . and space; string values.
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=r"^[a-zA-Z0-9_:. -]+$")]
Metadata = Annotated[
    dict[MetadataKey, Annotated[str, StringConstraints(max_length=MAX_TEXT)]], Field(max_length=MAX_METADATA_ITEMS)
]
IpAddress = Annotated[str, StringConstraints(max_length=64), AfterValidator(_ip_address)]


def base_url(request: Request) -> str:
    """This server as the client reached it, so links and the catalog point back here."""
    return str(request.base_url).rstrip("/")


def iso(moment: datetime) -> str:
    """Nova, Neutron and Glance style: 2025-01-15T12:00:00Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(moment: datetime) -> str:
    """Cinder and Keystone style: 2025-01-15T12:00:00.000000 (Keystone adds Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, headers)


def on_paths(router: APIRouter, paths: Iterable[str], methods: tuple[str, ...] = ("GET",)) -> Callable:
    """Register one handler under several paths (e.g. with and without a trailing slash)."""

    def register(handler: Callable) -> Callable:
        for path in paths:
            router.add_api_route(path, handler, methods=list(methods))
        return handler

    return register


@dataclass(frozen=True)
class Microversion:
    """The microversion a request asked for; replies name it back as the service does."""

    service_type: str
    major: int
    minor: int
    legacy_header: str | None

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def headers(self) -> dict[str, str]:
        text = f"{self.major}.{self.minor}"
        headers = {"OpenStack-API-Version": f"{self.service_type} {text}", "Vary": "OpenStack-API-Version"}
        if self.legacy_header:
            headers[self.legacy_header] = text
        return headers

    def reply(self, body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status, self.headers())


@dataclass(frozen=True)
class MicroversionRange:
    service: Service
    service_type: str
    minimum: tuple[int, int]
    maximum: tuple[int, int]
    legacy_header: str | None = None

    @property
    def min_text(self) -> str:
        return "%d.%d" % self.minimum

    @property
    def max_text(self) -> str:
        return "%d.%d" % self.maximum

    def of(self, request: Request) -> Microversion:
        """The version `request` asks for (the minimum when it names none); 406 if out of range."""
        asked = None
        for entry in request.headers.get("openstack-api-version", "").split(","):
            service_type, _, version = entry.strip().partition(" ")
            if service_type == self.service_type:
                asked = version.strip()
        if asked is None and self.legacy_header:
            asked = request.headers.get(self.legacy_header)
        if not asked:
            return Microversion(self.service_type, *self.minimum, self.legacy_header)
        if asked == "latest":
            return Microversion(self.service_type, *self.maximum, self.legacy_header)
        match = _VERSION.fullmatch(asked)
        if match is None:
            raise OpenStackError(self.service, 400, f"Invalid API version request string {asked[:40]!r}")
        number = (int(match[1]), int(match[2]))
        if not self.minimum <= number <= self.maximum:
            raise OpenStackError(
                self.service,
                406,
                f"Version {asked} is not supported by the API. Minimum is {self.min_text} and "
                f"maximum is {self.max_text}.",
            )
        return Microversion(self.service_type, *number, self.legacy_header)
