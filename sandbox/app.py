"""The sandbox cloud as one ASGI app: every OpenStack service under its path prefix on one port."""

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sandbox.api import admin, clusters, compute, identity, image, network, volume
from sandbox.faults import OpenStackError, service_of
from sandbox.gate import OpenStackGate
from sandbox.state import Store
from sandbox.tokens import TokenSigner

_STATUS_MESSAGES = {
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
}


async def _openstack_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, OpenStackError)
    return error.response()


async def _invalid_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    service = service_of(request.url.path)
    if service is None:
        return await request_validation_exception_handler(request, error)
    # Field and problem only: the rejected values may be passwords.
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors()
    )
    return OpenStackError(service, 400, f"Invalid input for field/attribute {problems}").response()


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    service = service_of(request.url.path)
    if service is None:
        return await http_exception_handler(request, error)
    message = _STATUS_MESSAGES.get(error.status_code, str(error.detail))
    return OpenStackError(service, error.status_code, message).response()


def create_app(data_dir: Path, boot_seconds: float | None = None) -> FastAPI:
    """The app serving the state kept in `data_dir`; `boot_seconds` (if given) replaces the knob
    and is what a reset returns it to."""
    store = Store(data_dir, boot_seconds)
    signer = TokenSigner(data_dir)
    app = FastAPI(
        title="MC Hub sandbox cloud", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False
    )
    for api in (
        identity.router(signer),
        compute.router(store),
        image.router(),
        volume.router(store),
        network.router(store),
        clusters.router(store),
        admin.router(store),
    ):
        app.include_router(api)

    @app.get("/sandbox/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    app.add_exception_handler(OpenStackError, _openstack_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(OpenStackGate, store=store, signer=signer)
    return app
