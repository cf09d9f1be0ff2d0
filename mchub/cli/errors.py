"""How `mchub` ends when a command fails. A person's mistake (a bad spec, hostname or setting,
a cloud that does not answer) is told in its own words; anything else in one line that says
what failed and where its traceback was kept (MCHUB_HOME/logs/cli.log): never a traceback on
the terminal.
"""

import os
import shlex
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import typing

from pydantic import BaseModel, SecretStr, ValidationError

from mchub.settings import Settings, get_settings
from mchub.spec.sshkey import shorten

CRASH_LOG = "cli.log"
_SHOWN_CHARACTERS = 200


def settings_problem(error: ValidationError) -> str:
    """The MCHUB_ variables that cannot be read, each with why."""
    problems = "; ".join(
        f"{_variable(problem['loc'])}={_shown_input(problem['loc'], problem.get('input'))}: {problem['msg']}"
        for problem in error.errors()
    )
    return f"the settings cannot be read: {problems}; fix or unset the variable"


def _shown_input(location: tuple[int | str, ...], value: object) -> str:
    """The value of a variable, unless it is a secret (a credential, a URL with a password):
    a terminal's scrollback and a service manager's journal are read by others."""
    field = Settings.model_fields.get(str(location[0])) if location else None
    if field is not None and _holds_secret(field.annotation):
        return "(hidden)"
    return shorten(value)


def _holds_secret(annotation: object) -> bool:
    """Whether a setting of this type holds a SecretStr, at any depth of its JSON."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(field.annotation) for field in annotation.model_fields.values())
    return any(_holds_secret(argument) for argument in typing.get_args(annotation))


def _variable(location: tuple[int | str, ...]) -> str:
    """The variable a problem is in, and where inside its JSON value: MCHUB_DNS["example.org"]."""
    name, *inside = location or ("",)
    return f"MCHUB_{str(name).upper()}" + "".join(f"[{part!r}]" if isinstance(part, int) else f'["{part}"]' for part in inside)


def unexpected_failure(error: Exception, argv: Sequence[str]) -> str:
    """One line for the terminal about an error nobody foresaw, after keeping its traceback."""
    command = " ".join(["mchub", *argv[:1]])
    first_line = next(iter(str(error).splitlines()), "")[:_SHOWN_CHARACTERS]
    # repr's escapes: a message may quote text with control characters meant for the terminal.
    what = type(error).__name__ + (f": {repr(first_line)[1:-1]}" if first_line else "")
    try:
        kept = f"the full traceback is in {_log_traceback(error, argv)}"
    except OSError as log_error:
        kept = f"its traceback could not be kept ({log_error.strerror or log_error})"
    return f"{command} failed unexpectedly ({what}); {kept}"


def _log_traceback(error: Exception, argv: Sequence[str]) -> Path:
    path = get_settings().home / "logs" / CRASH_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    entry = f"{stamp} mchub {shlex.join(argv)} failed:\n{''.join(traceback.format_exception(error))}\n"
    # Appended, never rewritten; 0600: a traceback can quote what a command read.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        log.write(entry)
    return path
