"""A cluster's log files: one per step (init.log, plan.log, apply.log, …), older runs kept.

Starting a step again moves its previous log to `<step>.N.log`, N one higher than any
existing number, so the newest run is always `<step>.log` and no log is ever overwritten.
"""

import os
import re
from pathlib import Path
from typing import TextIO

LOG_MODULE = "mchub"
"""The "@module" of the lines MC Hub itself writes into a log, beside Terraform's messages."""

_STEP = re.compile(r"^[a-z][a-z0-9-]*$")


def open_log(log_dir: Path, step: str) -> TextIO:
    """A new, empty `<log_dir>/<step>.log` open for writing, line-buffered."""
    if not _STEP.match(step):
        raise ValueError(f"log step {step!r}: use lowercase letters, digits and dashes, like 'apply'")
    log_dir.mkdir(parents=True, exist_ok=True)
    current = log_dir / f"{step}.log"
    if current.exists():
        _archive(current, step)
    # "x" refuses to open an existing file: a concurrent writer can never be truncated.
    return open(current, "x", encoding="utf-8", buffering=1)


def _archive(current: Path, step: str) -> None:
    number = max(_archive_numbers(current.parent, step), default=0) + 1
    while True:
        target = current.with_name(f"{step}.{number}.log")
        try:
            # link+unlink rather than rename: rename would silently replace an existing target.
            os.link(current, target)
        except FileExistsError:
            number += 1
            continue
        current.unlink()
        return


def _archive_numbers(log_dir: Path, step: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(step)}\.(\d+)\.log$")
    return [int(m.group(1)) for p in log_dir.glob(f"{step}.*.log") if (m := pattern.match(p.name))]
