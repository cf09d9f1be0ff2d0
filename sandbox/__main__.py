"""`python -m sandbox`: run the sandbox cloud, or print the clouds.yaml that reaches it."""

import argparse
import sys
from pathlib import Path

from sandbox.clouds import clouds_yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="The MC Hub sandbox OpenStack cloud.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--data-dir", type=Path, help="where its state is kept (required to serve)")
    parser.add_argument(
        "--boot-seconds", type=float, help="seconds before a cluster's services answer (default: as last set, else 45)"
    )
    parser.add_argument(
        "--print-clouds-yaml", action="store_true", help="print the clouds.yaml that reaches it, and exit"
    )
    args = parser.parse_args(argv)
    if args.print_clouds_yaml:
        print(clouds_yaml(args.host, args.port), end="")
        return 0
    if args.data_dir is None:
        parser.error("--data-dir is required to serve: name a folder for the sandbox's state")

    from sandbox.server import ListenError, serve
    from sandbox.state import BootSecondsError, StateFileError

    try:
        serve(args.host, args.port, args.data_dir, boot_seconds=args.boot_seconds)
    except (ListenError, StateFileError, BootSecondsError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
