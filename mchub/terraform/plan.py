"""A Terraform plan as a person thinks of a cluster: instances, volumes, floating IPs.

`PlanSummary.from_plan_json` reads `terraform show -json PLANFILE` (format 1.x) and groups
the resource changes into lines such as "+2 instances node3, node4 (c8-30gb)" or
"~ resize volume nfs-home 100 → 200 GB", counts them like Terraform (add/change/destroy),
and lists the destructive ones, saying when data on a volume will be lost.

Two module shapes are understood: Magic Castle's openstack module (openstack_* resources
keyed by instance or volume name) and the sandbox module, whose cloud objects are
`terraform_data` resources named instance, volume, boot_volume and floating_ip with their
attributes in `input`. Anything else is an "other resource", counted by type.
Only names, flavors and sizes are read from the plan: its other values can be secrets.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, computed_field

from mchub.errors import MCHubError

Action = Literal["create", "update", "replace", "delete", "read", "no-op"]
Kind = Literal["instance", "volume", "floating_ip", "other"]

KINDS: tuple[Kind, ...] = ("instance", "volume", "floating_ip", "other")
_ACTION_ORDER: tuple[Action, ...] = ("create", "update", "replace", "delete", "read")
_SYMBOL = {"create": "+", "update": "~ ", "replace": "-/+ ", "delete": "-", "read": "<= "}
_HEADINGS = {"instance": "Instances", "volume": "Volumes", "floating_ip": "Floating IPs", "other": "Other resources"}
_NOUNS = {
    "instance": ("instance", "instances"),
    "volume": ("volume", "volumes"),
    "floating_ip": ("floating IP", "floating IPs"),
    "other": ("other resource", "other resources"),
}
_ACTIONS = {
    ("no-op",): "no-op",
    ("create",): "create",
    ("read",): "read",
    ("update",): "update",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",  # create_before_destroy
}
_OPENSTACK_KINDS: dict[str, Kind] = {
    "openstack_compute_instance_v2": "instance",
    "openstack_blockstorage_volume_v3": "volume",
    "openstack_networking_floatingip_v2": "floating_ip",
    "openstack_networking_floatingip_associate_v2": "floating_ip",
}
_SANDBOX_KINDS: dict[str, Kind] = {
    "instance": "instance",
    "volume": "volume",
    "boot_volume": "volume",
    "floating_ip": "floating_ip",
}


class PlanFormatError(MCHubError, ValueError):
    """The JSON is not a Terraform plan this module can read."""


def describe_resource(
    resource_type: str, resource_name: str, key: str | int | None, short_address: str
) -> tuple[Kind, str]:
    """The kind of a resource instance and the name a person knows it by ("node3",
    "nfs-home", "mgmt1 (boot)"); other resources keep their address without module path."""
    if resource_type == "terraform_data":
        kind = _SANDBOX_KINDS.get(resource_name, "other")
    else:
        kind = _OPENSTACK_KINDS.get(resource_type, "other")
    if kind == "other" or not isinstance(key, str):
        return kind, short_address
    if resource_type == "terraform_data" and resource_name == "boot_volume":
        return kind, f"{key} (boot)"
    return kind, key


def label(kind: Kind, name: str) -> str:
    """"instance node3", "volume nfs-home"; an other resource is its address alone."""
    return name if kind == "other" else f"{_NOUNS[kind][0]} {name}"


class ResourceChange(BaseModel):
    """One resource instance's planned change, with what a person needs to judge it."""

    address: str
    kind: Kind
    name: str
    resource_type: str
    action: Action
    flavor: str | None = None
    """Instances: the flavor after the change (before it, for a deletion)."""
    flavor_before: str | None = None
    size_gb: int | None = None
    """Volumes: the size after the change (before it, for a deletion)."""
    size_before_gb: int | None = None

    @property
    def destructive(self) -> bool:
        # Among "other" resources only cloud objects count: Magic Castle replaces its
        # provisioning steps (terraform_data, null_resource) on every configuration change,
        # and a warning on each plan would teach people to ignore warnings.
        cloud_object = self.kind != "other" or self.resource_type.startswith("openstack_")
        return cloud_object and self.action in ("delete", "replace")

    def resize(self) -> str:
        """"p2-3gb → p4-6gb" or "100 → 200 GB" when the flavor or size changes, else ""."""
        if self.flavor_before and self.flavor and self.flavor_before != self.flavor:
            return f"{self.flavor_before} → {self.flavor}"
        if self.size_before_gb is not None and self.size_gb is not None and self.size_before_gb != self.size_gb:
            return f"{self.size_before_gb} → {self.size_gb} GB"
        return ""

    def warning(self) -> str:
        """What a destructive change destroys, said plainly."""
        what = label(self.kind, self.name)
        resize = f" ({self.resize()})" if self.resize() else ""
        if self.kind == "volume":
            how = "deleted" if self.action == "delete" else "replaced by a new, empty volume"
            return f"data on volume {self.name} will be lost: it is {how}{resize}"
        if self.kind == "instance":
            how = "deleted" if self.action == "delete" else f"deleted and created again{resize}"
            return f"{what} will be {how}: what is on its disk is lost"
        verb = "deleted" if self.action == "delete" else "replaced"
        if self.kind == "floating_ip":
            return f"{what} will be {verb}: the public address may change"
        return f"{what} will be {verb}"


class ChangeCounts(BaseModel):
    """Terraform's own tally: a replacement is one to add and one to destroy."""

    add: int = 0
    change: int = 0
    destroy: int = 0

    def __str__(self) -> str:
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"


class PlanSummary(BaseModel):
    resources: list[ResourceChange]
    """Every managed resource instance in the plan, unchanged ones ("no-op") included."""

    @classmethod
    def from_plan_json(cls, plan: Mapping[str, Any]) -> "PlanSummary":
        """Summarise `terraform show -json PLANFILE` output (already parsed)."""
        parsed = _Plan.model_validate(plan)
        if parsed.format_version.split(".")[0] != "1":
            raise PlanFormatError(
                f"plan format_version {parsed.format_version!r}: MC Hub reads the plan format of "
                "Terraform 1.x; set MCHUB_TERRAFORM_BINARY to a Terraform 1.x"
            )
        return cls(resources=[rc.summary() for rc in parsed.resource_changes if rc.mode == "managed"])

    @property
    def changes(self) -> list[ResourceChange]:
        """The resources that change (everything but no-op)."""
        return [r for r in self.resources if r.action != "no-op"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> ChangeCounts:
        counts = ChangeCounts()
        for change in self.changes:
            counts.add += change.action in ("create", "replace")
            counts.change += change.action == "update"
            counts.destroy += change.action in ("delete", "replace")
        return counts

    @computed_field  # type: ignore[prop-decorator]
    @property
    def destructive(self) -> bool:
        return any(r.destructive for r in self.resources)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def destructive_changes(self) -> list[str]:
        """One warning per destructive change; lost volume data first."""
        ordered = sorted((r for r in self.resources if r.destructive), key=lambda r: r.kind != "volume")
        return list(dict.fromkeys(r.warning() for r in ordered))

    def lines(self, kind: Kind | None = None) -> list[str]:
        """The changes as short lines, grouped by kind then action (only `kind`'s if given)."""
        lines: list[str] = []
        for group_kind in (kind,) if kind else KINDS:
            for action in _ACTION_ORDER:
                group = [c for c in self.changes if c.kind == group_kind and c.action == action]
                if group:
                    lines += _group_lines(group_kind, action, group)
        return lines

    def to_markdown(self, title: str = "Terraform plan") -> str:
        """The summary for a person approving the plan: counts, grouped lines, warnings."""
        parts = [f"### {title}"]
        if not self.has_changes:
            parts.append("No changes: the cluster already matches its configuration.")
            return "\n\n".join(parts)
        parts.append(f"**{str(self.counts).capitalize()}.**")
        for kind in KINDS:
            if lines := self.lines(kind):
                parts.append(f"**{_HEADINGS[kind]}**\n" + "\n".join(f"- `{line}`" for line in lines))
        if unchanged := self._unchanged():
            parts.append(f"Unchanged: {unchanged}.")
        if self.destructive:
            warnings = "\n".join(f"> - {text}" for text in self.destructive_changes)
            parts.append(f"> **Warning: this plan destroys things.**\n>\n{warnings}")
        return "\n\n".join(parts)

    def _unchanged(self) -> str:
        counted = []
        for kind in KINDS:
            n = len(_unique_names(r for r in self.resources if r.kind == kind and r.action == "no-op"))
            if n:
                counted.append(f"{n} {_NOUNS[kind][n != 1]}")
        return ", ".join(counted)


def _group_lines(kind: Kind, action: Action, group: list[ResourceChange]) -> list[str]:
    symbol = _SYMBOL[action]
    resources = _unique_names(group)  # a floating IP and its association are one to a person
    if kind == "other":
        by_type = Counter(resource.resource_type for resource in resources)
        types = ", ".join(f"{n} {resource_type}" for resource_type, n in by_type.items())
        verb = "" if action in ("create", "delete") else f"{action} "
        return [f"{symbol}{verb}{_count(kind, len(resources))} ({types})"]
    if action in ("create", "delete"):
        if kind == "instance":
            by_flavor: dict[str | None, list[str]] = {}
            for resource in resources:
                by_flavor.setdefault(resource.flavor, []).append(resource.name)
            return [
                f"{symbol}{_count(kind, len(names))} {', '.join(names)}" + (f" ({flavor})" if flavor else "")
                for flavor, names in by_flavor.items()
            ]
        items = ", ".join(r.name + (f" {r.size_gb} GB" if r.size_gb is not None else "") for r in resources)
        return [f"{symbol}{_count(kind, len(resources))} {items}"]
    return [symbol + _single_line(resource) for resource in resources]


def _single_line(resource: ResourceChange) -> str:
    what = label(resource.kind, resource.name)
    resize = resource.resize()
    if resource.action == "update" and resize:
        return f"resize {what} {resize}"
    if resource.action == "replace":
        if resize:
            return f"replace {what} {resize}"
        return f"replace {what}" + (f" {resource.size_gb} GB" if resource.size_gb is not None else "")
    return f"{resource.action} {what}"


def _count(kind: Kind, n: int) -> str:
    return f"{n} {_NOUNS[kind][n != 1]}"


def _unique_names(resources: Iterable[ResourceChange]) -> list[ResourceChange]:
    unique: dict[tuple[str, str], ResourceChange] = {}
    for resource in resources:
        unique.setdefault((resource.kind, resource.name), resource)
    return list(unique.values())


class _Change(BaseModel):
    actions: list[str]
    before: Any = None
    after: Any = None


class _ResourceChangeJson(BaseModel):
    address: str
    mode: str
    type: str
    name: str
    index: str | int | None = None
    change: _Change

    def summary(self) -> ResourceChange:
        action = _ACTIONS.get(tuple(self.change.actions))
        if action is None:
            raise PlanFormatError(
                f"{self.address}: planned actions {self.change.actions} are not ones MC Hub "
                "knows (create, update, delete, replace, read, no-op); review this plan with "
                "`terraform show` instead"
            )
        kind, name = describe_resource(self.type, self.name, self.index, self._short_address())
        before, after = self._values(self.change.before), self._values(self.change.after)
        # A deletion has no "after": describe what is being deleted.
        current = before if action == "delete" else after
        return ResourceChange(
            address=self.address,
            kind=kind,
            name=name,
            resource_type=self.type,
            action=action,
            flavor=_text(current, "flavor_name", "flavor") if kind == "instance" else None,
            flavor_before=_text(before, "flavor_name", "flavor") if kind == "instance" else None,
            size_gb=_number(current, "size") if kind == "volume" else None,
            size_before_gb=_number(before, "size") if kind == "volume" else None,
        )

    def _short_address(self) -> str:
        # The address without its module path: what Terraform prints in `resource` of -json events.
        key = "" if self.index is None else f"[{self.index}]" if isinstance(self.index, int) else f'["{self.index}"]'
        return f"{self.type}.{self.name}{key}"

    def _values(self, values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            return {}  # null (create/delete side) or unknown
        if self.type == "terraform_data":
            # The sandbox module keeps a cloud object's attributes in the resource's input.
            return values["input"] if isinstance(values.get("input"), dict) else {}
        return values


class _Plan(BaseModel):
    format_version: str
    resource_changes: list[_ResourceChangeJson] = []


def _text(values: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if isinstance(values.get(key), str):
            return values[key]
    return None


def _number(values: dict[str, Any], key: str) -> int | None:
    value = values.get(key)
    # A map(string) input (rather than an object) turns numbers into strings.
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    return None
