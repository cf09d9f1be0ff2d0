"""Error answers shaped as each OpenStack service shapes them, so clients parse them as usual.

openstacksdk and the `openstack` CLI pull the message out of these bodies and show it, so
the sandbox's refusals read exactly like a real cloud's.
"""

from enum import StrEnum
from http import HTTPStatus

from fastapi.responses import JSONResponse, PlainTextResponse, Response


class Service(StrEnum):
    IDENTITY = "identity"
    COMPUTE = "compute"
    IMAGE = "image"
    VOLUME = "volume"
    NETWORK = "network"


PREFIXES: dict[str, Service] = {
    "/identity": Service.IDENTITY,
    "/compute": Service.COMPUTE,
    "/image": Service.IMAGE,
    "/volume": Service.VOLUME,
    "/networking": Service.NETWORK,
}

# Nova's fault wrapper (which Cinder shares) names the body's one key after the status.
_NOVA_FAULT_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def service_of(path: str) -> Service | None:
    """The OpenStack service a request path belongs to, None for the sandbox's own paths."""
    for prefix, service in PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


class OpenStackError(Exception):
    """An error answer of `service`; `kind` is Neutron's error type (e.g. OverQuota)."""

    def __init__(
        self,
        service: Service,
        status: int,
        message: str,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}

    def response(self) -> Response:
        phrase = HTTPStatus(self.status).phrase
        if self.service is Service.IMAGE:
            # Glance answers errors as webob's plain-text pages.
            return PlainTextResponse(f"{self.status} {phrase}\n\n{self.message}\n\n", self.status, self.headers)
        if self.service is Service.IDENTITY:
            body: dict = {"error": {"code": self.status, "title": phrase, "message": self.message}}
        elif self.service is Service.NETWORK:
            kind = self.kind or "HTTP" + phrase.replace(" ", "")
            body = {"NeutronError": {"type": kind, "message": self.message, "detail": ""}}
        else:
            fault = {"code": self.status, "message": self.message}
            if self.status == 413:
                fault["retryAfter"] = "0"
            body = {_NOVA_FAULT_KEYS.get(self.status, "computeFault"): fault}
        return JSONResponse(body, self.status, self.headers)


def error_response(path: str, status: int, message: str) -> Response:
    """The error answer to a request for `path`: its OpenStack service's shape, else {"detail": message}."""
    service = service_of(path)
    if service is None:
        return JSONResponse({"detail": message}, status)
    return OpenStackError(service, status, message).response()


# Keystone's one answer to every failed login and every missing or bad token: it never says which.
REQUIRES_AUTHENTICATION = "The request you have made requires authentication."


def unauthorized(identity_url: str) -> OpenStackError:
    """What keystonemiddleware answers, in front of every service, for a missing or bad token."""
    return OpenStackError(
        Service.IDENTITY,
        401,
        REQUIRES_AUTHENTICATION,
        headers={"WWW-Authenticate": f'Keystone uri="{identity_url}"'},
    )


INTERNAL_ERROR_MESSAGES = {
    Service.IDENTITY: "An unexpected error prevented the server from fulfilling your request.",
    Service.COMPUTE: "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ "
    "and attach the Nova API log if possible.",
    Service.IMAGE: "The server has either erred or is incapable of performing the requested operation.",
    Service.VOLUME: "The server has either erred or is incapable of performing the requested operation.",
    Service.NETWORK: "Request Failed: internal server error while processing your request.",
}


def injected_failure(service: Service, knob: str) -> OpenStackError:
    """The 500 a service answers when a fault-injection knob says this request fails."""
    return OpenStackError(service, 500, f"{INTERNAL_ERROR_MESSAGES[service]} (sandbox: injected by {knob})")
