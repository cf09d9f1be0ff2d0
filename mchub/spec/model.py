"""The cluster spec: what the create-cluster form submits, checked before anything is written.

The fields mirror the inputs of Magic Castle's openstack module (15.6.1) that MC Hub sets, and
the rules are Magic Castle's own plus those its Puppet environment needs to produce a working
cluster. Every refusal names the field path (`instances.node.count`) and says the fix.

Rules that depend on the outside world read pydantic's validation context:
  "stored": True   the spec of an existing cluster: a past expiration date is accepted;
  "flavors": names instance types must be among them;
  "images": names  the image must be among them.
`parse_spec` sets that context and turns pydantic's errors into a `SpecError`.

Every field is hostile until checked: names (cluster_name, domain, image, flavors, prefixes,
volume names, tags, cloud) match a grammar that leaves out `$`, `%` and `{`, so none can read
as a Terraform template; counts are integers in bounds (not `true`, `2.0` or `"2"`); text
typed on one line (guest password, SSH keys) holds no control characters; YAML is bounded in
size and depth.
"""

import os
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mchub.errors import MCHubError
from mchub.private_file import write_private
from mchub.settings import get_settings
from mchub.spec.petname import pet_name
from mchub.spec.plain_text import hidden_character
from mchub.spec.sshkey import check_public_key
from mchub.spec.sshkey import shorten as _short

# Bounds far above what a workshop or a project needs; they stop a typo (or worse) from
# expanding into millions of hostnames or accounts, or asking the cloud for petabytes.
MAX_USERS = 500
MAX_COUNT = 100
MAX_VOLUME_GB = 10240
MIN_PASSWORD = 8
MAX_PASSWORD = 128
MAX_HOSTNAME = 64
"""Of an instance (<prefix><index>)."""
MAX_CLUSTER_HOSTNAME = 253
"""Of the cluster (<cluster_name>.<domain>): the most a DNS name may have."""
MAX_DNS_LABEL = 63
MAX_NAME = 255
"""Of an image, a flavor or a cloud: OpenStack's own limit on names."""
MAX_PUBLIC_KEYS = 100
MAX_HIERADATA = 65536
MAX_SPEC_BYTES = 262144
"""Of a spec file: a spec with its keys and hieradata is a few kilobytes."""
MAX_YAML_DEPTH = 32
HIERADATA_BREAKS = "\t\n\r"
"""The only invisible characters hieradata may hold: YAML's tabs and line breaks."""

CLUSTER_NAME = re.compile(r"[a-z][0-9a-z-]{1,40}")
DOMAIN = re.compile(r"[a-z][0-9a-z-.]*")
PREFIX = re.compile(r"[a-z][0-9a-z-]*")
VOLUME_NAME = re.compile(r"[a-z][0-9a-z_-]*")
# Names as OpenStack clouds give them (Rocky-9, g1-8gb-c4-22gb, "Ubuntu 22.04 (Jammy)");
# without `$`, `%`, braces, quotes or backslashes, which mean something to Terraform or a shell.
CLOUD_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9 ._:+@()\[\]/-]*[A-Za-z0-9._:+@()\[\]/-])?")

# Tags of Magic Castle 15.6.1 that mean something on OpenStack (spot and efa are AWS/GCP
# only). Magic Castle accepts any tag, but here an unknown one is nearly always a typo.
TAGS: dict[str, str] = {
    "mgmt": "management server: FreeIPA, Slurm controller and database",
    "puppet": "Puppet server that configures every instance",
    "nfs": "NFS server: the volumes tagged nfs are attached to it",
    "login": "login node: SSH from the Internet, the cluster's own DNS name points to it",
    "public": "gets a public IP address",
    "proxy": "runs the web proxy and JupyterHub; the service names point to it",
    "node": "Slurm compute node",
    "pool": "with node: compute node that Slurm powers up and down on demand",
    "dtn": "data transfer node (Globus)",
    "ssl": "receives a copy of the domain's wildcard SSL certificate",
}



class FieldProblem(BaseModel):
    """One refused field: its dotted path (`instances.node.count`) and what to do about it."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str


class SpecError(MCHubError):
    """A spec that cannot be used; `problems` lists every refused field."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{problem.field}: {problem.message}" for problem in self.problems)

    def __reduce__(self) -> tuple[type["SpecError"], tuple[list[FieldProblem]]]:
        # Rebuilt from the problems, not from the message, when pickled between processes.
        return SpecError, (self.problems,)


Location = tuple[str | int, ...]


class _Problems(ValueError):
    """Problems found by one validator, each at a path below the field it validates.

    Cross-field rules use it so that the refusal names the exact row (`instances.login2.tags`)
    rather than the whole map.
    """

    def __init__(self, problems: Sequence[tuple[Location, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{_dotted(path)}: {message}" for path, message in self.problems))


def _context(info: ValidationInfo, key: str) -> Any:
    return (info.context or {}).get(key)


def _choices(names: Collection[str]) -> str:
    return ", ".join(sorted(names))


# --- field checks shared by the models ------------------------------------------------


def _known_tag(tag: str) -> str:
    if tag not in TAGS:
        raise ValueError(f"unknown tag {_short(tag)}; the known tags are: {', '.join(TAGS)}")
    return tag


Tag = Annotated[str, AfterValidator(_known_tag)]
PublicKey = Annotated[str, AfterValidator(check_public_key)]


class _SpecModel(BaseModel):
    # Inputs are hidden from pydantic's own messages: one of them is the guest password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    described_as: ClassVar[str]


class Volume(_SpecModel):
    """A block device attached to every instance carrying the tag it is listed under."""

    described_as: ClassVar[str] = "a volume"

    size: StrictInt = Field(description=f"Size in GB, 1 to {MAX_VOLUME_GB}.")

    @field_validator("size")
    @classmethod
    def _positive(cls, size: int) -> int:
        if size < 1:
            raise ValueError(f"must be at least 1 GB, got {size}")
        if size > MAX_VOLUME_GB:
            raise ValueError(
                f"must be at most {MAX_VOLUME_GB} GB (the largest volume MC Hub creates), got {size}; "
                "split the space over several volumes"
            )
        return size


class InstanceGroup(_SpecModel):
    """One row of `instances`: `count` machines named <prefix>1 .. <prefix><count>."""

    described_as: ClassVar[str] = "an instance row"

    type: str = Field(description="Flavor of the machines, e.g. p4-6gb.")
    count: StrictInt = Field(default=1, description=f"How many machines, 0 to {MAX_COUNT}.")
    tags: list[Tag] = Field(description="Roles of the machines: " + ", ".join(TAGS) + ".")

    @field_validator("type")
    @classmethod
    def _flavor(cls, flavor: str, info: ValidationInfo) -> str:
        if not flavor.strip():
            raise ValueError("give a flavor name, e.g. p2-3gb")
        _check_cloud_name(flavor, "a flavor")
        flavors = _context(info, "flavors")
        if flavors is not None and flavor not in flavors:
            raise ValueError(f"{flavor!r} is not a flavor of this cloud; choose one of: {_choices(flavors)}")
        return flavor

    @field_validator("count")
    @classmethod
    def _count(cls, count: int) -> int:
        if not 0 <= count <= MAX_COUNT:
            raise ValueError(f"must be between 0 and {MAX_COUNT}, got {count}")
        return count

    @field_validator("tags")
    @classmethod
    def _roles(cls, tags: list[str]) -> list[str]:
        if not tags:
            raise ValueError("give at least one tag, e.g. [node]")
        if "mgmt" in tags and "proxy" in tags:
            raise ValueError(
                "an instance cannot be both 'mgmt' and 'proxy' in Magic Castle; "
                "put 'proxy' on the login row instead"
            )
        return tags


class Host(BaseModel):
    """One machine of the cluster, as Magic Castle names it."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    tags: tuple[str, ...]


class ClusterSpec(_SpecModel):
    """A Magic Castle cluster as its owner asked for it."""

    described_as: ClassVar[str] = "a cluster spec"

    cluster_name: str = Field(description="With the domain, the cluster's hostname <cluster_name>.<domain>.")
    domain: str = Field(description="DNS domain the cluster's hostname is in.")
    image: str = Field(description="OS image every machine boots from, e.g. Rocky-9.")
    nb_users: StrictInt = Field(default=0, description=f"Guest accounts user01..userNN, 0 to {MAX_USERS}.")
    instances: dict[str, InstanceGroup] = Field(description="Machine rows by hostname prefix.")
    volumes: dict[str, dict[str, Volume]] = Field(
        default_factory=dict, description="Volumes by the tag of the machine they attach to, then by name."
    )
    public_keys: list[PublicKey] = Field(description="SSH public keys that may log in as the sudoer.")
    guest_passwd: SecretStr = Field(
        default=SecretStr(""),
        description=f"Password of the guest accounts: empty to generate one, else {MIN_PASSWORD} to "
        f"{MAX_PASSWORD} characters on one line.",
    )
    hieradata: str = Field(default="---", description="Extra Puppet hiera settings, a YAML mapping.")
    expiration_date: date | None = Field(
        default=None, description="Day after which the cluster is destroyed; none to keep it."
    )
    cloud: str = Field(
        default_factory=lambda: get_settings().cloud,
        description="Name in clouds.yaml of the cloud the cluster is built on.",
    )

    @property
    def hostname(self) -> str:
        return f"{self.cluster_name}.{self.domain}"

    def hosts(self) -> list[Host]:
        """Every machine, row by row in the spec's order: mgmt1, login1, node1, node2 …"""
        return [
            Host(name=f"{prefix}{index}", type=group.type, tags=tuple(group.tags))
            for prefix, group in self.instances.items()
            for index in range(1, group.count + 1)
        ]

    def to_data(self, *, include_secrets: bool) -> dict[str, Any]:
        """Plain data that `parse_spec` accepts back; without secrets it has no guest_passwd.

        Leave secrets out for anything that is logged or stored outside the cluster's
        folder (flow parameters, artifacts).
        """
        data = self.model_dump()
        if include_secrets:
            data["guest_passwd"] = self.guest_passwd.get_secret_value()
        else:
            del data["guest_passwd"]
        return data

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, name: str) -> str:
        if not CLUSTER_NAME.fullmatch(name):
            raise ValueError(
                f"{_short(name)} must start with a lowercase letter and contain only lowercase "
                "letters, digits and '-' (2 to 41 characters)"
            )
        return name

    @field_validator("domain")
    @classmethod
    def _domain(cls, domain: str, info: ValidationInfo) -> str:
        # The shortest cluster_name and its dot take 3 of the hostname's characters.
        longest = MAX_CLUSTER_HOSTNAME - 3
        if len(domain) > longest:
            raise ValueError(
                f"{_short(domain)} has {len(domain)} characters, at most {longest} are allowed (a "
                f"hostname has at most {MAX_CLUSTER_HOSTNAME}); choose a shorter domain"
            )
        if not DOMAIN.fullmatch(domain):
            raise ValueError(
                f"{_short(domain)} must start with a lowercase letter and contain only lowercase "
                "letters, digits, '-' and '.'"
            )
        labels = domain.split(".")
        if "" in labels:
            raise ValueError(f"{_short(domain)} has an empty part between dots; write it like sandbox.mchub.dev")
        if any(len(label) > MAX_DNS_LABEL for label in labels):
            raise ValueError(f"each part of {_short(domain)} between dots must have at most {MAX_DNS_LABEL} characters")
        hostname = f"{info.data.get('cluster_name', '')}.{domain}"
        if len(hostname) > MAX_CLUSTER_HOSTNAME:
            raise ValueError(
                f"the cluster's hostname {_short(hostname)} would have {len(hostname)} characters, at most "
                f"{MAX_CLUSTER_HOSTNAME} are allowed; choose a shorter domain or cluster_name"
            )
        return domain

    @field_validator("image")
    @classmethod
    def _image(cls, image: str, info: ValidationInfo) -> str:
        if not image.strip():
            raise ValueError("give the name of an OS image, e.g. Rocky-9")
        _check_cloud_name(image, "an image")
        images = _context(info, "images")
        if images is not None and image not in images:
            raise ValueError(f"{image!r} is not an image of this cloud; choose one of: {_choices(images)}")
        return image

    @field_validator("nb_users")
    @classmethod
    def _nb_users(cls, users: int) -> int:
        if not 0 <= users <= MAX_USERS:
            raise ValueError(f"must be between 0 and {MAX_USERS}, got {users}")
        return users

    @field_validator("instances")
    @classmethod
    def _instances(cls, instances: dict[str, InstanceGroup]) -> dict[str, InstanceGroup]:
        problems = _hostname_problems(instances)
        problems += _single_instance_problems(instances, "proxy", required=False)
        problems += _single_instance_problems(instances, "mgmt", required=True)
        problems += _login_row_problems(instances)
        if not any("puppet" in group.tags and group.count > 0 for group in instances.values()):
            problems.append(
                ((), "no instance is tagged 'puppet'; Magic Castle needs a Puppet server to configure "
                 "the cluster: add 'puppet' to the tags of the mgmt row")
            )
        if problems:
            raise _Problems(problems)
        return instances

    @field_validator("volumes")
    @classmethod
    def _volume_names(cls, volumes: dict[str, dict[str, Volume]]) -> dict[str, dict[str, Volume]]:
        problems: list[tuple[Location, str]] = [
            ((tag, name), f"the name {_short(name)} must start with a lowercase letter and contain only "
             "lowercase letters, digits, '-' and '_'")
            for tag, named in volumes.items()
            for name in named
            if not VOLUME_NAME.fullmatch(name)
        ]
        if problems:
            raise _Problems(problems)
        return volumes

    @field_validator("public_keys", mode="before")
    @classmethod
    def _few_keys(cls, keys: Any) -> Any:
        # Before each key is checked: a list of a million keys is refused at once.
        if isinstance(keys, list) and len(keys) > MAX_PUBLIC_KEYS:
            raise ValueError(f"holds {len(keys)} keys, at most {MAX_PUBLIC_KEYS} are allowed; keep the ones in use")
        return keys

    @field_validator("public_keys")
    @classmethod
    def _some_key(cls, keys: list[str]) -> list[str]:
        if not keys:
            raise ValueError(
                "give at least one SSH public key: the sudoer account is reached only with them "
                "(paste the contents of e.g. ~/.ssh/id_ed25519.pub)"
            )
        return keys

    @field_validator("guest_passwd")
    @classmethod
    def _guest_passwd(cls, password: SecretStr) -> SecretStr:
        # No message repeats the password, nor any part of it.
        text = password.get_secret_value()
        if 0 < len(text) < MIN_PASSWORD:
            raise ValueError(
                f"must be empty (a password is generated) or at least {MIN_PASSWORD} characters long; "
                "choose a longer one"
            )
        if len(text) > MAX_PASSWORD:
            raise ValueError(f"has {len(text)} characters, at most {MAX_PASSWORD} are allowed; choose a shorter one")
        hidden = hidden_character(text)
        if hidden:
            raise ValueError(
                f"holds an invisible or line-breaking character ({hidden}); people type a password "
                "on one line: choose one of visible characters and spaces only"
            )
        return password

    @field_validator("hieradata")
    @classmethod
    def _hieradata(cls, text: str) -> str:
        if len(text) > MAX_HIERADATA:
            raise ValueError(f"has {len(text)} characters, at most {MAX_HIERADATA} are allowed; keep it shorter")
        # Line breaks and tabs are YAML's own; NUL and the other control characters are not.
        hidden = hidden_character(text, allowed=HIERADATA_BREAKS)
        if hidden:
            raise ValueError(f"holds an invisible character ({hidden}); remove it")
        try:
            data = yaml.load(text, Loader=_BoundedLoader)
        except yaml.YAMLError as error:
            raise ValueError(f"not valid YAML: {_yaml_problem(error)}") from None
        if data is not None and not isinstance(data, dict):
            raise ValueError(
                f"must be a YAML mapping of hiera keys ('profile::base::admin_email: me@example.org'), "
                f"not a {_yaml_kind(data)}"
            )
        return text

    @field_validator("expiration_date")
    @classmethod
    def _expiration_date(cls, day: date | None, info: ValidationInfo) -> date | None:
        # A stored cluster's date may have passed since: the cull must still read its spec.
        today = date.today()
        if day is not None and day <= today and not _context(info, "stored"):
            raise ValueError(
                f"{day.isoformat()} is not in the future; choose a date after {today.isoformat()} "
                "or none for no expiration"
            )
        return day

    @field_validator("cloud")
    @classmethod
    def _cloud(cls, cloud: str) -> str:
        if not cloud.strip():
            raise ValueError("give the name of a cloud of clouds.yaml, e.g. sandbox")
        _check_cloud_name(cloud, "a cloud")
        return cloud

    @model_validator(mode="after")
    def _volumes_attach(self) -> "ClusterSpec":
        # Magic Castle silently skips volumes whose tag no instance carries; refusing them
        # keeps the quota count and the user's expectation true.
        tagged = {tag for group in self.instances.values() if group.count > 0 for tag in group.tags}
        problems: list[tuple[Location, str]] = [
            (("volumes", tag), f"no instance is tagged {_short(tag)}, so these volumes would not be "
             f"created; add {_short(tag)} to the tags of an instance row, or remove volumes.{tag}")
            for tag in self.volumes
            if tag not in tagged and self.volumes[tag]
        ]
        if problems:
            raise _Problems(problems)
        return self


def _check_cloud_name(name: str, what: str) -> None:
    """Refuse a name an OpenStack cloud would not give (or that Terraform would read as code)."""
    if len(name) > MAX_NAME or not CLOUD_NAME.fullmatch(name):
        raise ValueError(
            f"{_short(name)} is not the name of {what}: give it as the cloud lists it (`mchub resources`), "
            f"at most {MAX_NAME} letters, digits, spaces and . _ - : + @ ( ) [ ] /, starting with a letter or "
            "digit ('$', '%', braces and quotes are not part of any name)"
        )


# --- rules across instance rows -------------------------------------------------------


def _hostname_problems(instances: Mapping[str, InstanceGroup]) -> list[tuple[Location, str]]:
    """Hostnames <prefix><index> must be valid and unique across rows (node1 x 11 vs node)."""
    problems: list[tuple[Location, str]] = []
    made_by: dict[str, str] = {}
    for prefix, group in instances.items():
        if not PREFIX.fullmatch(prefix):
            problems.append(
                ((prefix,), f"the prefix {_short(prefix)} must start with a lowercase letter and "
                 "contain only lowercase letters, digits and '-'")
            )
            continue
        longest = f"{prefix}{max(group.count, 1)}"
        if len(longest) > MAX_HOSTNAME:
            problems.append(
                ((prefix,), f"hostname {longest} would have {len(longest)} characters, at most "
                 f"{MAX_HOSTNAME} are allowed; shorten the prefix")
            )
            continue
        for index in range(1, group.count + 1):
            name = f"{prefix}{index}"
            if name in made_by:
                problems.append(
                    ((prefix,), f"its hostname {name} is also made by row {made_by[name]!r}; "
                     "rename one of the two prefixes")
                )
                break
            made_by[name] = prefix
    return problems


def _single_instance_problems(
    instances: Mapping[str, InstanceGroup], tag: str, *, required: bool
) -> list[tuple[Location, str]]:
    """Magic Castle's one-instance roles: more than one `tag` instance is refused at the row
    (or its count) that adds the extra one."""
    problems: list[tuple[Location, str]] = []
    first = ""
    for prefix, group in instances.items():
        if tag not in group.tags or group.count == 0:
            continue
        if first:
            problems.append(
                ((prefix, "tags"), f"{tag!r} is already on {first}; only one instance of the "
                 f"cluster may be tagged {tag!r}: remove it here")
            )
        elif group.count > 1:
            problems.append(
                ((prefix, "count"), f"a row tagged {tag!r} must have count 1, got {group.count}; "
                 f"only one instance of the cluster may be tagged {tag!r}")
            )
        first = first or f"{prefix}1"
    if required and not first:
        problems.append(
            ((), f"no instance is tagged {tag!r} ({TAGS[tag]}); give one row with count 1 the tag {tag!r}")
        )
    return problems


def _login_row_problems(instances: Mapping[str, InstanceGroup]) -> list[tuple[Location, str]]:
    rows = [prefix for prefix, group in instances.items() if "login" in group.tags]
    return [
        ((prefix, "tags"), f"'login' is already on row {rows[0]!r}; Magic Castle allows one row "
         "tagged 'login' (raise its count for more login nodes): remove it here")
        for prefix in rows[1:]
    ]


# --- errors ---------------------------------------------------------------------------

# Fields whose input is never shown back, even in pydantic's own type errors.
_SECRET_FIELDS = {"guest_passwd"}


def _dotted(path: Location) -> str:
    """`instances.node.tags[0]`; "spec" for the spec as a whole."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "spec"


def _owner_of(path: Location) -> type[_SpecModel]:
    """The model a field at `path` belongs to."""
    if path[0] == "instances" and len(path) == 3:
        return InstanceGroup
    if path[0] == "volumes" and len(path) == 4:
        return Volume
    return ClusterSpec


# Pydantic's type errors that users meet most, in plain words; others keep pydantic's.
_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text (quote it in YAML)",
    "dict_type": "must be a mapping (name: value)",
    "model_type": "must be a mapping (name: value)",
    "list_type": "must be a list",
    "date_type": "must be a date like 2027-06-30",
    "date_parsing": "must be a date like 2027-06-30",
    "date_from_datetime_parsing": "must be a date like 2027-06-30",
    "date_from_datetime_inexact": "must be a date like 2027-06-30, without a time",
}


def _readable(path: Location, detail: Mapping[str, Any]) -> str:
    """Pydantic's own errors (types, missing and unknown fields) as a person would say them."""
    kind = detail["type"]
    if kind == "missing":
        return "missing; add this field"
    if kind == "extra_forbidden":
        owner = _owner_of(path)
        return f"unknown field; {owner.described_as} has only: {', '.join(owner.model_fields)}"
    message = _TYPE_MESSAGES.get(kind, detail["msg"])
    if path and path[0] in _SECRET_FIELDS:
        return message
    return f"{message}, got {_short(detail['input'])}"


def _problems_of(error: ValidationError) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for detail in error.errors(include_url=False):
        path: Location = tuple(detail["loc"])
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            problems += [FieldProblem(field=_dotted(path + below), message=text) for below, text in cause.problems]
        elif isinstance(cause, ValueError):
            problems.append(FieldProblem(field=_dotted(path), message=str(cause)))
        else:
            problems.append(FieldProblem(field=_dotted(path), message=_readable(path, detail)))
    return problems


def parse_spec(
    data: Mapping[str, Any],
    *,
    stored: bool = False,
    flavors: Collection[str] | None = None,
    images: Collection[str] | None = None,
) -> ClusterSpec:
    """The spec in `data`, or a SpecError listing every problem.

    `stored`: the spec of an existing cluster (its expiration date may have passed).
    `flavors`, `images`: names available on the cloud; instance types and the image must be
    among them. None skips that rule.
    """
    context: dict[str, Any] = {"stored": stored}
    if flavors is not None:
        context["flavors"] = frozenset(flavors)
    if images is not None:
        context["images"] = frozenset(images)
    try:
        return ClusterSpec.model_validate(dict(data) if isinstance(data, Mapping) else data, context=context)
    except ValidationError as error:
        # `from None`: the ValidationError would carry the inputs, the password among them.
        raise SpecError(_problems_of(error)) from None


def default_spec_data(*, domain: str | None = None, name: str | None = None) -> dict[str, Any]:
    """What the create-cluster form starts from: the original MC Hub's defaults.

    It is not a valid spec yet: public_keys is empty until the user gives one.
    """
    return {
        "cluster_name": name or pet_name(),
        "domain": domain or get_settings().domain,
        "image": "Rocky-9",
        "nb_users": 10,
        "instances": {
            "mgmt": {"type": "p4-6gb", "count": 1, "tags": ["mgmt", "puppet", "nfs"]},
            "login": {"type": "p2-3gb", "count": 1, "tags": ["login", "public", "proxy"]},
            "node": {"type": "p2-3gb", "count": 1, "tags": ["node"]},
        },
        "volumes": {"nfs": {"home": {"size": 100}, "project": {"size": 100}, "scratch": {"size": 100}}},
        "public_keys": [],
        "guest_passwd": "",
        "hieradata": "---",
        "expiration_date": None,
        "cloud": get_settings().cloud,
    }


# --- YAML -----------------------------------------------------------------------------


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return str(error)


def _yaml_kind(data: object) -> str:
    return {list: "list", str: "single text value"}.get(type(data), type(data).__name__)


class _BoundedLoader(yaml.SafeLoader):
    """Safe YAML with at most MAX_YAML_DEPTH nested collections and no aliases.

    PyYAML composes nested collections by recursion (10000 `[` end in RecursionError), and an
    alias repeats a whole node: nine levels of ten aliases make a billion values for whatever
    reads the result (pydantic, Terraform's yamldecode, Puppet).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"the alias *{event.anchor} is not accepted; write the value out instead", event.start_mark
            )
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_YAML_DEPTH} levels deep; flatten it", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _SpecLoader(_BoundedLoader):
    """Also refuses a key given twice (two `node:` rows), which plain YAML would silently merge."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _SpecDumper(yaml.SafeDumper):
    """Writes multi-line text (hieradata) as a literal block, as a person would."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_SpecDumper.add_representer(str, _represent_text)
# Keeps each SSH key on one line, as in a .pub file.
_UNWRAPPED = 1 << 16


def spec_to_yaml(spec: ClusterSpec, *, include_secrets: bool) -> str:
    """The spec as YAML that `load_spec` reads back; without secrets it has no guest_passwd."""
    return yaml.dump(
        spec.to_data(include_secrets=include_secrets),
        Dumper=_SpecDumper,
        sort_keys=False,
        allow_unicode=True,
        width=_UNWRAPPED,
    )


def load_spec(path: str | os.PathLike[str], *, stored: bool = False) -> ClusterSpec:
    """The spec in the YAML file at `path`; a SpecError if the file or the spec is wrong."""
    where = str(path)
    try:
        with open(path, "rb") as file:
            # One byte more than allowed tells a file at the limit from a longer one.
            content = file.read(MAX_SPEC_BYTES + 1)
        if len(content) > MAX_SPEC_BYTES:
            message = f"is larger than {MAX_SPEC_BYTES // 1024} KiB, far more than a spec needs; give the spec file itself"
            raise SpecError([FieldProblem(field=where, message=message)])
        text = content.decode("utf-8")
    except FileNotFoundError:
        raise SpecError([FieldProblem(field=where, message="no such file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([FieldProblem(field=where, message=f"cannot be read: {error}")]) from None
    try:
        data = yaml.load(text, Loader=_SpecLoader)
    except yaml.YAMLError as error:
        raise SpecError([FieldProblem(field=where, message=f"not valid YAML: {_yaml_problem(error)}")]) from None
    if not isinstance(data, dict):
        found = "nothing" if data is None else f"a {_yaml_kind(data)}"
        message = f"must hold a mapping of spec fields (cluster_name: ...), found {found}"
        raise SpecError([FieldProblem(field=where, message=message)])
    return parse_spec(data, stored=stored)


def dump_spec(spec: ClusterSpec, path: str | os.PathLike[str]) -> None:
    """Write `spec` with its guest password to `path`, readable by its owner only (0600).

    A crash never leaves half a spec (mchub.private_file).
    """
    write_private(Path(path), spec_to_yaml(spec, include_secrets=True))
