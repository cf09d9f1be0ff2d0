"""Files only the sandbox's own user may read: its state, its keys, the clouds.yaml with its credentials.

Every such file is written whole to a 0600 temporary file and renamed over the old one, so a
crash leaves the old or the new content, never half of it, and no other user ever reads it.
"""

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path` (and missing parents) made, and closed to other users (0700) when it is ours to close.

    A shared folder such as /tmp (sticky) or another user's is left as it is: the files in it
    are 0600 anyway.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = path.stat()
    if status.st_uid == os.getuid() and not status.st_mode & stat.S_ISVTX and stat.S_IMODE(status.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, as a 0600 file in a 0700 folder."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret kept in `path`; on first use `make()` makes one and it is saved there (0600)."""
    if path.exists():
        path.chmod(0o600)  # one written by an older sandbox may be readable by others
        return path.read_bytes()
    secret = make()
    write_private(path, secret)
    return secret
