"""Running the sandbox cloud in the foreground: one uvicorn process on a loopback port."""

import socket
from pathlib import Path

import uvicorn

from sandbox.app import create_app


class ListenError(Exception):
    """The sandbox could not listen where it was asked to."""


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ListenError(
            f"the sandbox cannot listen on {host}:{port} ({error.strerror}); stop what uses that port "
            "or choose another with --port"
        ) from error
    return sock


def serve(host: str, port: int, data_dir: Path, boot_seconds: float | None = None) -> None:
    """Serve until SIGINT or SIGTERM.

    `boot_seconds` None keeps the persisted knob (default 45 s); a number replaces it and is
    what an admin reset returns it to.
    """
    app = create_app(data_dir, boot_seconds)
    # Bound here rather than by uvicorn, so a taken port is an exception that says what to do.
    sock = _listening_socket(host, port)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", http="h11", timeout_graceful_shutdown=5
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn raises the SIGINT it stopped on again once stopped; stopping was asked for.
        pass
