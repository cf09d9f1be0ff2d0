"""The sandbox's own controls for tests and demos: knobs, reset, usage. Loopback callers only."""

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sandbox.quota import usage_of
from sandbox.state import Store

LOOPBACK = ("127.", "::1")


def _loopback_only(request: Request) -> None:
    host = request.client.host if request.client else ""
    if not host.startswith(LOOPBACK):
        raise HTTPException(403, f"the sandbox admin API answers only loopback callers, not {host}")


def router(store: Store) -> APIRouter:
    api = APIRouter(prefix="/sandbox/admin", dependencies=[Depends(_loopback_only)])

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
            return JSONResponse({"detail": problems}, 422)
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
