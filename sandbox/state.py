"""The sandbox cloud's changing state, kept in memory and saved to one JSON file on change.

Requests read the in-memory copy only; every change rewrites the file through a temporary
file and a rename, so a crash leaves either the old or the new state, never half of one. The
file is 0600 in a 0700 folder: it is the project's whole cloud.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from sandbox.catalog import QuotaSizes
from sandbox.private_files import private_dir, write_private

STATE_FILE = "state.json"


def utcnow() -> datetime:
    return datetime.now(UTC)


# Bounds of the knobs: a request that waits a minute, a cluster that boots in a day and a
# million injected failures are already far past any test or demo.
MAX_LATENCY_SECONDS = 60.0
MAX_BOOT_SECONDS = 86400.0
MAX_INJECTED_FAILURES = 1_000_000


class Knobs(BaseModel, extra="forbid", strict=True):
    """Settings that tests and demos turn through the admin API (strict: no `true` or "2" for a number)."""

    latency_seconds: float = Field(
        0.0, ge=0, le=MAX_LATENCY_SECONDS, allow_inf_nan=False, description="added to every OpenStack request"
    )
    boot_seconds: float = Field(
        45.0,
        ge=0,
        le=MAX_BOOT_SECONDS,
        allow_inf_nan=False,
        description="after its first server is created, a cluster's services answer",
    )
    build_seconds: float = Field(
        0.0, ge=0, le=MAX_BOOT_SECONDS, allow_inf_nan=False, description="a new server is BUILD, not ACTIVE, that long"
    )
    fail_next_server_creates: int = Field(
        0, ge=0, le=MAX_INJECTED_FAILURES, description="that many server creates answer 500"
    )
    fail_next_requests: int = Field(
        0, ge=0, le=MAX_INJECTED_FAILURES, description="that many OpenStack requests answer 500"
    )
    quotas: QuotaSizes = QuotaSizes()


class Server(BaseModel):
    id: str
    name: str
    flavor_id: str
    image_id: str | None
    metadata: dict[str, str] = {}
    key_name: str | None = None
    private_ip: str
    mac_address: str
    created_at: datetime


class Volume(BaseModel):
    id: str
    name: str | None
    description: str | None = None
    size: int
    metadata: dict[str, str] = {}
    image_id: str | None = None
    created_at: datetime


class FloatingIp(BaseModel):
    id: str
    address: str
    network_id: str
    port_id: str | None = None
    fixed_ip: str | None = None
    description: str = ""
    created_at: datetime


class CloudState(BaseModel):
    servers: dict[str, Server] = {}
    volumes: dict[str, Volume] = {}
    floating_ips: dict[str, FloatingIp] = {}
    knobs: Knobs = Knobs()


class StateFileError(Exception):
    """The state file exists but cannot be read as sandbox state."""


class BootSecondsError(Exception):
    """The boot time the sandbox was started with is not one it can keep."""


def _knobs_booting_in(boot_seconds: float) -> Knobs:
    try:
        return Knobs(boot_seconds=boot_seconds)
    except ValidationError:
        raise BootSecondsError(
            f"the boot time must be a number of seconds from 0 to {MAX_BOOT_SECONDS:g}, not {boot_seconds!r}"
        ) from None


class Store:
    """The one CloudState of a running sandbox and the file that keeps it across restarts."""

    def __init__(self, data_dir: Path, boot_seconds: float | None = None) -> None:
        """`boot_seconds`, when given, replaces the saved knob and is what a reset returns to."""
        self.path = data_dir / STATE_FILE
        self.default_knobs = Knobs() if boot_seconds is None else _knobs_booting_in(boot_seconds)
        private_dir(data_dir)
        self.state = self._load()
        if boot_seconds is not None:
            self.state.knobs.boot_seconds = self.default_knobs.boot_seconds
        # Saved at once: a state file an older sandbox left readable by others is closed now.
        self.save()

    def _load(self) -> CloudState:
        if not self.path.exists():
            return CloudState()
        try:
            return CloudState.model_validate_json(self.path.read_bytes())
        except ValidationError as error:
            first = error.errors(include_input=False)[0]
            where = ".".join(map(str, first["loc"])) or "top level"
            raise StateFileError(
                f"{self.path} is not a sandbox state file ({first['msg']} at {where}); "
                "move it away to start with an empty cloud"
            ) from error

    def save(self) -> None:
        write_private(self.path, self.state.model_dump_json(indent=1).encode())

    def reset(self) -> None:
        """No servers, volumes or floating IPs; knobs and quotas back to their defaults."""
        self.state = CloudState(knobs=self.default_knobs.model_copy(deep=True))
        self.save()

    def update_knobs(self, changes: Mapping[str, Any]) -> Knobs:
        """Apply a partial update (`quotas` may be partial too); raises ValidationError, changing nothing."""
        merged = self.state.knobs.model_dump()
        for key, value in changes.items():
            if key == "quotas" and isinstance(value, Mapping):
                merged["quotas"].update(value)
            else:
                merged[key] = value
        self.state.knobs = Knobs.model_validate(merged)
        self.save()
        return self.state.knobs

    def take_injected_fault(self, knob: str) -> bool:
        """Whether this request must fail because the countdown `knob` is above 0 (it counts down)."""
        remaining = getattr(self.state.knobs, knob)
        if remaining <= 0:
            return False
        setattr(self.state.knobs, knob, remaining - 1)
        self.save()
        return True
