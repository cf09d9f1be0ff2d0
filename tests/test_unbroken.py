"""mchub.orchestration.unbroken: a stop asked during a step that must not be cut in two (a run
saving the form of its answer as it suspends) waits for the step, in a process of its own as
a flow run's engine is. test_warm_engines checks the engine's watchdog waits for it too."""

import subprocess
import sys
import textwrap

import pytest

from mchub.orchestration.stack import ROOT

STEP = """
import os, signal, sys, time
from mchub.orchestration.unbroken import unbroken

class Ended(Exception):
    pass

try:
    with unbroken(ending=(Ended,)):
        os.kill(os.getpid(), signal.{signal})
        time.sleep(0.3)
        print("step ended", flush=True)
        {end}
    print("went on", flush=True)
except Ended:
    print("ended the run", flush=True)
except KeyboardInterrupt:
    print("interrupted after the step", flush=True)
"""


def run_step(signal: str, end: str = "pass") -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(STEP).format(signal=signal, end=end)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_an_interrupt_during_the_step_stops_the_process_once_the_step_has_ended() -> None:
    done = run_step("SIGINT")
    assert done.stdout.splitlines() == ["step ended", "interrupted after the step"], done.stderr


def test_a_sigterm_during_the_step_reaches_the_process_once_the_step_has_ended() -> None:
    done = run_step("SIGTERM")
    assert done.stdout.splitlines() == ["step ended"]
    assert done.returncode == -15  # SIGTERM's default: the process ends, as it would have at once


@pytest.mark.parametrize("signal", ["SIGINT", "SIGTERM"])
def test_a_step_that_ends_the_run_drops_the_stop_it_held(signal: str) -> None:
    done = run_step(signal, end="raise Ended")
    assert done.stdout.splitlines() == ["step ended", "ended the run"], done.stderr
    assert done.returncode == 0
