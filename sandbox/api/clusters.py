"""The JupyterHub, FreeIPA and Mokey of each sandbox cluster: up only after its servers have booted.

A cluster is the set of servers whose metadata says {"cluster": hostname}; it boots from
the creation of its earliest live server, the way a real one comes up after Puppet runs.
"""

import math

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from sandbox.cluster_services import PAGES
from sandbox.state import Store, utcnow


def router(store: Store) -> APIRouter:
    api = APIRouter()

    @api.get("/sandbox/clusters/{hostname}/{service}")
    async def cluster_service(hostname: str, service: str) -> Response:
        if service not in PAGES:
            return PlainTextResponse(f"no service {service!r}: a cluster has {', '.join(PAGES)}\n", 404)
        created = [s.created_at for s in store.state.servers.values() if s.metadata.get("cluster") == hostname]
        if not created:
            return PlainTextResponse(f"no cluster {hostname}: it has no servers\n", 404)
        booted_for = (utcnow() - min(created)).total_seconds()
        remaining = math.ceil(store.state.knobs.boot_seconds - booted_for)
        if remaining > 0:
            return PlainTextResponse(
                f"{service} of {hostname} is booting: ready in {remaining} s\n",
                503,
                headers={"Retry-After": str(remaining)},
            )
        return PlainTextResponse(f"{service} of {hostname} is up\n")

    return api
