"""What stands in front of every OpenStack request: injected latency and failures, then the token check.

A plain ASGI middleware rather than a per-route dependency, so that it also covers paths no
route answers (clients get a 401 before a 404, as behind keystonemiddleware).
"""

import asyncio
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.faults import injected_failure, service_of, unauthorized
from sandbox.state import Store
from sandbox.tokens import TokenSigner

# Version discovery and token issue are the requests a client makes before it has a token.
_DISCOVERY = re.compile(r"^/(identity|compute|image|volume|networking)(/(v[0-9.]+|versions))?/?$")
_TOKEN_ISSUE = ("POST", "/identity/v3/auth/tokens")


class OpenStackGate:
    def __init__(self, app: ASGIApp, store: Store, signer: TokenSigner) -> None:
        self.app = app
        self.store = store
        self.signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = service_of(scope["path"]) if scope["type"] == "http" else None
        if service is None:
            await self.app(scope, receive, send)
            return
        latency = self.store.state.knobs.latency_seconds
        if latency:
            await asyncio.sleep(latency)
        if self.store.take_injected_fault("fail_next_requests"):
            await injected_failure(service, "fail_next_requests").response()(scope, receive, send)
            return
        if not self._is_public(scope):
            request = Request(scope)
            token = request.headers.get("x-auth-token")
            if not token or self.signer.verify(token) is None:
                identity_url = str(request.base_url).rstrip("/") + "/identity"
                await unauthorized(identity_url).response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _is_public(scope: Scope) -> bool:
        return (scope["method"], scope["path"]) == _TOKEN_ISSUE or bool(_DISCOVERY.match(scope["path"]))
