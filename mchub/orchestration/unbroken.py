"""Steps of a flow run's engine that a stop must not cut in two.

A run suspending for its approval first tells Prefect's server that it is paused, then saves
the form of its answer. Stopped in between, the run stays paused with no form, and no answer
can ever resume it. Such a step runs in `unbroken()`:

- SIGINT and SIGTERM (the worker's stop, passed on by the launcher) wait for the step to end,
  then reach the engine's own handlers. If the step ended the run's process anyway (it raised
  one of `ending`: a suspension's Pause), the signal has nothing left to stop and is dropped.
- The engine's watchdogs (mchub.orchestration.warm_engines), which kill its process group when
  its launcher is gone, first call `wait_for_unbroken_steps()`.

Plain threading and signals, no Prefect: the watchdogs run in the same process as the flow.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STEP_SECONDS = 3.0
"""How long a watchdog waits for a step before killing the engine all the same: a step is a
request or two to Prefect's server, and Ctrl-C of `mchub up` must stop everything within 5 s."""

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_no_step = threading.Event()
_no_step.set()


@contextmanager
def unbroken(ending: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run the block to its end whatever stop is asked meanwhile (see the module)."""
    held: list[int] = []
    previous: dict[int, Any] = {}
    # Python runs signal handlers in the main thread only, and only it may set them.
    if threading.current_thread() is threading.main_thread():
        previous = {
            signum: signal.signal(signum, lambda signum, _frame: held.append(signum)) for signum in HELD_SIGNALS
        }
    _no_step.clear()
    try:
        yield
    except ending:
        held.clear()
        raise
    finally:
        _no_step.set()
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if held:
            signal.raise_signal(held[0])


def wait_for_unbroken_steps() -> None:
    """Return once no step is under way, or after STEP_SECONDS."""
    _no_step.wait(STEP_SECONDS)

