"""What the reliability tests (test_bad_input, test_faults, test_secrets) share: the `mchub`
command run as a user runs it, and what "nothing was written" means for the clusters folder
and the cloud."""

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mchub.cli import main
from mchub.orchestration.stack import ROOT
from mchub.settings import get_settings
from sandbox.launcher import SandboxCloud


@dataclass(frozen=True)
class Answer:
    """What the `mchub` command answered: its exit code and what it printed."""

    code: int
    out: str
    err: str


def mchub(*args: str) -> Answer:
    """`mchub ARGS` in this process (its entry point, with this session's settings): the
    same code as the installed command, without paying Python's start-up per call."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exited:  # argparse refusing the words: the command's exit status
            code = int(exited.code or 0)
    return Answer(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def settings_from(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment, and so MC Hub's settings, with `env` over it while the
    block lasts: `mchub()` then acts as the command run with those variables."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


def mchub_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m mchub.cli ARGS` started as its own process (default: this environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mchub.cli", *args],
        cwd=ROOT,
        env=env if env is not None else dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], timeout: float = 120.0) -> Answer:
    out, err = process.communicate(timeout=timeout)
    return Answer(process.returncode, out, err)


def files_under(folder: Path) -> list[str]:
    """Every file and folder below `folder` (hidden ones too, e.g. .requests), relative."""
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def cloud_usage(cloud: SandboxCloud) -> dict[str, Any]:
    """What the project uses and which clusters have servers, as the sandbox counts them."""
    usage = cloud.admin().get("/usage")
    usage.raise_for_status()
    return {key: usage.json()[key] for key in ("in_use", "clusters")}
