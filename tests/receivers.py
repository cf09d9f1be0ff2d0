"""What the notifications reach in the tests: a real SMTP server and a real HTTP server on
loopback, each keeping what it received, for the tests to read as a person reads their mail
or a chat channel."""

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

from aiosmtpd.controller import Controller

from sandbox.launcher import free_port

T = TypeVar("T")
WAIT_SECONDS = 120.0


@dataclass
class Received(Generic[T]):
    """What a receiver has been sent, in order."""

    items: list[T] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, item: T) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, matches: Callable[[T], bool], what: str, timeout: float = WAIT_SECONDS) -> T:
        """The first item that `matches`, once it arrives; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [item for item in self.items if matches(item)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:g} s; received: {self.items!r}")
                self._changed.wait(left)

    def matching(self, matches: Callable[[T], bool]) -> list[T]:
        with self._changed:
            return [item for item in self.items if matches(item)]


class _MailHandler:
    def __init__(self, mailbox: Received[EmailMessage]) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mailbox.add(message)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[str, Received[EmailMessage]]]:
    """A mail server on loopback: its smtp:// URL, and the mail it received."""
    mailbox: Received[EmailMessage] = Received()
    port = free_port()
    controller = Controller(_MailHandler(mailbox), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", mailbox
    finally:
        controller.stop()


@contextmanager
def webhook_server() -> Iterator[tuple[str, Received[dict[str, Any]]]]:
    """An HTTP server on loopback that takes JSON POSTs as a chat's incoming webhook does: its
    URL, and the bodies it received."""
    bodies: Received[dict[str, Any]] = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.add(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/physics", bodies
    finally:
        server.shutdown()
        server.server_close()
