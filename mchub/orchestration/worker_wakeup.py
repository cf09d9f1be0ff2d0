"""Waking MC Hub's worker when a run is submitted or resumed, so that it asks Prefect's
server for the run at once instead of at its next poll (up to five seconds later,
mchub.orchestration.stack.WORKER_QUERY_SECONDS: longer than Terraform takes to plan).

The worker (mchub.orchestration.worker) listens on a Unix datagram socket in MC Hub's home that
only this user can reach; a wake is one empty datagram. Waking is only a shortcut: a run
whose wake is lost (no worker on this machine, or one busy with as many runs as it may
run) is picked up when one of the worker's runs ends, or at its regular poll.
"""

import os
import socket
from pathlib import Path

from mchub.orchestration.private_socket import bind_private
from mchub.settings import Settings


def socket_path(settings: Settings) -> Path:
    return (settings.home / "worker.sock").resolve()


def wake_worker(settings: Settings) -> None:
    """Tell the worker, if one listens on this machine, to look for runs now."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
        waker.setblocking(False)
        try:
            waker.sendto(b"", os.fspath(socket_path(settings)))
        except (FileNotFoundError, ConnectionRefusedError, BlockingIOError):
            # No worker listens, or wakes are already queued: the poll covers it.
            pass


def listening_socket(settings: Settings) -> socket.socket:
    """The worker's end, not blocking."""
    listener = bind_private(socket_path(settings), socket.SOCK_DGRAM)
    listener.setblocking(False)
    return listener
