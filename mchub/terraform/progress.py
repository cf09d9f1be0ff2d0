"""How far an apply has got, from Terraform's -json messages as they arrive.

Feed every message of `terraform apply -json` to `ApplyProgress.update` (Terraform.apply's
`on_event` can be `progress.update`); the model keeps each resource's state (pending,
running, done, failed) and elapsed time, the overall percentage (done / planned) and the
last error, and says it in one line: "3/7 resources, 43% — creating instance node2".

The planned resources come from the `planned_change` messages an apply of a saved plan
starts with, or from the PlanSummary (`ApplyProgress.from_plan`). Times come from the
messages' own timestamps, so a log file replayed later gives the same result.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, computed_field

from mchub.terraform.errors import Diagnostic
from mchub.terraform.logs import LOG_MODULE
from mchub.terraform.plan import Action, ChangeCounts, Kind, PlanSummary, describe_resource, label

ResourceState = Literal["pending", "running", "done", "failed"]

_PLANNED_ACTIONS = {"create", "update", "delete", "replace", "read"}
_VERBS = {"create": "creating", "update": "updating", "delete": "destroying", "read": "reading"}
_NAMES_IN_LINE = 3
_SHOW_ELAPSED_AFTER = 10.0


class ResourceProgress(BaseModel):
    address: str
    kind: Kind
    name: str
    action: Action
    """The planned action; a replacement is a delete and a create, in either order."""
    state: ResourceState = "pending"
    running: str | None = None
    """The action under way: "delete" or "create" (the halves of a replacement), …"""
    provisioner: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_seconds: float = 0.0
    error: str | None = None
    steps_done: int = 0

    @property
    def steps(self) -> int:
        return 2 if self.action == "replace" else 1

    @property
    def label(self) -> str:
        return label(self.kind, self.name)


class ApplyProgress(BaseModel):
    resources: dict[str, ResourceProgress] = {}
    """By address, in the order Terraform announced them."""
    last_error: Diagnostic | None = None
    """The latest error Terraform reported; str() gives summary, place and detail."""
    applied: ChangeCounts | None = None
    """Terraform's closing tally, once the apply has completed."""
    as_of: datetime | None = None
    """Timestamp of the latest message."""

    @classmethod
    def from_plan(cls, plan: PlanSummary) -> "ApplyProgress":
        """Progress of applying this plan, before any message has arrived."""
        return cls(
            resources={
                c.address: ResourceProgress(address=c.address, kind=c.kind, name=c.name, action=c.action)
                for c in plan.changes
            }
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def planned(self) -> int:
        return len(self.resources)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def done(self) -> int:
        return sum(r.state == "done" for r in self.resources.values())

    @property
    def failed(self) -> list[ResourceProgress]:
        return [r for r in self.resources.values() if r.state == "failed"]

    @property
    def running(self) -> list[ResourceProgress]:
        return [r for r in self.resources.values() if r.state == "running"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> int:
        return round(100 * self.done / self.planned) if self.planned else 0

    def update(self, event: dict[str, Any]) -> None:
        """Take one -json message; messages of other kinds, and the lines MC Hub adds to a
        log ("@module": "mchub"), are ignored."""
        if event.get("@module") == LOG_MODULE:
            return
        timestamp = _timestamp(event)
        if timestamp is not None:
            self.as_of = timestamp
        kind = event.get("type")
        if kind == "planned_change":
            self._planned(event)
        elif kind == "change_summary":
            changes = event.get("changes") or {}
            if changes.get("operation") == "apply":
                self.applied = ChangeCounts(
                    add=changes.get("add", 0), change=changes.get("change", 0), destroy=changes.get("remove", 0)
                )
        elif kind == "diagnostic":
            diagnostic = Diagnostic.from_event(event)
            if diagnostic is not None and diagnostic.severity == "error":
                self.last_error = diagnostic
                if diagnostic.address in self.resources:
                    self.resources[diagnostic.address].error = str(diagnostic)
        elif isinstance(kind, str) and kind.startswith(("apply_", "provision_")):
            self._hook(kind, event, timestamp)
        self._tick()

    def line(self) -> str:
        """The state of the apply in one line, for a status field or a log."""
        counted = f"{self.done}/{self.planned} resources, {self.percent}%"
        if self.failed:
            failed = ", ".join(r.label for r in self.failed)
            return f"{counted} — failed: {failed}" + (f" ({self.last_error.summary})" if self.last_error else "")
        if self.running:
            return f"{counted} — {self._running_text()}"
        if self.applied is not None:
            a = self.applied
            return f"{counted} — apply complete: {a.add} added, {a.change} changed, {a.destroy} destroyed"
        return f"{counted} — " + ("done" if self.planned and self.done == self.planned else "waiting")

    def _running_text(self) -> str:
        by_verb: dict[str, list[str]] = {}
        for resource in self.running:
            verb = "replacing" if resource.action == "replace" else _VERBS.get(resource.running or "", "changing")
            text = resource.label
            if resource.elapsed_seconds >= _SHOW_ELAPSED_AFTER:
                text += f" ({_duration(resource.elapsed_seconds)})"
            by_verb.setdefault(verb, []).append(text)
        parts = []
        for verb, names in by_verb.items():
            more = len(names) - _NAMES_IN_LINE
            parts.append(f"{verb} {', '.join(names[:_NAMES_IN_LINE])}" + (f" and {more} more" if more > 0 else ""))
        return "; ".join(parts)

    def _planned(self, event: dict[str, Any]) -> None:
        try:
            change = _PlannedChange.model_validate(event.get("change"))
        except ValidationError:
            return
        if change.action in _PLANNED_ACTIONS and change.resource.addr not in self.resources:
            self.resources[change.resource.addr] = change.resource.progress(change.action)

    def _hook(self, kind: str, event: dict[str, Any], timestamp: datetime | None) -> None:
        try:
            hook = _Hook.model_validate(event.get("hook"))
        except ValidationError:
            return
        resource = self.resources.get(hook.resource.addr)
        if resource is None:
            # Not announced (e.g. progress made from a plan that has since changed): count it.
            action = hook.action if hook.action in _PLANNED_ACTIONS else "update"
            resource = self.resources[hook.resource.addr] = hook.resource.progress(action)
        if kind in ("apply_start", "provision_start") and resource.state != "failed":
            resource.state = "running"
            if resource.started_at is None:
                resource.started_at = timestamp
        if kind == "apply_start":
            resource.running = hook.action
        elif kind == "provision_start":
            resource.provisioner = hook.provisioner
        elif kind == "provision_complete":
            resource.provisioner = None
        elif kind == "apply_complete":
            resource.steps_done += 1
            if resource.steps_done >= resource.steps:
                resource.state, resource.running, resource.finished_at = "done", None, timestamp
        elif kind in ("apply_errored", "provision_errored"):
            resource.state, resource.finished_at = "failed", timestamp
            what = f"{hook.provisioner} provisioner" if kind == "provision_errored" else hook.action or "change"
            resource.error = resource.error or f"{what} failed"
        if hook.elapsed_seconds is not None and resource.state == "running":
            resource.elapsed_seconds = max(resource.elapsed_seconds, hook.elapsed_seconds)

    def _tick(self) -> None:
        """Bring the elapsed time of the resources in flight up to the latest message."""
        for resource in self.resources.values():
            if resource.started_at is None:
                continue
            end = resource.finished_at if resource.state in ("done", "failed") else self.as_of
            if end is not None:
                resource.elapsed_seconds = max(resource.elapsed_seconds, (end - resource.started_at).total_seconds())


class _EventResource(BaseModel):
    addr: str
    resource: str
    resource_type: str
    resource_name: str
    resource_key: str | int | None = None

    def progress(self, action: str) -> ResourceProgress:
        kind, name = describe_resource(self.resource_type, self.resource_name, self.resource_key, self.resource)
        return ResourceProgress(address=self.addr, kind=kind, name=name, action=action)


class _PlannedChange(BaseModel):
    resource: _EventResource
    action: str


class _Hook(BaseModel):
    resource: _EventResource
    action: str | None = None
    provisioner: str | None = None
    elapsed_seconds: float | None = None


def _timestamp(event: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(event["@timestamp"])
    except (KeyError, TypeError, ValueError):
        return None


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
