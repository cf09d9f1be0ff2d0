"""The credential of the sandbox's admin API: a random token kept in a 0600 file in its data folder.

Loopback is no boundary (every local user and every web page in a local browser reach it), so
whoever resets the cloud or turns its knobs must show that they can read the sandbox's files.
"""

import secrets
from pathlib import Path

from sandbox.private_files import read_or_create_secret

ADMIN_TOKEN_FILE = "admin.token"
# The header that carries it: a custom one, which no browser sends across origins without asking.
ADMIN_TOKEN_HEADER = "X-Sandbox-Admin-Token"


class AdminTokenMissing(Exception):
    """The sandbox's data folder holds no admin token (the sandbox never ran there)."""


def load_or_create(data_dir: Path) -> str:
    """The admin token of the sandbox kept in `data_dir`, made on its first start."""
    return read_or_create_secret(data_dir / ADMIN_TOKEN_FILE, lambda: secrets.token_urlsafe(32).encode()).decode()


def read(data_dir: Path) -> str:
    """The admin token of the sandbox kept in `data_dir`, for a client of its admin API."""
    path = data_dir / ADMIN_TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise AdminTokenMissing(
            f"no sandbox admin token in {path}: start the sandbox with --data-dir {data_dir} first"
        ) from None


def matches(given: str, expected: str) -> bool:
    """Whether `given` (a header: any characters) is the admin token, in constant time."""
    return secrets.compare_digest(given.encode(), expected.encode())
