"""mchub.orchestration.worker_wakeup: the socket through which submissions wake the worker (the worker's
side, woken for real, is tests/test_faults.py::test_a_worker_that_seldom_polls_…)."""

import stat
from pathlib import Path

from mchub.orchestration import worker_wakeup
from mchub.settings import Settings


def test_a_wake_reaches_the_worker_socket_that_only_its_user_can_reach(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with worker_wakeup.listening_socket(settings) as listener:
        assert stat.S_IMODE(worker_wakeup.socket_path(settings).stat().st_mode) == 0o600
        worker_wakeup.wake_worker(settings)
        worker_wakeup.wake_worker(settings)
        assert [listener.recv(1), listener.recv(1)] == [b"", b""]


def test_a_wake_with_no_worker_listening_leaves_the_run_to_the_poll(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    worker_wakeup.wake_worker(settings)  # no socket at all
    worker_wakeup.listening_socket(settings).close()  # a socket nobody reads any more
    worker_wakeup.wake_worker(settings)
