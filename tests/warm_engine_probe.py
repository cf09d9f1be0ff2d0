"""What test_warm_engines runs in warm forks instead of Prefect's engine: it shows what the
fork received from its launcher, and does what the variables of that environment ask
(PROBE_STEP_SECONDS: a step that a stop must not cut in two, then a wait)."""

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

report = Path(os.environ["PROBE_REPORT"])
report.write_text(
    f"cwd={os.getcwd()}\nvalue={os.environ.get('PROBE_VALUE')}\npid={os.getpid()}\n"
    f"parent={os.getppid()}\ngroup={os.getpgid(0)}\nfrozen={gc.get_freeze_count()}\n"
)
print("to stdout", flush=True)
print("to stderr", file=sys.stderr, flush=True)

if os.environ.get("PROBE_STEP_SECONDS"):
    from mchub.orchestration.unbroken import unbroken

    with unbroken():
        with report.open("a") as out:
            out.write("step started\n")
        time.sleep(float(os.environ["PROBE_STEP_SECONDS"]))
        with report.open("a") as out:
            out.write("step ended\n")
    time.sleep(300)

if os.environ.get("PROBE_WAIT"):
    def stop(signum: int, _frame: object) -> None:
        with report.open("a") as out:
            out.write(f"signal={signum}\n")
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)
    child = subprocess.Popen(["sleep", "300"])
    with report.open("a") as out:
        out.write(f"child={child.pid}\nready\n")
    time.sleep(300)

sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
