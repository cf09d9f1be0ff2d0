"""Bad input, as a user gives it, refused before anything is written or run.

Malformed spec files go through `mchub create` (the path that would write a request and
start a build), impossible actions through the `mchub` commands and the calls the web pages
make, and malformed approvals through Prefect's REST API. Each refusal must name the field
(or the cluster) and say what to do, and leave the clusters folder and the cloud untouched.
"""

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import yaml

from mchub.cluster import lifecycle
from mchub.cluster.workspace import WorkspaceError, create
from mchub.orchestration import runs
from mchub.spec.model import ClusterSpec, SpecError, parse_spec
from mchub.status import BUILD_FLOW, cluster_status, cluster_tag
from sandbox.launcher import SandboxCloud
from tests import test_platform
from tests.harness import LiveStack
from tests.spec_changes import setting
from tests.reliability_helpers import (
    Answer,
    cloud_usage,
    files_under,
    finished,
    mchub,
    mchub_process,
)
from tests.test_flows import GUEST_PASSWORD, cluster_spec
from tests.test_platform import wait_until_paused

# test_platform's fixtures, used here by name.
approval_probe_deployment = test_platform.approval_probe_deployment
make_run = test_platform.make_run

SHORT_PASSWORD = "Sh0rt!"


def good_data() -> dict[str, Any]:
    """A spec that fits the sandbox's default quotas; each case below breaks one thing in it."""
    return cluster_spec(name=f"b{uuid4().hex[:8]}").to_data(include_secrets=True)


@dataclass(frozen=True)
class SpecCase:
    """A spec file and the words its refusal must contain: the field, and the fix."""

    id: str
    says: tuple[str, ...]
    change: Callable[[dict[str, Any]], None] = lambda data: None
    text: str | bytes | None = None
    """The file's exact content instead of the changed good spec."""
    keeps_quiet: tuple[str, ...] = field(default=())
    """What must NOT appear in the answer (a password)."""


def removing(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.pop(key)


def adding_row(prefix: str, row: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["instances"].__setitem__(prefix, row)


SPEC_CASES = [
    SpecCase("cluster_name-uppercase", ("cluster_name: 'Hpc_One' must start with a lowercase letter",),
             setting("cluster_name", "Hpc_One")),
    SpecCase("cluster_name-empty", ("cluster_name: '' must start with a lowercase letter",),
             setting("cluster_name", "")),
    SpecCase("cluster_name-too-long", ("cluster_name:", "(2 to 41 characters)"), setting("cluster_name", "a" * 42)),
    SpecCase("cluster_name-unicode", ("cluster_name: 'clüster'", "only lowercase letters, digits and '-'"),
             setting("cluster_name", "clüster")),
    SpecCase("cluster_name-huge", ("cluster_name: 'aaaa", "...'", "must start with a lowercase letter"),
             setting("cluster_name", "a" * 100_000)),
    SpecCase("domain-empty-part", ("domain: 'sandbox..dev' has an empty part", "write it like sandbox.mchub.dev"),
             setting("domain", "sandbox..dev")),
    SpecCase("domain-unicode", ("domain: 'mchüb.dev'", "contain only lowercase letters"), setting("domain", "mchüb.dev")),
    SpecCase("image-unknown", ("image: 'Windows-11' is not an image of this cloud; choose one of:", "Rocky-9"),
             setting("image", "Windows-11")),
    SpecCase("image-empty", ("image: give the name of an OS image, e.g. Rocky-9",), setting("image", " ")),
    SpecCase("flavor-unknown", ("instances.node.type: 'x99-huge' is not a flavor of this cloud; choose one of:", "p2-3gb"),
             setting("instances.node.type", "x99-huge")),
    SpecCase("flavor-empty", ("instances.node.type: give a flavor name, e.g. p2-3gb",), setting("instances.node.type", "")),
    SpecCase("count-negative", ("instances.node.count: must be between 0 and 100, got -1",),
             setting("instances.node.count", -1)),
    SpecCase("count-huge", ("instances.node.count: must be between 0 and 100, got 1000000000000",),
             setting("instances.node.count", 10**12)),
    SpecCase("count-not-a-number", ("instances.node.count: must be a whole number, got 'many'",),
             setting("instances.node.count", "many")),
    SpecCase("nb_users-huge", ("nb_users: must be between 0 and 500",), setting("nb_users", 10**30)),
    SpecCase("tag-unknown", ("instances.node.tags[0]: unknown tag 'nodes'; the known tags are:",),
             setting("instances.node.tags", ["nodes"])),
    SpecCase("tags-empty", ("instances.node.tags: give at least one tag, e.g. [node]",), setting("instances.node.tags", [])),
    SpecCase("mgmt-and-proxy", ("instances.mgmt.tags:", "put 'proxy' on the login row instead"),
             setting("instances.mgmt.tags", ["mgmt", "puppet", "nfs", "proxy"])),
    SpecCase("second-mgmt-row", ("instances.mgmt2.tags: 'mgmt' is already on mgmt1", "remove it here"),
             adding_row("mgmt2", {"type": "p4-6gb", "count": 1, "tags": ["mgmt"]})),
    SpecCase("no-puppet", ("instances: no instance is tagged 'puppet'", "add 'puppet' to the tags of the mgmt row"),
             setting("instances.mgmt.tags", ["mgmt", "nfs"])),
    SpecCase("duplicate-hostname", ("instances.node1: its hostname node11 is also made by row 'node'",
                                    "rename one of the two prefixes"),
             lambda data: (setting("instances.node.count", 11)(data),
                           adding_row("node1", {"type": "p2-3gb", "count": 1, "tags": ["node"]})(data))),
    SpecCase("prefix-uppercase", ("instances.Gpu: the prefix 'Gpu' must start with a lowercase letter",),
             adding_row("Gpu", {"type": "p2-3gb", "count": 1, "tags": ["node"]})),
    SpecCase("volume-size-zero", ("volumes.nfs.home.size: must be at least 1 GB, got 0",), setting("volumes.nfs.home.size", 0)),
    SpecCase("volume-not-attached", ("volumes.gpu: no instance is tagged 'gpu'", "or remove volumes.gpu"),
             setting("volumes.gpu", {"data": {"size": 10}})),
    SpecCase("volume-name", ("volumes.nfs.Home Dir: the name 'Home Dir' must start with a lowercase letter",),
             setting("volumes.nfs", {"Home Dir": {"size": 10}})),
    SpecCase("public_keys-empty", ("public_keys: give at least one SSH public key", "~/.ssh/id_ed25519.pub"),
             setting("public_keys", [])),
    SpecCase("public_key-garbage", ("public_keys[0]:", "paste the line of the .pub file unchanged"),
             setting("public_keys", ["ssh-rsa AAAAnot-a-key me@laptop"])),
    SpecCase("guest_passwd-short", ("guest_passwd: must be empty (a password is generated) or at least 8 characters",
                                    "choose a longer one"),
             setting("guest_passwd", SHORT_PASSWORD), keeps_quiet=(SHORT_PASSWORD,)),
    SpecCase("guest_passwd-not-text", ("guest_passwd: must be text (quote it in YAML)",),
             setting("guest_passwd", [SHORT_PASSWORD]), keeps_quiet=(SHORT_PASSWORD,)),
    SpecCase("hieradata-invalid-yaml", ("hieradata: not valid YAML: line 1, column",),
             setting("hieradata", "profile::base: [unclosed")),
    SpecCase("hieradata-a-list", ("hieradata: must be a YAML mapping of hiera keys",), setting("hieradata", "- a\n- b")),
    SpecCase("expiration-passed", ("expiration_date: 2020-01-01 is not in the future; choose a date after",),
             setting("expiration_date", "2020-01-01")),
    SpecCase("expiration-not-a-date", ("expiration_date: must be a date like 2027-06-30",),
             setting("expiration_date", "next friday")),
    SpecCase("unknown-field", ("colour: unknown field; a cluster spec has only: cluster_name",), setting("colour", "blue")),
    SpecCase("missing-field", ("public_keys: missing; add this field",), removing("public_keys")),
    SpecCase("cloud-empty", ("cloud: give the name of a cloud of clouds.yaml, e.g. sandbox",), setting("cloud", "")),
    SpecCase("cloud-unknown", ("cloud 'nowhere' is not configured: add it to", "or set MCHUB_CLOUD"),
             setting("cloud", "nowhere")),
    SpecCase("over-quota-cores", ("does not fit in the quotas of cloud 'sandbox'",
                                  "cores: the cluster needs 86 vCPU, the project has 64 vCPU free"),
             setting("instances.node.count", 40)),
    SpecCase("over-quota-floating-ips", ("floating IPs: the cluster needs 6, the project has 5 free",),
             lambda data: data["instances"]["node"].update(count=5, tags=["node", "public"])),
    SpecCase("over-quota-storage", ("volume storage: the cluster needs 10030 GB, the project has 2000 GB free",),
             setting("volumes.nfs.home.size", 10_000)),
    SpecCase("yaml-invalid", ("not valid YAML: line 2, column 12: mapping values are not allowed here",),
             text="cluster_name: hpc\ndomain: hpc: sandbox.mchub.dev\n"),
    SpecCase("yaml-a-list", ("must hold a mapping of spec fields (cluster_name: ...), found a list",), text="- hpc\n"),
    SpecCase("yaml-empty", ("must hold a mapping of spec fields (cluster_name: ...), found nothing",), text=""),
    SpecCase("yaml-key-twice", ("'cluster_name' is given twice; keep one",),
             text="cluster_name: hpc1\ncluster_name: hpc2\n"),
    SpecCase("file-not-utf8", ("cannot be read",), text=b"cluster_name: \xff\xfe\n"),
]


@pytest.fixture
def untouched(live_stack: LiveStack, clean_sandbox: SandboxCloud) -> Iterator[None]:
    """Fails the test if anything appeared in the clusters folder or the cloud."""
    before = files_under(live_stack.clusters_dir), cloud_usage(clean_sandbox)
    yield
    assert (files_under(live_stack.clusters_dir), cloud_usage(clean_sandbox)) == before, "something was written"


def assert_refused(answer: Answer, says: tuple[str, ...], keeps_quiet: tuple[str, ...] = ()) -> None:
    assert answer.code == 1, answer
    assert answer.out == "" or "submitted" not in answer.out, answer.out
    for words in says:
        assert words in answer.err, f"{words!r} not in the refusal:\n{answer.err}"
    for secret in keeps_quiet:
        assert secret not in answer.err + answer.out


def test_the_good_spec_the_cases_start_from_is_accepted(tmp_path: Path, untouched: None) -> None:
    """Each case below changes one thing of this spec: the refusal is that thing's."""
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text(yaml.safe_dump(good_data()))
    answer = mchub("check", str(spec_file))
    assert answer.code == 0, answer.err
    assert "the spec is valid and fits in the quotas of cloud 'sandbox'" in answer.out


@pytest.mark.parametrize("case", SPEC_CASES, ids=[case.id for case in SPEC_CASES])
def test_a_bad_spec_is_refused_by_mchub_create_and_nothing_is_written(
    case: SpecCase, tmp_path: Path, untouched: None
) -> None:
    spec_file = tmp_path / "cluster.yaml"
    if case.text is None:
        data = good_data()
        case.change(data)
        spec_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    elif isinstance(case.text, bytes):
        spec_file.write_bytes(case.text)
    else:
        spec_file.write_text(case.text)
    answer = mchub("create", str(spec_file), "--no-wait")
    assert_refused(answer, case.says, case.keeps_quiet)
    assert len(answer.err) < 2000, "the refusal should be readable, not a dump"


def test_a_spec_file_that_is_not_there_is_refused_by_the_installed_command(tmp_path: Path, untouched: None) -> None:
    """The same refusal from its own process, with the exit code a script tests."""
    missing = tmp_path / "nowhere.yaml"
    answer = finished(mchub_process("create", str(missing)))
    assert_refused(answer, (f"{missing} cannot be used:", f"{missing}: no such file"))


# --- actions that cannot be done on the clusters there are -----------------------------


@pytest.fixture
def taken_name(live_stack: LiveStack) -> Iterator[ClusterSpec]:
    """A spec whose hostname is already a cluster's folder."""
    spec = cluster_spec()
    workspace = create(live_stack.clusters_dir, spec)
    yield spec
    shutil.rmtree(workspace.root)


def test_creating_a_cluster_whose_name_is_taken_is_refused(
    taken_name: ClusterSpec, tmp_path: Path, untouched: None
) -> None:
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text(yaml.safe_dump(taken_name.to_data(include_secrets=True)))
    answer = mchub("create", str(spec_file), "--no-wait")
    assert_refused(answer, (f"cluster_name: a cluster named {taken_name.hostname} already exists",
                            "choose another name, or modify that cluster instead"))
    assert runs.runs_of(taken_name.hostname) == []


def made_up_host() -> str:
    return f"r{uuid4().hex[:8]}.sandbox.mchub.dev"


@dataclass(frozen=True)
class CommandCase:
    """A command on a made-up cluster whose latest run (if any) is in a given state."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]
    latest_run: str | None = None
    """The state of the cluster's one run: "Completed" or "Running"; None: no run."""


COMMAND_CASES = [
    CommandCase("approve-no-runs", ("approve", "{host}"), ("{host} has no plan waiting for approval: it has no runs",)),
    CommandCase("reject-no-runs", ("reject", "{host}", "--comment", "no"),
                ("{host} has no plan waiting for approval: it has no runs",)),
    CommandCase("approve-completed-run", ("approve", "{host}"),
                ("{host} has no plan waiting for approval: its latest run is build-cluster run", "(Completed)"),
                latest_run="Completed"),
    CommandCase("approve-running-run", ("approve", "{host}"),
                ("{host} has no plan waiting for approval: its latest run is build-cluster run", "(Running)"),
                latest_run="Running"),
    CommandCase("destroy-no-folder", ("destroy", "{host}", "--no-wait"),
                ("{host}: there is no cluster folder", "`mchub list` shows the clusters there are")),
    CommandCase("logs-no-runs", ("logs", "{host}"), ("{host} has no runs; `mchub list` shows the clusters there are",)),
]


@pytest.mark.parametrize("case", COMMAND_CASES, ids=[case.id for case in COMMAND_CASES])
def test_an_action_on_a_cluster_not_ready_for_it_is_refused(
    case: CommandCase, make_run: Callable[..., Any], untouched: None
) -> None:
    from prefect.states import Completed, Running

    host = made_up_host()
    if case.latest_run:
        make_run(host, BUILD_FLOW, {"Completed": Completed, "Running": Running}[case.latest_run](), "build")
    before = runs.runs_of(host)
    answer = mchub(*(arg.format(host=host) for arg in case.args))
    assert_refused(answer, tuple(words.format(host=host) for words in case.says))
    assert [(r.id, r.state_type) for r in runs.runs_of(host)] == [(r.id, r.state_type) for r in before]


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClusterSpec]:
    """A clusters folder holding one cluster, as a build leaves it before its apply."""
    clusters_dir = tmp_path_factory.mktemp("clusters")
    spec = cluster_spec()
    workspace = create(clusters_dir, spec)
    workspace.propose(spec)
    workspace.write_config(spec, "sandbox", "http://127.0.0.1:9")
    return clusters_dir, spec


def changed(spec: ClusterSpec, **changes: Any) -> ClusterSpec:
    return parse_spec({**spec.to_data(include_secrets=True), **changes})


MODIFY_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("rename", {"cluster_name": "renamed"},
     ("cluster_name: cannot change once the cluster exists", "or create a new cluster")),
    ("new-domain", {"domain": "elsewhere.org"}, ("domain: cannot change once the cluster exists",)),
    ("new-image", {"image": "AlmaLinux-9"}, ("image: cannot change once the cluster exists", "keep 'Rocky-9'")),
    ("new-guest-password", {"guest_passwd": "Another-pw-123"},
     ("guest_passwd: cannot change once the cluster exists", "give the current one")),
    ("volume-removed", {"volumes": {}},
     ("volumes.nfs.home: removing a volume deletes it with its data; keep it in the spec",)),
]


@pytest.mark.parametrize(("changes", "says"), [c[1:] for c in MODIFY_CASES], ids=[c[0] for c in MODIFY_CASES])
def test_a_modification_that_changes_what_cannot_change_is_refused(
    existing: tuple[Path, ClusterSpec], changes: dict[str, Any], says: tuple[str, ...]
) -> None:
    """What the modify page's Apply does first (mchub.cluster.lifecycle.new_cluster_request)."""
    clusters_dir, spec = existing
    before = files_under(clusters_dir)
    with pytest.raises(SpecError) as refused:
        lifecycle.new_cluster_request(changed(spec, **changes), new=False, hostname=spec.hostname, clusters_dir=clusters_dir)
    for words in says:
        assert words in str(refused.value)
    assert "Another-pw-123" not in str(refused.value) and GUEST_PASSWORD not in str(refused.value)
    assert files_under(clusters_dir) == before


def test_modifying_a_cluster_that_does_not_exist_is_refused(existing: tuple[Path, ClusterSpec]) -> None:
    clusters_dir, _ = existing
    ghost = cluster_spec()
    before = files_under(clusters_dir)
    with pytest.raises(WorkspaceError, match=f"no cluster named {ghost.hostname}.*`mchub list`"):
        lifecycle.new_cluster_request(ghost, new=False, clusters_dir=clusters_dir)
    assert files_under(clusters_dir) == before


# --- answers to a plan that Prefect must refuse ----------------------------------------


@pytest.fixture(scope="module")
def waiting_run(live_stack: LiveStack, approval_probe_deployment: UUID) -> Iterator[tuple[str, UUID]]:
    """A run of a made-up cluster waiting for an answer to its plan, rejected at the end."""
    host = made_up_host()
    with live_stack.client() as client:
        run_id = client.create_flow_run_from_deployment(approval_probe_deployment, tags=[cluster_tag(host)]).id
    wait_until_paused(run_id)
    yield host, run_id
    runs.reject(host)
    runs.wait(run_id, poll_seconds=0.3)
    with live_stack.client() as client:
        client.delete_flow_run(run_id)


@pytest.mark.parametrize(
    "run_input",
    [{"comment": "no answer", "person": "eve"}, {"approve": "maybe", "person": "eve"}, {}],
    ids=["approve-missing", "approve-maybe", "empty"],
)
def test_a_resume_with_an_invalid_answer_is_refused_and_the_run_keeps_waiting(
    live_stack: LiveStack, waiting_run: tuple[str, UUID], run_input: dict[str, Any], untouched: None
) -> None:
    host, run_id = waiting_run
    answer = httpx.post(
        f"{live_stack.api_url}/flow_runs/{run_id}/resume",
        json={"run_input": run_input},
        timeout=10,
        auth=live_stack.http_auth(),
    )
    assert answer.status_code in (200, 201), answer.text
    refused = answer.json()
    assert refused["status"] == "REJECT", refused
    reason = refused["details"]["reason"]
    assert "approve" in reason and "valid" in reason.lower(), reason
    assert runs.read_run(run_id).state_type == "PAUSED"
    assert cluster_status(runs.runs_of(host)).value == "awaiting_approval"
