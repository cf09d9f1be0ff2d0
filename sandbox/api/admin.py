"""The sandbox's own controls for tests and demos: knobs, reset, usage.

Only for a caller on loopback that shows the admin token from the sandbox's data folder and,
if it is a web page, is the sandbox's own: any page in a local browser reaches loopback.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sandbox import admin_token
from sandbox.quota import usage_of
from sandbox.state import Store

LOOPBACK = ("127.", "::1")


def _own_origin(request: Request) -> str:
    """The origin of this server as its listening socket (not the Host header, which a page picks) says."""
    host, port = request.scope["server"] or ("", 0)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _guard(token: str) -> Callable[[Request], Awaitable[None]]:
    async def allowed(request: Request) -> None:
        host = request.client.host if request.client else ""
        if not host.startswith(LOOPBACK):
            raise HTTPException(403, f"the sandbox admin API answers only loopback callers, not {host}")
        origin = request.headers.get("origin")
        if origin is not None and origin != _own_origin(request):
            raise HTTPException(403, f"the sandbox admin API refuses requests from other origins ({origin})")
        if not admin_token.matches(request.headers.get(admin_token.ADMIN_TOKEN_HEADER, ""), token):
            raise HTTPException(
                401,
                f"the sandbox admin API needs the {admin_token.ADMIN_TOKEN_HEADER} header: the token is in "
                f"{admin_token.ADMIN_TOKEN_FILE} in the sandbox's data folder",
            )

    return allowed


def router(store: Store, token: str) -> APIRouter:
    """The admin API of `store`, for callers that send `token`."""
    api = APIRouter(prefix="/sandbox/admin", dependencies=[Depends(_guard(token))])

    @api.get("/knobs")
    async def knobs() -> Response:
        return JSONResponse(store.state.knobs.model_dump())

    @api.put("/knobs")
    async def set_knobs(changes: dict[str, Any] = Body(...)) -> Response:
        try:
            updated = store.update_knobs(changes)
        except ValidationError as error:
            problems = [
                {"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in error.errors(include_input=False)
            ]
            return JSONResponse({"detail": problems}, 400)
        return JSONResponse(updated.model_dump())

    @api.post("/reset")
    async def reset() -> Response:
        store.reset()
        return Response(status_code=204)

    @api.get("/usage")
    async def usage() -> Response:
        clusters: dict[str, int] = {}
        for server in store.state.servers.values():
            hostname = server.metadata.get("cluster")
            if hostname:
                clusters[hostname] = clusters.get(hostname, 0) + 1
        return JSONResponse(
            {
                "in_use": usage_of(store.state).model_dump(),
                "limits": store.state.knobs.quotas.model_dump(),
                "clusters": clusters,
            }
        )

    return api
