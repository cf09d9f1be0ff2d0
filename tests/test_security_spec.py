"""Hostile cluster specs (issue 13): nobody reads a file or runs a template through a spec field.

Every string of a .tf.json file is a Terraform template, so spec values used to reach Terraform
as code: a guest password of `${file("...")}` showed the file in the success dialog. Values
now go to terraform.tfvars.json, which Terraform reads literally; the attacks below go
through a real plan and apply on the sandbox. The rest are hostile inputs that were accepted
(or crashed the reader) on commit 9ab0153 and are now refused with the field named.
"""

import copy
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mchub.cluster import lifecycle
from mchub.cluster.state import read_cluster_state
from mchub.cluster.workspace import WorkspaceError
from mchub.settings import get_settings
from mchub.spec.model import SpecError, default_spec_data, dump_spec, load_spec
from sandbox.launcher import SandboxCloud
from tests import test_lifecycle
from tests.reliability_helpers import Answer, mchub
from tests.spec_changes import setting
from tests.test_lifecycle import Hub

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"
PASSWORD = "a-good-guest-password"
DIRECTIVE = "%{ if true }x%{ endif }"
SECRET = "contents-of-a-file-no-spec-may-read"

# test_lifecycle's hub: MC Hub's settings pointed at the session's sandbox.
hub = test_lifecycle.hub


def good_data(name: str = "hostile") -> dict[str, Any]:
    return {
        **default_spec_data(name=name, domain="sandbox.mchub.dev"),
        "public_keys": [PUBLIC_KEY],
        "guest_passwd": PASSWORD,
    }


@dataclass(frozen=True)
class Hostile:
    """One hostile value in an otherwise good spec, and the field its refusal must name."""

    id: str
    field: str
    says: str
    change: Callable[[dict[str, Any]], None]


def key_with_comment(comment: str) -> Callable[[dict[str, Any]], None]:
    return setting("public_keys", [f"{PUBLIC_KEY.rsplit(' ', 1)[0]} {comment}"])


TEMPLATE = '${file("/etc/passwd")}'
# Ten labels of 63 characters: valid label by label, 639 characters in all.
LONG_DOMAIN = ".".join(["d" * 63] * 10)
# Nine levels of ten aliases: a billion strings for whoever expands them.
ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)

HOSTILE = [
    # Names reach Terraform and the cloud: a template there is code.
    Hostile("image-template", "image", "is not the name of an image", setting("image", TEMPLATE)),
    Hostile("image-directive", "image", "'$', '%', braces", setting("image", "%{ if true }Rocky-9%{ endif }")),
    Hostile("flavor-template", "instances.node.type", "is not the name of a flavor",
            setting("instances.node.type", "p2-3gb${path.cwd}")),
    Hostile("cloud-template", "cloud", "is not the name of a cloud", setting("cloud", "sandbox${env}")),
    Hostile("image-newline", "image", "is not the name of an image", setting("image", "Rocky-9\nmalicious")),
    # Hostnames longer than DNS (and the file system) allows.
    Hostile("domain-639-characters", "domain", "at most 250 are allowed", setting("domain", LONG_DOMAIN)),
    Hostile("hostname-254-characters", "domain", "would have 254 characters, at most 253",
            lambda data: data.update(cluster_name="c" * 41, domain=".".join(["d" * 63, "d" * 63, "d" * 63, "d" * 20]))),
    # Counts are integers, not what YAML or JSON turn into one.
    Hostile("nb_users-true", "nb_users", "must be a whole number, got True", setting("nb_users", True)),
    Hostile("nb_users-float", "nb_users", "must be a whole number, got 2.0", setting("nb_users", 2.0)),
    Hostile("nb_users-text", "nb_users", "must be a whole number, got '2'", setting("nb_users", "2")),
    Hostile("nb_users-over-500", "nb_users", "between 0 and 500, got 501", setting("nb_users", 501)),
    Hostile("count-true", "instances.node.count", "must be a whole number, got True",
            setting("instances.node.count", True)),
    Hostile("count-text", "instances.node.count", "must be a whole number, got '2'",
            setting("instances.node.count", "2")),
    Hostile("count-over-100", "instances.node.count", "between 0 and 100, got 101",
            setting("instances.node.count", 101)),
    Hostile("volume-float", "volumes.nfs.home.size", "must be a whole number, got 2.0",
            setting("volumes.nfs.home.size", 2.0)),
    Hostile("volume-over-10-tb", "volumes.nfs.home.size", "at most 10240 GB",
            setting("volumes.nfs.home.size", 10241)),
    # One-line text holds nothing that breaks the line or hides.
    Hostile("password-nul", "guest_passwd", "(U+0000 NUL)", setting("guest_passwd", "pass\0word-one")),
    Hostile("password-cr", "guest_passwd", "(U+000D CARRIAGE RETURN)", setting("guest_passwd", "pass\rword-one")),
    Hostile("password-lf", "guest_passwd", "(U+000A LINE FEED)", setting("guest_passwd", "pass\nword-one")),
    Hostile("password-line-separator", "guest_passwd", "(U+2028 LINE SEPARATOR)",
            setting("guest_passwd", "pass\u2028word-one")),
    Hostile("password-paragraph-separator", "guest_passwd", "(U+2029 PARAGRAPH SEPARATOR)",
            setting("guest_passwd", "pass\u2029word-one")),
    Hostile("password-bidi-override", "guest_passwd", "(U+202E RIGHT-TO-LEFT OVERRIDE)",
            setting("guest_passwd", "pass\u202eword-one")),
    Hostile("password-too-long", "guest_passwd", "at most 128", setting("guest_passwd", "p" * 129)),
    Hostile("key-comment-cr", "public_keys[0]", "(U+000D CARRIAGE RETURN)", key_with_comment("me\rssh-rsa AAAA")),
    Hostile("key-comment-nul", "public_keys[0]", "(U+0000 NUL)", key_with_comment("me\0")),
    Hostile("key-comment-escape", "public_keys[0]", "(U+001B ESCAPE)", key_with_comment("me\x1b[2J")),
    Hostile("key-comment-line-separator", "public_keys[0]", "(U+2028 LINE SEPARATOR)",
            key_with_comment("me\u2028command=\"sh\"")),
    Hostile("key-too-long", "public_keys[0]", "at most 8192", key_with_comment("c" * 9000)),
    Hostile("keys-too-many", "public_keys", "at most 100", setting("public_keys", [PUBLIC_KEY] * 101)),
    # Hieradata keeps its lines, but is bounded in size, depth and expansion.
    Hostile("hieradata-nested-10000", "hieradata", "nested more than 32 levels deep", setting("hieradata", "[" * 10000)),
    Hostile("hieradata-alias-bomb", "hieradata", "the alias *a is not accepted", setting("hieradata", ALIAS_BOMB)),
    Hostile("hieradata-too-long", "hieradata", "at most 65536", setting("hieradata", "a: " + "x" * 65536)),
    Hostile("hieradata-bidi-override", "hieradata", "(U+202E RIGHT-TO-LEFT OVERRIDE)",
            setting("hieradata", "a: '\u202eb'")),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[case.id for case in HOSTILE])
def test_a_hostile_spec_file_is_refused_naming_the_field(case: Hostile, tmp_path: Path) -> None:
    data = copy.deepcopy(good_data())
    case.change(data)
    spec_file = tmp_path / "spec.yaml"
    # As a person or a program would write it: YAML keeps true, 2.0 and '2' apart.
    spec_file.write_text(yaml.safe_dump(data))

    with pytest.raises(SpecError) as refused:
        load_spec(spec_file)

    assert [problem.field for problem in refused.value.problems] == [case.field], str(refused.value)
    assert case.says in refused.value.problems[0].message
    if case.field == "guest_passwd":
        assert "word-one" not in str(refused.value) and "p" * 129 not in str(refused.value)


# --- the spec file itself ---------------------------------------------------------------

FILE_CASES = [
    ("nested-10000", "[" * 10000, "nested more than 32 levels deep"),
    ("alias-bomb", ALIAS_BOMB, "the alias *a is not accepted"),
    ("larger-than-256-kib", "cluster_name: big\n" + "# padding\n" * 30000, "is larger than 256 KiB"),
]


@pytest.mark.parametrize(("text", "says"), [case[1:] for case in FILE_CASES], ids=[case[0] for case in FILE_CASES])
def test_a_hostile_spec_file_is_refused_before_it_is_built(text: str, says: str, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(text)
    with pytest.raises(SpecError) as refused:
        load_spec(spec_file)
    assert [problem.field for problem in refused.value.problems] == [str(spec_file)]
    assert says in refused.value.problems[0].message


# --- `mchub check` -------------------------------------------------------------------------

# Specs that `mchub check` called valid (or crashed on) before, the cloud being reachable.
CHECK_CASES = [case for case in HOSTILE if case.id in (
    "domain-639-characters", "nb_users-true", "volume-float", "password-line-separator",
    "key-comment-cr", "hieradata-nested-10000", "hieradata-alias-bomb",
)]  # fmt: skip


Check = Callable[[dict[str, Any] | Path], Answer]


@pytest.fixture
def check_env(sandbox_cloud: SandboxCloud, tmp_path: Path) -> dict[str, str]:
    """A shell's environment with MC Hub's settings on the sandbox, and no OS_* credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OS_", "MCHUB_"))}
    return {**env, "MCHUB_HOME": str(tmp_path / "home"), "MCHUB_CLOUDS_YAML": str(sandbox_cloud.clouds_yaml),
            "MCHUB_CLOUD": "sandbox"}  # fmt: skip


@pytest.fixture
def check(check_env: dict[str, str], tmp_path: Path) -> Iterator[Check]:
    """`mchub check` of a spec (data, or a file) against the sandbox, run in this process (the
    installed command's entry point: the same code, without Python's start-up per call)."""

    def run(spec: dict[str, Any] | Path) -> Answer:
        if isinstance(spec, dict):
            spec_file = tmp_path / "spec.yaml"
            spec_file.write_text(yaml.safe_dump(spec))
            spec = spec_file
        return mchub("check", str(spec))

    with pytest.MonkeyPatch.context() as patch:
        for key in [key for key in os.environ if key not in check_env]:
            patch.delenv(key)
        for key, value in check_env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        yield run
    get_settings.cache_clear()


def test_mchub_check_calls_the_good_spec_valid(check: Check) -> None:
    answer = check(good_data())
    assert answer.code == 0, answer.err
    assert "the spec is valid" in answer.out


@pytest.mark.parametrize("case", CHECK_CASES, ids=[case.id for case in CHECK_CASES])
def test_mchub_check_calls_a_hostile_spec_invalid_naming_the_field(check: Check, case: Hostile) -> None:
    data = copy.deepcopy(good_data())
    case.change(data)
    answer = check(data)
    assert answer.code == 1, answer
    assert f"{case.field}: " in answer.err and case.says in answer.err, answer.err
    assert "Traceback" not in answer.err and "the spec is valid" not in answer.out


def _limit_memory() -> None:
    # Reading an endless file must not take the test machine with it.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_mchub_check_reads_an_endless_file_only_up_to_the_limit(check_env: dict[str, str]) -> None:
    """As its own process, its memory limited: were the limit gone, it would read forever."""
    answer = subprocess.run(
        [sys.executable, "-m", "mchub.cli", "check", "/dev/zero"],
        cwd=ROOT, env=check_env, capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory,
    )  # fmt: skip
    assert answer.returncode == 1, answer
    assert "/dev/zero cannot be used:\n/dev/zero: is larger than 256 KiB" in answer.stderr, answer.stderr
    assert "Traceback" not in answer.stderr


# --- templates through a real plan and apply on the sandbox ---------------------------------


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file of the hub's machine that no spec may read (as clouds.yaml or another cluster's
    password would be)."""
    path = tmp_path_factory.mktemp("s") / "secret"
    path.write_text(SECRET)
    return path


def built(fresh: Hub, name: str, **changes: Any) -> tuple[Any, Any, Any]:
    """The cluster built as the flows build it: request, prepare, init, plan, apply, read back."""
    spec = fresh.spec(name, **changes)
    ws = fresh.prepare(spec)
    tf = lifecycle.terraform_for(ws)
    lifecycle.init(ws, tf)
    record, _ = lifecycle.plan(ws, tf)
    lifecycle.apply(ws, tf, record)
    return ws, tf, record


def nothing_read_from(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            assert SECRET not in path.read_text(errors="replace"), path


def test_a_template_as_guest_password_is_kept_literally_in_the_state_and_the_dialog(
    fresh: Hub, secret_file: Path
) -> None:
    password = f'${{file("{secret_file}")}} {DIRECTIVE}'
    ws, tf, _ = built(fresh, "tpl-passwd", guest_passwd=password)

    # What the module gave back, what Terraform keeps, and what the success dialog shows.
    assert tf.outputs()["accounts"].value["guests"]["password"] == password
    state = json.loads(ws.state_file.read_text())
    assert state["outputs"]["accounts"]["value"]["guests"]["password"] == password
    read = read_cluster_state(tf, ws.spec(), fresh.flavors)
    ws.save_cluster_state(read)
    assert read.guest_password.get_secret_value() == password
    assert ws.cluster_state().guest_password.get_secret_value() == password
    nothing_read_from(ws.root)


# The sandbox module keeps neither hieradata nor the keys in its state (Magic Castle hands them
# to Puppet and cloud-init). A file that does not exist makes Terraform's evaluation of a
# template visible there: the plan would fail. The value Terraform took for the module input
# is in the plan's variables.
MISSING = "/nonexistent/mchub-no-such-file"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hieradata", f"profile::motd::content: '{DIRECTIVE} ${{file(\"{MISSING}\")}}'\n"),
        ("public_keys", [f"{PUBLIC_KEY.rsplit(' ', 1)[0]} me@{DIRECTIVE}${{file(\"{MISSING}\")}}"]),
    ],
    ids=["hieradata", "key-comment"],
)
def test_a_template_in_hieradata_or_a_key_comment_reaches_the_module_literally(
    fresh: Hub, field: str, value: Any
) -> None:
    ws, tf, record = built(fresh, f"tpl-{field.replace('_', '-')}", **{field: value})

    assert ws.plan_json(record)["variables"][field]["value"] == value
    assert json.loads(ws.variables_file.read_text())[field] == value
    spec = ws.spec()
    assert getattr(spec, field) == value
    # And the cluster is there for the success dialog.
    read = read_cluster_state(tf, spec, fresh.flavors)
    assert read.guest_password == spec.guest_passwd and len(read.instances) == 3


def test_a_proposal_changed_after_the_plan_refuses_the_apply(fresh: Hub) -> None:
    """The apply renders main.tf.json and its values from the proposal again: a value changed
    since the plan (nb_users here) makes them differ from what was planned."""
    before = fresh.usage()
    ws = fresh.prepare(fresh.spec("tpl-stale"))
    tf = lifecycle.terraform_for(ws)
    lifecycle.init(ws, tf)
    approved, _ = lifecycle.plan(ws, tf)
    config = ws.main_tf.read_bytes()
    dump_spec(ws.spec().model_copy(update={"nb_users": 99}), ws.proposal_file)

    with pytest.raises(WorkspaceError, match="changed after the plan was made"):
        lifecycle.apply(ws, tf, approved)
    assert ws.main_tf.read_bytes() == config
    assert fresh.usage() == before and not ws.state_file.exists()
