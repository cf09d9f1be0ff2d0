"""What the cluster form holds: rows of machines and volumes as a person edits them.

The spec keys machines by prefix and volumes by tag then name; the form keeps them as rows
(a row id each), so two rows may briefly share a prefix while someone is typing. Turning
the rows into spec data reports such clashes at the row that makes them, and every
problem of the spec is placed on the form: a field, a row's column, a row, or a section.
"""

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, SecretStr

from mchub.spec.model import ClusterSpec, FieldProblem, InstanceGroup, Volume

# Where a problem is shown. Top-level fields use their own name ("cluster_name"); rows and
# volumes use "row.<id>[.<column>]" and "vol.<id>[.<column>]".
INSTANCES = "instances"
VOLUMES = "volumes"
QUOTA = "quota"
GENERAL = "spec"
TOP_FIELDS = (
    "cluster_name", "domain", "image", "nb_users", "public_keys", "guest_passwd", "hieradata",
    "expiration_date", "cloud",
)

Problems = dict[str, list[str]]
"""Messages by where they are shown."""


def row_target(uid: int, column: str = "") -> str:
    return f"row.{uid}.{column}" if column else f"row.{uid}"


def volume_target(uid: int, column: str = "") -> str:
    return f"vol.{uid}.{column}" if column else f"vol.{uid}"


class InstanceRow(BaseModel):
    uid: int
    prefix: str
    type: str
    count: int
    tags: list[str]


class VolumeRow(BaseModel):
    uid: int
    tag: str
    name: str
    size: int
    existing: bool = False
    """Already on the cluster being modified: it can neither change nor go."""


class FormValues(BaseModel):
    cluster_name: str
    domain: str
    image: str
    nb_users: int
    rows: list[InstanceRow]
    volumes: list[VolumeRow]
    public_keys: str
    """As typed: one key per line."""
    guest_passwd: SecretStr
    hieradata: str
    expiration_date: date | None
    cloud: str

    @classmethod
    def from_spec_data(cls, data: Mapping[str, Any], *, existing_volumes: bool = False) -> "FormValues":
        """The form showing `data` (default_spec_data() or a stored spec's to_data());
        `existing_volumes`: its volumes are already on the cluster."""
        rows = [
            InstanceRow(uid=uid, prefix=prefix, type=group["type"], count=group["count"], tags=list(group["tags"]))
            for uid, (prefix, group) in enumerate(data["instances"].items())
        ]
        named = [(tag, name, volume["size"]) for tag, by_name in data["volumes"].items() for name, volume in by_name.items()]
        volumes = [
            VolumeRow(uid=uid, tag=tag, name=name, size=size, existing=existing_volumes)
            for uid, (tag, name, size) in enumerate(named)
        ]
        return cls(
            cluster_name=data["cluster_name"],
            domain=data["domain"],
            image=data["image"],
            nb_users=data["nb_users"],
            rows=rows,
            volumes=volumes,
            public_keys="\n".join(data["public_keys"]),
            guest_passwd=SecretStr(_secret_text(data.get("guest_passwd", ""))),
            hieradata=data["hieradata"],
            expiration_date=data["expiration_date"],
            cloud=data["cloud"],
        )

    def public_key_lines(self) -> list[str]:
        return [line.strip() for line in self.public_keys.splitlines() if line.strip()]

    def next_uid(self) -> int:
        return max((item.uid for item in [*self.rows, *self.volumes]), default=-1) + 1

    def to_spec_data(self) -> tuple[dict[str, Any], Problems]:
        """Spec data for parse_spec, and the rows whose prefix or volume name repeats an
        earlier row's (the spec would silently keep only one of them)."""
        problems: Problems = {}
        instances: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            if row.prefix in instances:
                add(problems, row_target(row.uid, "prefix"),
                    f"the prefix {row.prefix!r} is already used by another row; give this row its own prefix")
                continue
            instances[row.prefix] = {"type": row.type, "count": row.count, "tags": list(row.tags)}
        volumes: dict[str, dict[str, dict[str, int]]] = {}
        for volume in self.volumes:
            by_name = volumes.setdefault(volume.tag, {})
            if volume.name in by_name:
                add(problems, volume_target(volume.uid, "name"),
                    f"a volume {volume.name!r} is already listed for tag {volume.tag!r}; rename this one")
                continue
            by_name[volume.name] = {"size": volume.size}
        data = {
            "cluster_name": self.cluster_name,
            "domain": self.domain,
            "image": self.image,
            "nb_users": self.nb_users,
            "instances": instances,
            "volumes": volumes,
            "public_keys": self.public_key_lines(),
            "guest_passwd": self.guest_passwd.get_secret_value(),
            "hieradata": self.hieradata,
            "expiration_date": self.expiration_date,
            "cloud": self.cloud,
        }
        return data, problems

    def quota_request(self, flavor_names: Collection[str]) -> ClusterSpec:
        """A spec holding only the machines and volumes asked for so far, so the quota bars
        follow the form while other fields are still wrong; rows without a flavor of this
        cloud are left out. Not a valid spec: use it only for the quota arithmetic."""
        instances: dict[str, InstanceGroup] = {}
        for row in self.rows:
            if row.type in flavor_names and row.prefix not in instances:
                instances[row.prefix] = InstanceGroup.model_construct(type=row.type, count=max(row.count, 0), tags=row.tags)
        volumes: dict[str, dict[str, Volume]] = {}
        for volume in self.volumes:
            volumes.setdefault(volume.tag, {}).setdefault(volume.name, Volume.model_construct(size=max(volume.size, 0)))
        return ClusterSpec.model_construct(instances=instances, volumes=volumes)


def add(problems: Problems, target: str, message: str) -> None:
    messages = problems.setdefault(target, [])
    if message not in messages:
        messages.append(message)


def merge(*groups: Problems) -> Problems:
    merged: Problems = {}
    for group in groups:
        for target, messages in group.items():
            for message in messages:
                add(merged, target, message)
    return merged


def place(problems: Sequence[FieldProblem], values: FormValues) -> Problems:
    """Each of the spec's problems at the place of the form it concerns."""
    placed: Problems = {}
    for problem in problems:
        add(placed, _target(problem.field, values), problem.message)
    return placed


def _target(field: str, values: FormValues) -> str:
    top = field.split(".")[0].split("[")[0]
    if top in TOP_FIELDS:
        return top
    if top == INSTANCES:
        # The longest matching prefix wins: rows "node" and "node-gpu" both start "node".
        for row in sorted(values.rows, key=lambda r: len(r.prefix), reverse=True):
            rest = _below(field, f"{INSTANCES}.{row.prefix}")
            if rest is not None:
                # A problem of the row as a whole is about its prefix (invalid, or clashing hostnames).
                return row_target(row.uid, _column(rest, ("type", "count", "tags")) or "prefix")
        return INSTANCES
    if top == VOLUMES:
        for volume in sorted(values.volumes, key=lambda v: len(v.tag) + len(v.name), reverse=True):
            rest = _below(field, f"{VOLUMES}.{volume.tag}.{volume.name}")
            if rest is not None:
                return volume_target(volume.uid, _column(rest, ("size",)) or "name")
        for volume in values.volumes:
            if _below(field, f"{VOLUMES}.{volume.tag}") == "":
                return volume_target(volume.uid, "tag")
        return VOLUMES
    return GENERAL


def _below(field: str, path: str) -> str | None:
    """What follows `path` in `field` ("" for the path itself), None when `field` is elsewhere."""
    if field == path:
        return ""
    if field.startswith((path + ".", path + "[")):
        return field[len(path):].lstrip(".")
    return None


def _column(rest: str, columns: tuple[str, ...]) -> str:
    name = rest.split(".")[0].split("[")[0]
    return name if name in columns else ""


def _secret_text(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")
