"""The sandbox cloud as one ASGI app: every OpenStack service under its path prefix on one port."""

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sandbox import admin_token
from sandbox.api import admin, clusters, compute, identity, image, network, volume
from sandbox.body_limit import BodyLimit
from sandbox.faults import INTERNAL_ERROR_MESSAGES, OpenStackError, error_response, service_of
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


def _field(location: tuple) -> str:
    # The location starts with where the value came from ("body", "path", ...); a metadata key
    # in it may be as long as the client liked, so each part is cut short.
    return ".".join(str(part)[:64] for part in location[1:]) or "body"


async def _invalid_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    # Field and problem only: the rejected values may be passwords.
    if service_of(request.url.path) is None:
        problems = [{"field": _field(e["loc"]), "problem": e["msg"]} for e in error.errors()]
        return JSONResponse({"detail": problems}, 400)
    summary = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in error.errors())
    return error_response(request.url.path, 400, f"Invalid input for field/attribute {summary}")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = str(error.detail)
    if service_of(request.url.path) is not None:
        message = _STATUS_MESSAGES.get(error.status_code, message)
    return error_response(request.url.path, error.status_code, message)


async def _unexpected(request: Request, error: Exception) -> Response:
    """A bug's answer: the service's usual 500, never the traceback (uvicorn logs that)."""
    service = service_of(request.url.path)
    message = INTERNAL_ERROR_MESSAGES[service] if service else "internal error of the sandbox: see its log"
    return error_response(request.url.path, 500, message)


def create_app(data_dir: Path, boot_seconds: float | None = None) -> FastAPI:
    """The app serving the state kept in `data_dir`; `boot_seconds` (if given) replaces the knob
    and is what a reset returns it to."""
    store = Store(data_dir, boot_seconds)
    signer = TokenSigner(data_dir)
    app = FastAPI(
        title="MC Hub sandbox cloud",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        debug=False,
    )
    for api in (
        identity.router(signer),
        compute.router(store),
        image.router(),
        volume.router(store),
        network.router(store),
        clusters.router(store),
        admin.router(store, admin_token.load_or_create(data_dir)),
    ):
        app.include_router(api)

    @app.get("/sandbox/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    app.add_exception_handler(OpenStackError, _openstack_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(OpenStackGate, store=store, signer=signer)
    # Outermost (after Starlette's own error middleware): the body is bounded before anything reads it.
    app.add_middleware(BodyLimit)
    return app
