"""How long the create-cluster form waits for the cloud's flavors, images and quotas.

Measured side by side in one run against a sandbox cloud started for the purpose:
  cold         a new connection (auth + discovery) and every call
  warm         the shared connection, everything from the cache (the form re-rendering)
  warm+quotas  the shared connection, quotas fetched again (the form opening)
each with no added latency and with a latency per request like a real cloud's.

    .venv/bin/python -m bench.resources [--runs N]
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mchub.cloud import connection
from mchub.cloud.resources import ResourceReader
from sandbox.launcher import start_sandbox


def median_ms(action: Callable[[], object], runs: int, before: Callable[[], object] = lambda: None) -> float:
    times = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sandbox = start_sandbox(Path(tmp) / "data", Path(tmp))
        try:
            print(f"{'latency per request':>20} {'cold':>9} {'warm':>9} {'warm+quotas':>12} {'cold/warm+quotas':>17}")
            readers = [ResourceReader("sandbox", sandbox.clouds_yaml)]

            def new_reader() -> None:
                connection.forget()
                readers[0] = ResourceReader("sandbox", sandbox.clouds_yaml)

            def read(fresh_quotas: bool = False) -> None:
                readers[0].read(fresh_quotas=fresh_quotas)

            for latency in (0.0, 0.02):
                sandbox.set_knobs(latency_seconds=latency)
                cold = median_ms(read, args.runs, before=new_reader)
                warm = median_ms(read, args.runs)
                quotas = median_ms(lambda: read(fresh_quotas=True), args.runs)
                print(
                    f"{latency * 1000:>17.0f} ms {cold:>6.1f} ms {warm * 1000:>6.0f} µs {quotas:>9.1f} ms "
                    f"{cold / quotas:>16.1f}x"
                )
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
