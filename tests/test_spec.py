"""The cluster spec: every rule refuses with the field and the fix; valid specs load and round-trip."""

import base64
import copy
import os
import pickle
import random
import stat
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from mchub.spec.model import (
    CLUSTER_NAME,
    ClusterSpec,
    SpecError,
    default_spec_data,
    dump_spec,
    load_spec,
    parse_spec,
    spec_to_yaml,
)
from mchub.spec.petname import ADJECTIVES, ANIMALS, pet_name
from tests.spec_changes import Change, dropping, setting

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster.yaml"
PASSWORD = "Tr0mbone-Parade"


def openssh_public(key: Any, comment: str = "") -> str:
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".strip()


def wire(*fields: bytes) -> str:
    """A public key blob in SSH wire format, base64 as in a .pub file."""
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


@pytest.fixture(scope="module")
def ed25519_key() -> str:
    return openssh_public(ed25519.Ed25519PrivateKey.generate(), "alice@laptop")


@pytest.fixture(scope="module")
def rsa_1024() -> str:
    return openssh_public(rsa.generate_private_key(public_exponent=65537, key_size=1024))


def valid_data(key: str) -> dict[str, Any]:
    return {**default_spec_data(name="test-castle", domain="sandbox.mchub.dev"), "public_keys": [key]}


def problems_of(data: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, **kwargs)
    return [(p.field, p.message) for p in caught.value.problems]


def with_key(line: str) -> Change:
    return setting("public_keys", [line])


def both(*changes: Change) -> Change:
    def apply(data: dict[str, Any]) -> None:
        for change in changes:
            change(data)

    return apply


ROW = {"type": "p2-3gb", "count": 1}

# (what is changed in a valid spec, field refused, part of its message)
REFUSALS = [
    (setting("cluster_name", "Bad_Name"), "cluster_name", "must start with a lowercase letter"),
    (setting("cluster_name", "a"), "cluster_name", "2 to 41 characters"),
    (setting("cluster_name", "a" * 42), "cluster_name", "2 to 41 characters"),
    (setting("cluster_name", "9lives"), "cluster_name", "must start with a lowercase letter"),
    (setting("domain", "Sandbox.dev"), "domain", "lowercase letters, digits, '-' and '.'"),
    (setting("domain", "sandbox..dev"), "domain", "empty part between dots"),
    (setting("domain", "a" * 64 + ".dev"), "domain", "at most 63 characters"),
    (setting("image", ""), "image", "name of an OS image"),
    (setting("nb_users", -1), "nb_users", "between 0 and 500"),
    (setting("nb_users", 501), "nb_users", "between 0 and 500, got 501"),
    (setting("nb_users", "ten"), "nb_users", "must be a whole number, got 'ten'"),
    (setting("instances.node.count", -1), "instances.node.count", "between 0 and 100, got -1"),
    (setting("instances.node.count", 101), "instances.node.count", "between 0 and 100, got 101"),
    (setting("instances.node.count", "abc"), "instances.node.count", "must be a whole number, got 'abc'"),
    (setting("instances.node.type", " "), "instances.node.type", "give a flavor name"),
    (dropping("instances.node.type"), "instances.node.type", "missing; add this field"),
    (setting("instances.node.tags", []), "instances.node.tags", "at least one tag"),
    (setting("instances.node.tags", ["nod"]), "instances.node.tags[0]", "unknown tag 'nod'; the known tags are: mgmt"),
    (
        setting("instances.node.flavor", "p2-3gb"),
        "instances.node.flavor",
        "unknown field; an instance row has only: type, count, tags",
    ),
    (setting("instances.node", "p2-3gb"), "instances.node", "must be a mapping"),
    (setting("instances.Node", {**ROW, "tags": ["node"]}), "instances.Node", "the prefix 'Node' must start with a"),
    (setting(f"instances.{'n' * 63}", {**ROW, "count": 10, "tags": ["node"]}), f"instances.{'n' * 63}", "have 65 char"),
    (setting(f"instances.{'n' * 62}", {**ROW, "count": 100, "tags": ["node"]}), f"instances.{'n' * 62}", "at most 64"),
    (
        both(setting("instances.node.count", 11), setting("instances.node1", {**ROW, "tags": ["node"]})),
        "instances.node1",
        "hostname node11 is also made by row 'node'",
    ),
    (setting("instances.login.count", 2), "instances.login.count", "row tagged 'proxy' must have count 1, got 2"),
    (setting("instances.node.tags", ["node", "proxy"]), "instances.node.tags", "'proxy' is already on login1"),
    (setting("instances.login2", {**ROW, "tags": ["login"]}), "instances.login2.tags", "one row tagged 'login'"),
    (setting("instances.mgmt.tags", ["mgmt", "nfs"]), "instances", "no instance is tagged 'puppet'"),
    (setting("instances.mgmt.tags", ["puppet", "nfs"]), "instances", "no instance is tagged 'mgmt'"),
    (setting("instances.mgmt2", {**ROW, "tags": ["mgmt"]}), "instances.mgmt2.tags", "'mgmt' is already on mgmt1"),
    (setting("instances.mgmt.tags", ["mgmt", "puppet", "proxy"]), "instances.mgmt.tags", "cannot be both 'mgmt' and"),
    (setting("volumes.nfs.home.size", 0), "volumes.nfs.home.size", "at least 1 GB"),
    (setting("volumes.nfs.home.size", 10241), "volumes.nfs.home.size", "at most 10240 GB"),
    (setting("volumes.nfs.Home", {"size": 10}), "volumes.nfs.Home", "must start with a lowercase letter"),
    (setting("volumes.nfs.home.type", "ssd"), "volumes.nfs.home.type", "unknown field; a volume has only: size"),
    (setting("volumes.mds", {"oss1": {"size": 10}}), "volumes.mds", "no instance is tagged 'mds'"),
    (setting("public_keys", []), "public_keys", "at least one SSH public key"),
    (with_key("hello world"), "public_keys[0]", "known key type"),
    (with_key("ssh-ed25519"), "public_keys[0]", "no key data"),
    (with_key("ssh-ed25519 not*base64"), "public_keys[0]", "not valid base64"),
    (with_key("ssh-dss " + wire(b"ssh-dss", b"p", b"q", b"g", b"y")), "public_keys[0]", "DSA keys"),
    (with_key("ssh-rsa " + wire(b"ssh-ed25519", bytes(32))), "public_keys[0]", "holds a 'ssh-ed25519'"),
    (with_key("ssh-ed25519 " + wire(b"ssh-ed25519", bytes(31))), "public_keys[0]", "cut short"),
    (with_key("ssh-ed25519 " + wire(b"ssh-ed25519", bytes(32), b"more")), "public_keys[0]", "damaged"),
    (with_key("ecdsa-sha2-nistp256 " + wire(b"ecdsa-sha2-nistp256", b"nistp384", bytes(97))), "public_keys[0]", "dam"),
    (with_key("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----"), "public_keys[0]", "-i -f"),
    (setting("guest_passwd", "short"), "guest_passwd", "at least 8 characters"),
    (setting("guest_passwd", 12345678), "guest_passwd", "must be text"),
    (setting("hieradata", "a: b: c"), "hieradata", "not valid YAML: line 1, column 5"),
    (setting("hieradata", "---\nfine: 1\nbroken: [\n"), "hieradata", "not valid YAML: line 4"),
    (setting("hieradata", "- a\n- b\n"), "hieradata", "must be a YAML mapping of hiera keys"),
    (setting("expiration_date", date.today() - timedelta(days=3)), "expiration_date", "is not in the future"),
    (setting("expiration_date", date.today()), "expiration_date", "is not in the future"),
    (setting("expiration_date", "next week"), "expiration_date", "must be a date like 2027-06-30"),
    (setting("cloud", ""), "cloud", "name of a cloud of clouds.yaml"),
    (setting("hostname", "x.sandbox.mchub.dev"), "hostname", "unknown field; a cluster spec has only: cluster_name"),
    (dropping("cluster_name"), "cluster_name", "missing; add this field"),
    # No name may hold a Terraform template (`${...}`, `%{...}`).
    (setting("cluster_name", "a${x}"), "cluster_name", "must start with a lowercase letter"),
    (setting("domain", "a${x}.dev"), "domain", "lowercase letters, digits, '-' and '.'"),
    (setting("image", "Rocky-9${x}"), "image", "is not the name of an image"),
    (setting("instances.node.type", "%{x}"), "instances.node.type", "is not the name of a flavor"),
    (setting("instances.n${x}", {**ROW, "tags": ["node"]}), "instances.n${x}", "the prefix 'n${x}' must start"),
    (setting("instances.node.tags", ["%{x}"]), "instances.node.tags[0]", "unknown tag '%{x}'"),
    (setting("volumes.nfs.h${x}", {"size": 10}), "volumes.nfs.h${x}", "must start with a lowercase letter"),
    (setting("cloud", "sandbox%{x}"), "cloud", "is not the name of a cloud"),
]


@pytest.mark.parametrize(
    ("change", "field", "message"), REFUSALS, ids=[f"{n}-{field[:30]}" for n, (_, field, _) in enumerate(REFUSALS)]
)
def test_each_rule_refuses_with_the_field_and_the_fix(
    ed25519_key: str, change: Change, field: str, message: str
) -> None:
    data = copy.deepcopy(valid_data(ed25519_key))
    change(data)
    problems = problems_of(data)
    assert [f for f, _ in problems] == [field], problems
    assert message in problems[0][1]


def test_every_problem_is_reported_at_once(ed25519_key: str) -> None:
    data = valid_data(ed25519_key)
    data.update(cluster_name="Bad", nb_users=-1, guest_passwd="short")
    data["instances"]["login"]["count"] = 2
    fields = [field for field, _ in problems_of(data)]
    assert fields == ["cluster_name", "nb_users", "instances.login.count", "guest_passwd"]


def test_spec_error_lists_one_problem_per_line(ed25519_key: str) -> None:
    data = {**valid_data(ed25519_key), "cluster_name": "Bad_Name", "nb_users": "abc"}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("cluster_name: 'Bad_Name' must start with a lowercase letter")
    assert lines[1] == "nb_users: must be a whole number, got 'abc'"
    assert "pydantic" not in str(caught.value)


def test_a_non_mapping_is_refused_as_the_whole_spec() -> None:
    assert problems_of(["not", "a", "spec"]) == [("spec", "must be a mapping (name: value), got ['not', 'a', 'spec']")]


def test_spec_error_survives_pickling(ed25519_key: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({**valid_data(ed25519_key), "nb_users": -5})
    copied = pickle.loads(pickle.dumps(caught.value))
    assert copied.problems == caught.value.problems
    assert str(copied) == str(caught.value)


# --- SSH keys --------------------------------------------------------------------------

GENERATORS = {
    "ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


@pytest.mark.parametrize("kind", GENERATORS)
@pytest.mark.parametrize("comment", ["", "bob@workstation", "two word comment"])
def test_real_public_keys_of_each_type_are_accepted(kind: str, comment: str) -> None:
    key = openssh_public(GENERATORS[kind](), comment)
    spec = parse_spec(valid_data(f"  {key}\n"))
    assert spec.public_keys == [key]


@pytest.mark.parametrize(
    "key",
    [
        "sk-ssh-ed25519@openssh.com " + wire(b"sk-ssh-ed25519@openssh.com", bytes(32), b"ssh:"),
        "sk-ecdsa-sha2-nistp256@openssh.com "
        + wire(b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + bytes(64), b"ssh:")
        + " yubikey",
    ],
    ids=["sk-ed25519", "sk-ecdsa"],
)
def test_security_key_public_keys_are_accepted(key: str) -> None:
    assert parse_spec(valid_data(key)).public_keys == [key]


def test_rsa_key_under_2048_bits_is_refused(rsa_1024: str) -> None:
    [(field, message)] = problems_of(valid_data(rsa_1024))
    assert field == "public_keys[0]"
    assert "1024 bits, at least 2048" in message and "ssh-keygen -t ed25519" in message


@pytest.mark.parametrize(
    "encoding",
    [serialization.PrivateFormat.OpenSSH, serialization.PrivateFormat.PKCS8],
    ids=["openssh", "pkcs8"],
)
def test_private_key_is_refused_without_being_echoed(encoding: serialization.PrivateFormat) -> None:
    private = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, encoding, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(valid_data(private))
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("public_keys[0]", "this is a PRIVATE key; paste the .pub file instead (e.g. ~/.ssh/id_ed25519.pub)")
    ]
    secret_line = private.splitlines()[1]
    assert secret_line not in str(caught.value)
    with pytest.raises(ValidationError) as raw:
        ClusterSpec.model_validate(valid_data(private))
    assert secret_line not in str(raw.value)


# --- context: stored specs, the cloud's flavors and images --------------------------------


def test_stored_spec_keeps_a_passed_expiration_date(ed25519_key: str) -> None:
    past = date.today() - timedelta(days=30)
    data = {**valid_data(ed25519_key), "expiration_date": past}
    assert parse_spec(data, stored=True).expiration_date == past
    assert ClusterSpec.model_validate(data, context={"stored": True}).expiration_date == past
    with pytest.raises(ValidationError, match="is not in the future"):
        ClusterSpec.model_validate(data)


def test_stored_spec_still_gets_every_other_rule(ed25519_key: str) -> None:
    data = {**valid_data(ed25519_key), "expiration_date": date(2020, 1, 1), "nb_users": -1}
    assert [f for f, _ in problems_of(data, stored=True)] == ["nb_users"]


def test_tomorrow_is_a_valid_expiration_date(ed25519_key: str) -> None:
    tomorrow = date.today() + timedelta(days=1)  # when the test runs: a run may pass midnight
    assert parse_spec({**valid_data(ed25519_key), "expiration_date": tomorrow.isoformat()}).expiration_date == tomorrow


def test_instance_types_must_be_flavors_of_the_cloud_when_known(ed25519_key: str) -> None:
    data = valid_data(ed25519_key)
    data["instances"]["node"]["type"] = "x1"
    flavors = ["p2-3gb", "p4-6gb", "c8-30gb"]
    assert problems_of(data, flavors=flavors) == [
        ("instances.node.type", "'x1' is not a flavor of this cloud; choose one of: c8-30gb, p2-3gb, p4-6gb")
    ]
    assert parse_spec(data).instances["node"].type == "x1"
    data["instances"]["node"]["type"] = "c8-30gb"
    assert parse_spec(data, flavors=flavors).instances["node"].type == "c8-30gb"


def test_image_must_be_an_image_of_the_cloud_when_known(ed25519_key: str) -> None:
    data = {**valid_data(ed25519_key), "image": "CentOS-7"}
    images = ["Rocky-9", "AlmaLinux-9", "Rocky-8"]
    assert problems_of(data, images=images) == [
        ("image", "'CentOS-7' is not an image of this cloud; choose one of: AlmaLinux-9, Rocky-8, Rocky-9")
    ]
    assert parse_spec(data).image == "CentOS-7"
    assert parse_spec({**data, "image": "AlmaLinux-9"}, images=images).image == "AlmaLinux-9"


# --- secrets ---------------------------------------------------------------------------------


def test_password_never_appears_in_repr_str_or_public_forms(ed25519_key: str) -> None:
    spec = parse_spec({**valid_data(ed25519_key), "guest_passwd": PASSWORD})
    assert spec.guest_passwd.get_secret_value() == PASSWORD
    for text in (repr(spec), str(spec), spec.model_dump_json(), spec_to_yaml(spec, include_secrets=False)):
        assert PASSWORD not in text
    assert "guest_passwd" not in spec.to_data(include_secrets=False)
    assert spec.to_data(include_secrets=True)["guest_passwd"] == PASSWORD


@pytest.mark.parametrize("password", ["Sh0rt!", 1234567890])
def test_password_never_appears_in_errors(ed25519_key: str, password: object) -> None:
    data = {**valid_data(ed25519_key), "guest_passwd": password, "nb_users": -1}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert "guest_passwd" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(caught.value.problems)):
        assert str(password) not in text
    with pytest.raises(ValidationError) as raw:
        ClusterSpec.model_validate(data)
    assert str(password) not in str(raw.value)


# --- YAML files ------------------------------------------------------------------------


def test_yaml_round_trip_keeps_everything_and_the_file_is_0600(ed25519_key: str, tmp_path: Path) -> None:
    data = valid_data(ed25519_key)
    data.update(
        guest_passwd=PASSWORD,
        hieradata="---\nprofile::base::admin_email: me@example.org\njupyterhub::enable_otp_auth: false\n",
        expiration_date=date.today() + timedelta(days=1),
        cloud="arbutus",
    )
    data["instances"]["gpu"] = {"type": "g1-8gb-c4-22gb", "count": 0, "tags": ["node", "pool"]}
    spec = parse_spec(data)
    path = tmp_path / "spec.yaml"
    path.write_text("old content")
    path.chmod(0o644)

    dump_spec(spec, path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD in path.read_text()
    loaded = load_spec(path)
    assert loaded == spec
    assert loaded.guest_passwd.get_secret_value() == PASSWORD
    assert loaded.hieradata == data["hieradata"]
    assert list(loaded.instances) == ["mgmt", "login", "node", "gpu"]
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


def test_example_spec_loads_and_fits_the_sandbox() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.hostname == "demo-castle.sandbox.mchub.dev"
    assert [host.name for host in spec.hosts()] == ["mgmt1", "login1", "node1", "node2"]
    assert spec.expiration_date is not None and spec.expiration_date.year >= 2027
    sandbox_flavors = ["p1-1.5gb", "p2-3gb", "p4-6gb", "p8-12gb", "c8-30gb", "c16-60gb", "g1-8gb-c4-22gb"]
    sandbox_images = ["Rocky-9", "AlmaLinux-9", "Rocky-8"]
    parse_spec(spec.to_data(include_secrets=True), flavors=sandbox_flavors, images=sandbox_images)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cluster_name: [unclosed\n", "not valid YAML: line 2"),
        ("- cluster_name: x\n", "must hold a mapping of spec fields (cluster_name: ...), found a list"),
        ("", "found nothing"),
        ("cluster_name: a\ninstances:\n  node: {}\n  node: {}\n", "line 4, column 3: 'node' is given twice"),
    ],
    ids=["bad-yaml", "list", "empty", "duplicate-key"],
)
def test_unreadable_spec_files_are_refused_with_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [problem] = caught.value.problems
    assert problem.field == str(path)
    assert message in problem.message


def test_missing_spec_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_invalid_spec_in_a_file_names_the_fields(ed25519_key: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(EXAMPLE.read_text().replace("count: 2", "count: -2"))
    with pytest.raises(SpecError, match=r"^instances\.node\.count: must be between 0 and 100, got -2$"):
        load_spec(path)


def test_load_spec_stored_accepts_a_passed_date(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(EXAMPLE.read_text().replace("2027-06-30", "2021-01-31"))
    with pytest.raises(SpecError, match="expiration_date: 2021-01-31 is not in the future"):
        load_spec(path)
    assert load_spec(path, stored=True).expiration_date == date(2021, 1, 31)


# --- defaults, names, helpers --------------------------------------------------------------


def default_spec(public_keys: Sequence[str], *, domain: str | None = None, name: str | None = None) -> ClusterSpec:
    """The create form's starting cluster, valid once it has `public_keys`."""
    return parse_spec({**default_spec_data(domain=domain, name=name), "public_keys": list(public_keys)})


def test_default_spec_is_the_original_hubs_cluster(ed25519_key: str) -> None:
    spec = default_spec([ed25519_key], domain="example.org", name="my-castle")
    assert spec.hostname == "my-castle.example.org"
    assert (spec.image, spec.nb_users, spec.hieradata, spec.expiration_date) == ("Rocky-9", 10, "---", None)
    assert {p: (g.type, g.count, g.tags) for p, g in spec.instances.items()} == {
        "mgmt": ("p4-6gb", 1, ["mgmt", "puppet", "nfs"]),
        "login": ("p2-3gb", 1, ["login", "public", "proxy"]),
        "node": ("p2-3gb", 1, ["node"]),
    }
    assert {name: v.size for name, v in spec.volumes["nfs"].items()} == {"home": 100, "project": 100, "scratch": 100}
    assert spec.guest_passwd.get_secret_value() == ""
    assert [host.name for host in spec.hosts() if "public" in host.tags] == ["login1"]


def test_default_spec_gets_a_pet_name_and_the_configured_domain(ed25519_key: str) -> None:
    spec = default_spec([ed25519_key])
    adjective, animal = spec.cluster_name.split("-")
    assert adjective in ADJECTIVES and animal in ANIMALS
    assert spec.domain == "sandbox.mchub.dev"
    assert spec.cloud == "sandbox"


def test_default_form_data_needs_a_key_before_it_is_valid() -> None:
    assert problems_of(default_spec_data())[0][0] == "public_keys"


def test_every_pet_name_is_a_valid_cluster_name() -> None:
    for adjective in ADJECTIVES:
        for animal in ANIMALS:
            assert CLUSTER_NAME.fullmatch(f"{adjective}-{animal}")
    assert pet_name(random.Random(7)) == pet_name(random.Random(7))


def test_hostnames_of_64_characters_are_accepted(ed25519_key: str) -> None:
    data = valid_data(ed25519_key)
    data["instances"]["n" * 62] = {**ROW, "count": 10, "tags": ["node"]}
    assert parse_spec(data).hosts()[-1].name == "n" * 62 + "10"


def test_hosts_follow_the_rows_in_order_with_their_flavor(ed25519_key: str) -> None:
    data = valid_data(ed25519_key)
    data["instances"]["node"]["count"] = 3
    data["instances"]["gpu"] = {"type": "g1-8gb-c4-22gb", "count": 0, "tags": ["node"]}
    data["instances"]["dtn"] = {"type": "p2-3gb", "count": 1, "tags": ["dtn", "public"]}
    spec = parse_spec(data)
    assert [(h.name, h.type) for h in spec.hosts()] == [
        ("mgmt1", "p4-6gb"),
        ("login1", "p2-3gb"),
        ("node1", "p2-3gb"),
        ("node2", "p2-3gb"),
        ("node3", "p2-3gb"),
        ("dtn1", "p2-3gb"),
    ]
    assert [host.name for host in spec.hosts()] == ["mgmt1", "login1", "node1", "node2", "node3", "dtn1"]
    assert [host.name for host in spec.hosts() if "public" in host.tags] == ["login1", "dtn1"]
