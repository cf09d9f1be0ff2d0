"""The `mchub` command: the face of MC Hub. It parses a command line and calls the domain and
mchub.orchestration; nothing else imports it.

The commands are imported when `main` runs, not with this package: `python -m mchub.cli` and
the `mchub` script pay for argparse and the commands only when they run one."""


def main(argv: list[str] | None = None) -> int:
    from mchub.cli.commands import main as run_command

    return run_command(argv)
