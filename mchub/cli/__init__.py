"""The `mchub` command: the face of MC Hub, and the only part of `mchub` that talks to Prefect."""

from mchub.cli.commands import main

__all__ = ["main"]
