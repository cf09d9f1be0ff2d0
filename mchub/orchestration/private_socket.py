"""Unix sockets in MC Hub's home that only its user can reach: whoever can send to one
acts as that user (the warm engines run code for it; the worker polls for it)."""

import os
import socket
from pathlib import Path

from mchub.errors import MCHubError

# Linux's limit on a Unix socket's path (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH_BYTES = 107


class SocketPathError(MCHubError):
    """The socket's path cannot be used; the message says what to change."""


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise SocketPathError(
            f"{path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes a Unix socket's path may have; "
            "set MCHUB_HOME to a shorter folder"
        )


def bind_private(path: Path, kind: socket.SocketKind) -> socket.socket:
    """A socket of `kind` bound at `path` (replacing a socket left there), mode 0600."""
    check_socket_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    bound = socket.socket(socket.AF_UNIX, kind)
    old_umask = os.umask(0o177)
    try:
        bound.bind(os.fspath(path))
    finally:
        os.umask(old_umask)
    return bound
