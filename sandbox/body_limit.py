"""A cap on the size of request bodies: no OpenStack request the sandbox serves comes near it.

Without it a client could make the sandbox hold any amount of JSON in memory, or parse JSON
nested deeply enough to exhaust the stack.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import error_response

MAX_BODY_BYTES = 1024 * 1024


class BodyLimit:
    """Reads each request's body (at most `max_bytes`) before the app sees it; a larger one gets 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or len(declared) > len(str(self.max_bytes)) or int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away while sending: nothing to answer.
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"Request body too large: the sandbox accepts at most {self.max_bytes} bytes."
        await error_response(scope["path"], 413, message)(scope, receive, send)
