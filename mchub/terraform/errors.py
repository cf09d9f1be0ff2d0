"""What went wrong in a Terraform run, said so that a person can act on it.

Terraform's `-json` output reports problems as `diagnostic` messages (severity, summary,
detail, the configuration range); `Diagnostic` is one of them. A failed command raises
`TerraformError`, whose message is its error diagnostics, or the end of stderr when the
command has no -json output. Cancelled and timed-out runs raise their own exceptions.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from mchub.errors import MCHubError


class Position(BaseModel):
    line: int
    column: int


class SourceRange(BaseModel):
    filename: str
    start: Position
    end: Position

    def __str__(self) -> str:
        lines = f"line {self.start.line}"
        if self.end.line != self.start.line:
            lines = f"lines {self.start.line}-{self.end.line}"
        return f"{self.filename} {lines}"


class Diagnostic(BaseModel):
    severity: Literal["error", "warning"]
    summary: str
    detail: str = ""
    address: str | None = None
    range: SourceRange | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> "Diagnostic | None":
        """The diagnostic carried by a -json message, None for other messages."""
        if event.get("type") != "diagnostic" or not isinstance(event.get("diagnostic"), dict):
            return None
        return cls.model_validate(event["diagnostic"])

    def __str__(self) -> str:
        where = [str(place) for place in (self.range, self.address) if place]
        text = self.summary + (f" ({', in '.join(where)})" if where else "")
        return f"{text}: {self.detail}" if self.detail else text


class TerraformError(MCHubError):
    """A Terraform command exited with an error."""

    def __init__(
        self,
        command: str,
        exit_code: int,
        diagnostics: list[Diagnostic],
        stderr: str,
        log_file: Path | None,
    ) -> None:
        self.command = command
        self.exit_code = exit_code
        self.diagnostics = diagnostics
        self.log_file = log_file
        errors = _unique(str(d) for d in diagnostics if d.severity == "error")
        reasons = errors
        if not reasons and stderr.strip():
            # Commands without -json output (show, output, state) report on stderr instead.
            reasons = [_tail(stderr)]
        lines = [f"`{command}` failed (exit code {exit_code})" + (":" if reasons else "")]
        lines += [f"- {reason}" for reason in reasons]
        if log_file is not None:
            lines.append(f"Full output: {log_file}")
        super().__init__("\n".join(lines))


class TerraformInterrupted(MCHubError):
    """A Terraform command was stopped before its end: cancelled, or past its timeout."""

    def __init__(self, message: str, *, command: str, killed: bool, log_file: Path | None) -> None:
        super().__init__(message)
        self.command = command
        self.killed = killed
        """Terraform ignored SIGINT for the whole grace period and was killed."""
        self.log_file = log_file


class TerraformCancelled(TerraformInterrupted):
    pass


class TerraformTimeout(TerraformInterrupted):
    pass


def interrupted(
    command: str, reason: Literal["cancelled", "timeout"], *, timeout: float, killed: bool,
    grace_period: float, log_file: Path | None,
) -> TerraformInterrupted:
    """The exception for a command MC Hub stopped, saying what state it left behind."""
    if killed:
        outcome = (
            f"it did not stop within {grace_period:g} s of SIGINT and was killed, so its state "
            "may miss resources it was changing: run a plan before anything else"
        )
    else:
        outcome = "it stopped cleanly after SIGINT and saved its state"
    where = f" (log: {log_file})" if log_file is not None else ""
    if reason == "timeout":
        return TerraformTimeout(
            f"`{command}` did not finish within its {timeout:g} s timeout; {outcome}{where}",
            command=command, killed=killed, log_file=log_file,
        )
    return TerraformCancelled(
        f"`{command}` was cancelled; {outcome}{where}", command=command, killed=killed, log_file=log_file
    )


def _unique(texts: Iterable[str]) -> list[str]:
    # Terraform repeats some diagnostics (e.g. "execution halted" once per walk).
    return list(dict.fromkeys(texts))


def _tail(text: str, lines: int = 20) -> str:
    return "\n  ".join(line for line in text.strip().splitlines()[-lines:])
