"""Terraform for one working directory: init, plan, show, apply, output and state.

Every method runs one Terraform command as a child process in its own process group
(mchub.terraform.process), which never outlives the process that started it, with
`-input=false -no-color` and `-json` where the command has it. Each output line goes, as it
arrives, to `<log_dir>/<step>.log` (mchub.terraform.logs) and, for init/plan/apply, parsed,
to an optional `on_event` callback. `cancel()` (from any thread),
or the timeout, stops the command with SIGINT so Terraform saves its state.

Secrets: the output of `show`, `output` and `state pull` can hold sensitive values in clear
text, so it is returned to the caller and never logged; the environment is never logged.
"""

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, Field

from mchub.settings import get_settings
from mchub.terraform.binary import TerraformBinary, find_terraform
from mchub.terraform.errors import (
    Diagnostic,
    TerraformCancelled,
    TerraformError,
    interrupted,
)
from mchub.terraform.logs import LOG_MODULE, open_log
from mchub.terraform.process import run_process

EventCallback = Callable[[dict[str, Any]], None]

_COMMON = ["-input=false", "-no-color"]


class RunResult(BaseModel):
    """A Terraform command that succeeded."""

    command: str
    log_file: Path
    warnings: list[Diagnostic]
    duration_seconds: float


class TerraformOutput(BaseModel):
    """One root-module output, as `terraform output -json` gives it."""

    sensitive: bool
    type: Any
    value: Any = Field(repr=False)  # may be a password: kept out of reprs and logs


class _Completed(BaseModel):
    result: RunResult
    stdout: list[str]


class Terraform:
    """Terraform bound to one working directory (a cluster's folder)."""

    def __init__(
        self,
        working_dir: Path,
        *,
        log_dir: Path | None = None,
        binary: TerraformBinary | None = None,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 3600.0,
        grace_period: float = 60.0,
    ) -> None:
        """`binary` defaults to `find_terraform(settings.terraform_binary)`; `home` (default
        settings.home) holds the CLI configuration and plugin cache; `env` is added to this
        process's environment (cloud credentials, TF_VAR_*); `timeout` and `grace_period`
        (SIGINT to SIGKILL) are seconds per command."""
        settings = get_settings()
        self.working_dir = Path(working_dir).resolve()
        self.log_dir = log_dir if log_dir is not None else self.working_dir / "logs"
        self.binary = binary if binary is not None else find_terraform(settings.terraform_binary)
        self._tool_dir = (home if home is not None else settings.home).resolve() / "terraform"
        self._extra_env = dict(env or {})
        self.timeout = timeout
        self.grace_period = grace_period
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        """Stop the running command (SIGINT, then SIGKILL after the grace period) and refuse
        to start more. Safe to call from any thread."""
        self.cancel_event.set()

    def version(self) -> str:
        """Terraform's version, like "1.15.5"."""
        completed = self._run("version", ["version", "-json"])
        return json.loads("\n".join(completed.stdout))["terraform_version"]

    def init(self, *, upgrade: bool = False, on_event: EventCallback | None = None) -> RunResult:
        args = ["init", *_COMMON, "-json"] + (["-upgrade"] if upgrade else [])
        # The plugin cache is shared by every cluster and Terraform does not make concurrent
        # inits safe against it (hashicorp/terraform#31964): one init at a time.
        with self._plugin_cache_lock():
            return self._run("init", args, on_event=on_event).result

    def plan(
        self,
        plan_file: Path | str = "tfplan",
        *,
        destroy: bool = False,
        replace: Sequence[str] = (),
        on_event: EventCallback | None = None,
    ) -> RunResult:
        """Write the plan (a destroy plan when `destroy`) to plan_file, relative to the working
        dir; `replace`: addresses of resource instances to plan again (`-replace`)."""
        args = ["plan", *_COMMON, "-json", f"-out={plan_file}"] + (["-destroy"] if destroy else [])
        args += [f"-replace={address}" for address in replace]
        return self._run("destroy-plan" if destroy else "plan", args, on_event=on_event).result

    def show_plan(self, plan_file: Path | str = "tfplan") -> dict[str, Any]:
        """The saved plan as JSON (Terraform's JSON plan format, see mchub.terraform.plan)."""
        completed = self._run("show", ["show", "-no-color", "-json", str(plan_file)], secret_stdout=True)
        return json.loads("\n".join(completed.stdout))

    def apply(
        self, plan_file: Path | str = "tfplan", *, step: str = "apply", on_event: EventCallback | None = None
    ) -> RunResult:
        """Apply exactly the saved plan; `step` names the log ("destroy" for a destroy plan)."""
        return self._run(step, ["apply", *_COMMON, "-json", str(plan_file)], on_event=on_event).result

    def outputs(self) -> dict[str, TerraformOutput]:
        completed = self._run("output", ["output", "-no-color", "-json"], secret_stdout=True)
        raw = json.loads("\n".join(completed.stdout))
        return {name: TerraformOutput.model_validate(output) for name, output in raw.items()}

    def state_pull(self) -> dict[str, Any]:
        """The whole state (it holds every attribute, secrets included)."""
        completed = self._run("state", ["state", "pull"], secret_stdout=True)
        return json.loads("\n".join(completed.stdout))

    def _run(
        self,
        step: str,
        args: list[str],
        *,
        on_event: EventCallback | None = None,
        secret_stdout: bool = False,
    ) -> _Completed:
        command = " ".join(["terraform", *args])
        if self.cancel_event.is_set():
            raise TerraformCancelled(
                f"`{command}` was not started: this cluster's Terraform was cancelled",
                command=command, killed=False, log_file=None,
            )
        with open_log(self.log_dir, step) as file:
            log = _RunLog(file)
            log.record("mchub_command", command, cwd=str(self.working_dir), terraform=self.binary.origin)
            if secret_stdout:
                log.record("mchub_note", "stdout is returned to MC Hub, not logged: it can hold secrets")
            reader = _OutputReader(log, on_event, secret_stdout)
            outcome = run_process(
                [*self.binary.argv, *args],
                cwd=self.working_dir,
                env=self._environment(),
                on_stdout=reader.stdout_line,
                on_stderr=reader.stderr_line,
                should_stop=lambda: self.cancel_event.is_set() or bool(reader.callback_errors),
                timeout=self.timeout,
                grace_period=self.grace_period,
                log=file,
                log_stdout=not secret_stdout,
            )
            log.record(
                "mchub_exit", f"exit code {outcome.exit_code} after {outcome.duration_seconds:.1f} s",
                exit_code=outcome.exit_code, stopped=outcome.stopped, killed=outcome.killed,
            )
        log_file = Path(file.name)
        if reader.callback_errors:
            raise reader.callback_errors[0]
        if outcome.stopped is not None:
            raise interrupted(
                command, outcome.stopped, timeout=self.timeout, killed=outcome.killed,
                grace_period=self.grace_period, log_file=log_file,
            )
        if outcome.exit_code != 0:
            raise TerraformError(command, outcome.exit_code, reader.diagnostics, outcome.stderr, log_file)
        result = RunResult(
            command=command,
            log_file=log_file,
            warnings=[d for d in reader.diagnostics if d.severity == "warning"],
            duration_seconds=outcome.duration_seconds,
        )
        return _Completed(result=result, stdout=reader.stdout)

    def _environment(self) -> dict[str, str]:
        # Inherited TF_* variables would change what runs: TF_LOG floods stderr (and the logs)
        # with debug output, TF_CLI_ARGS* add arguments, TF_WORKSPACE/TF_DATA_DIR point at
        # other state, a TF_CLI_CONFIG_FILE naming a missing file prints a warning into every
        # result. Only TF_VAR_* (input variables) pass through.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_") or k.startswith("TF_VAR_")}
        env.update(self.binary.env)
        env.update(self._extra_env)
        env.update(
            TF_IN_AUTOMATION="1",  # no "run terraform apply next" advice in the output
            CHECKPOINT_DISABLE="1",  # no version check calls to checkpoint-api.hashicorp.com
            TF_CLI_CONFIG_FILE=str(self._cli_config()),
        )
        return env

    def _cli_config(self) -> Path:
        """MC Hub's own Terraform CLI configuration: only a shared provider plugin cache."""
        cache = self._tool_dir / "plugin-cache"
        cache.mkdir(parents=True, exist_ok=True)  # a missing cache dir is an error in every run
        path = self._tool_dir / "cli.tfrc"
        text = f"plugin_cache_dir = {json.dumps(str(cache))}\n"  # a JSON string is a valid HCL string
        if not path.is_file() or path.read_text() != text:
            # Written aside then renamed: a Terraform starting meanwhile never reads half a file.
            descriptor, partial = tempfile.mkstemp(dir=self._tool_dir, suffix=".tmp")
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
            os.replace(partial, path)
        return path

    @contextmanager
    def _plugin_cache_lock(self) -> Iterator[None]:
        self._tool_dir.mkdir(parents=True, exist_ok=True)
        with open(self._tool_dir / "plugin-cache.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class _RunLog:
    """One command's log file. Lines keep the shape of Terraform's -json messages, so every
    line of a log parses the same way; MC Hub's own lines have "@module": LOG_MODULE."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()  # stdout and stderr are read by two threads

    def line(self, text: str) -> None:
        with self._lock:
            self._file.write(text + "\n")

    def record(self, kind: str, message: str, level: str = "info", **fields: Any) -> None:
        record = {
            "@level": level,
            "@message": message,
            "@module": LOG_MODULE,
            "@timestamp": datetime.now(UTC).isoformat(),
            "type": kind,
            **fields,
        }
        self.line(json.dumps(record))


class _OutputReader:
    """Takes a command's output lines as they arrive: logs them, collects diagnostics and
    hands -json messages to the caller's callback."""

    def __init__(self, log: _RunLog, on_event: EventCallback | None, secret_stdout: bool) -> None:
        self.log = log
        self.on_event = on_event
        self.secret_stdout = secret_stdout
        self.stdout: list[str] = []
        self.diagnostics: list[Diagnostic] = []
        self.callback_errors: list[Exception] = []

    def stdout_line(self, line: str) -> None:
        self.stdout.append(line)
        if self.secret_stdout or not line:
            return
        event = _parse_event(line)
        if event is None:
            self.log.record("stdout", line)
            return
        self.log.line(line)
        diagnostic = Diagnostic.from_event(event)
        if diagnostic is not None:
            self.diagnostics.append(diagnostic)
        if self.on_event is not None and not self.callback_errors:
            try:
                self.on_event(event)
            except Exception as error:  # stops Terraform, then re-raised by Terraform._run
                self.callback_errors.append(error)

    def stderr_line(self, line: str) -> None:
        self.log.record("stderr", line, level="error")


def _parse_event(line: str) -> dict[str, Any] | None:
    """The -json message on this line, None for a line of plain text."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
