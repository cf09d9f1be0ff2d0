"""Security, issue 13 finding 3: a hostname names a folder, so every entry point refuses text
that is not a cluster's hostname, or whose folder leads out of clusters/; and no traceback
reaches a browser or a terminal (the logs keep it).

Beside clusters/ lies a folder `elsewhere/` holding a spec with a password and a log line
(the kind of file an attacker wants), and clusters/ holds a link to it named like a cluster.
Each hostile hostname is tried against the domain (mchub.cluster.workspace, mchub.spec.hostname), the
command (`python -m mchub.cli`, as a user runs it), the flows (called, and run from their
deployments on a real Prefect server), and the pages in headless Chromium: each is refused
with a message naming `hostname`, and nothing from outside clusters/ is shown or touched.
"""

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from uuid import UUID, uuid4

import pytest
from playwright.sync_api import Browser, Page, expect
from prefect.exceptions import ObjectNotFound

from flows.build import build_cluster
from flows.cluster_lock import lock_name
from flows.destroy import destroy_cluster
from mchub.cluster import lifecycle
from mchub.cluster.workspace import WorkspaceError, check_name_free, create, list_hostnames, open_existing
from mchub.spec.hostname import HostnameError, checked_hostname, cluster_name_problem, domain_problem
from mchub.spec.model import ClusterSpec, SpecError, default_spec_data, dump_spec, parse_spec
from mchub.status import BUILD_FLOW, DESTROY_FLOW
from sandbox.launcher import SandboxCloud, free_port
from tests.harness import LiveStack, web_pages_alone
from tests.reliability_helpers import Answer, finished, mchub_process, settings_from
from tests.reliability_helpers import mchub as run_mchub
from tests.signing_in import sign_in

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "sandbox.mchub.dev"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"
SECRET = "Outside-secret-5f2e9a"
"""The password of the spec outside clusters/, also in its log: no page may show it."""
LINK = f"linked.{DOMAIN}"
"""A well-formed hostname whose folder in clusters/ is a link to elsewhere/."""
OUTSIDE = "{outside}"
"""Stands for the absolute path of elsewhere/ in the cases below."""

HOSTILE = [
    pytest.param("../elsewhere", id="dot-dot"),
    pytest.param("/etc", id="etc"),
    pytest.param(OUTSIDE, id="absolute-path"),
    pytest.param("a/../../elsewhere", id="a-dot-dot-b"),
    pytest.param(f"hpc1.{DOMAIN}/../../../elsewhere", id="hostname-then-dot-dot"),
    pytest.param("x" * 300, id="300-characters"),
    pytest.param(f"hpc1.{'a' * 64}.dev", id="64-character-label"),
    pytest.param(f"HPC1.{DOMAIN}", id="uppercase"),
    pytest.param(f"hp\u04411.{DOMAIN}", id="cyrillic-es"),
    pytest.param(f"hpc1\uff0e{DOMAIN}", id="fullwidth-full-stop"),
    pytest.param(f"hpc1.{DOMAIN}\0", id="nul"),
    pytest.param("%2e%2e%2felsewhere", id="percent-encoded-dot-dot"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dot-dot-alone"),
    pytest.param("", id="empty"),
    pytest.param(f"hpc1.{DOMAIN}.", id="trailing-dot"),
    pytest.param(f"hpc1.{DOMAIN}\n", id="trailing-newline"),
    pytest.param(f" hpc1.{DOMAIN}", id="leading-space"),
    pytest.param(f"hpc1.{DOMAIN}\u2028", id="line-separator"),
    pytest.param("~/.ssh", id="home"),
]
# A command line cannot carry NUL.
CLI_HOSTILE = [case for case in HOSTILE if case.id != "nul"]
CLI_VERBS = ["destroy", "approve", "reject", "status", "logs"]
PAGE_TIMEOUT_MS = 60_000  # the first visit imports Prefect and openstacksdk in the page's process


@dataclass
class Hub:
    clusters: Path
    outside: Path
    home: Path

    def expand(self, text: str) -> str:
        return text.replace(OUTSIDE, str(self.outside))

    def outside_files(self) -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in sorted(self.outside.rglob("*")) if p.is_file()}

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "MCHUB_HOME": str(self.home),
            "MCHUB_CLUSTERS_DIR": str(self.clusters),
            # Nothing listens there: a refusal must come before any call to Prefect.
            "MCHUB_PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
            "PREFECT_HOME": str(self.home / "prefect"),
            **extra,
        }


def spec_named(name: str, password: str = "Guest-pw-7d41c9e2") -> ClusterSpec:
    return parse_spec(
        {**default_spec_data(domain=DOMAIN, name=name), "public_keys": [PUBLIC_KEY], "guest_passwd": password}
    )


def make_hub(root: Path) -> Hub:
    """clusters/ with one real cluster folder and a link to elsewhere/, which holds what an
    attacker wants: a spec with a password and a log."""
    hub = Hub(clusters=root / "clusters", outside=root / "elsewhere", home=root / "home")
    (hub.outside / "logs").mkdir(parents=True)
    dump_spec(spec_named("elsewhere", SECRET), hub.outside / "spec.yaml")
    (hub.outside / "logs" / "init.log").write_text(f"the log outside clusters/ says {SECRET}\n")
    create(hub.clusters, spec_named("real-one"))
    (hub.clusters / LINK).symlink_to(hub.outside, target_is_directory=True)
    hub.home.mkdir()
    return hub


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


# --- the domain -----------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_the_one_check_refuses_a_hostile_hostname_naming_hostname(hub: Hub, text: str) -> None:
    with pytest.raises(HostnameError) as refused:
        checked_hostname(hub.expand(text))
    assert str(refused.value).startswith("hostname: ")
    assert "<cluster_name>.<domain>" in str(refused.value)  # what a hostname is


@pytest.mark.parametrize("text", HOSTILE)
def test_the_workspace_refuses_a_hostile_hostname_before_touching_a_file(hub: Hub, text: str) -> None:
    before = hub.outside_files()
    for attempt in (open_existing, check_name_free):
        with pytest.raises(WorkspaceError) as refused:
            attempt(hub.clusters, hub.expand(text))
        assert str(refused.value).startswith("hostname: ")
    assert hub.outside_files() == before


def test_a_link_in_clusters_to_a_folder_elsewhere_is_no_cluster(hub: Hub) -> None:
    for attempt in (
        lambda: open_existing(hub.clusters, LINK),
        lambda: check_name_free(hub.clusters, LINK),
        lambda: create(hub.clusters, spec_named("linked")),
    ):
        with pytest.raises(WorkspaceError, match=r"^hostname: .* is a symbolic link"):
            attempt()
    assert list_hostnames(hub.clusters) == [f"real-one.{DOMAIN}"]  # and the cull never sees it


def test_a_link_to_nowhere_is_not_a_free_name_either(hub: Hub) -> None:
    (hub.clusters / f"dangling.{DOMAIN}").symlink_to(hub.outside / "not-yet")
    with pytest.raises(WorkspaceError, match=r"^hostname: .* is a symbolic link"):
        create(hub.clusters, spec_named("dangling"))
    assert not (hub.outside / "not-yet").exists()


@pytest.mark.parametrize(
    ("name", "domain"),
    [("ab", DOMAIN), ("a" * 41, DOMAIN), ("a" * 42, DOMAIN), ("a", DOMAIN), ("9lives", DOMAIN), ("a-", DOMAIN),
     ("hpc", "x"), ("hpc", f"{'a' * 63}.dev"), ("hpc", f"{'a' * 64}.dev"), ("hpc", "a..b"), ("hpc", "a.-b"),
     ("hpc", "9a.dev"), ("hpc", "a_b.dev"), ("hpc", "Example.org")],
)
def test_the_hostname_grammar_is_the_specs(name: str, domain: str) -> None:
    """A spec's hostname always opens its folder, and the check refuses nothing a spec allows."""
    try:
        parse_spec({**spec_named("ab").to_data(include_secrets=True), "cluster_name": name, "domain": domain})
        spec_refuses = set()
    except SpecError as error:
        spec_refuses = {problem.field for problem in error.problems} & {"cluster_name", "domain"}
    check_refuses = {"cluster_name"} if cluster_name_problem(name) else set()
    check_refuses |= {"domain"} if domain_problem(domain) else set()
    assert check_refuses == spec_refuses
    if not spec_refuses:
        assert checked_hostname(f"{name}.{domain}") == f"{name}.{domain}"


# --- the command ----------------------------------------------------------------------


def mchub(hub: Hub, *args: str, **env: str) -> Answer:
    """`mchub ARGS` run in this process (the installed command's entry point) with the hub's
    settings and `env`: the refusals come from the same code, without Python's start-up per call."""
    with settings_from(hub.env(**env)):
        return run_mchub(*args)


def assert_refused_without_traceback(done: Answer, *expected: str) -> None:
    said = done.out + done.err
    assert done.code != 0, said
    assert "Traceback" not in said and 'File "' not in said, said
    for text in expected:
        assert text in done.err, said


# Each hostile hostname with one of the commands taking a HOST, in turn: all of them are
# refused by the same check, and every command is tried with several.
@pytest.mark.parametrize(
    ("verb", "text"),
    [pytest.param(verb, case.values[0], id=f"{verb}-{case.id}")
     for verb, case in zip(itertools.cycle(CLI_VERBS), CLI_HOSTILE)],
)
def test_every_host_command_refuses_a_hostile_hostname(hub: Hub, verb: str, text: str) -> None:
    before = hub.outside_files()
    done = mchub(hub, verb, hub.expand(text))
    assert_refused_without_traceback(done, "hostname: ", "is not a cluster's hostname")
    assert hub.outside_files() == before


@pytest.mark.parametrize("verb", CLI_VERBS)
def test_the_commands_refuse_a_cluster_folder_that_is_a_link_out(hub: Hub, verb: str) -> None:
    assert_refused_without_traceback(mchub(hub, verb, LINK), "hostname: ", "is a symbolic link")


def test_destroy_through_a_path_to_a_real_cluster_is_refused_before_prefect(hub: Hub) -> None:
    """Reported: `mchub destroy ../clusters/<host>` skipped the busy check, which looks for
    runs of the text as given, then destroyed the folder it led to. (As its own process: the
    command a person runs.)"""
    done = finished(mchub_process("destroy", f"../clusters/real-one.{DOMAIN}", "--approve", env=hub.env()))
    assert_refused_without_traceback(done, "hostname: ", "is not a cluster's hostname")
    assert "Prefect" not in done.err  # refused before asking anything


def test_an_unexpected_error_is_one_line_on_the_terminal_and_its_traceback_is_logged(hub: Hub) -> None:
    # No command can be made to fail in a way nobody foresaw: this one is broken on purpose.
    broken = (
        "import sys\n"
        "from mchub.cli import main\n"
        "from mchub.orchestration import runs\n"
        "def statuses(**_):\n"
        "    raise RuntimeError('the database said no\\nand more')\n"
        "runs.statuses = statuses\n"
        "sys.exit(main(['list']))\n"
    )
    ran = subprocess.run([sys.executable, "-c", broken], cwd=ROOT, env=hub.env(), capture_output=True,
                         text=True, timeout=120)
    done = Answer(ran.returncode, ran.stdout, ran.stderr)
    log = hub.home / "logs" / "cli.log"
    assert_refused_without_traceback(done, f"mchub list failed unexpectedly (RuntimeError: the database said no); "
                                           f"the full traceback is in {log}")
    assert done.err.count("\n") == 1  # one line
    assert "Traceback" in log.read_text() and "the database said no\nand more" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_setting_that_cannot_be_read_is_named_without_a_traceback(hub: Hub) -> None:
    done = mchub(hub, "list", MCHUB_SANDBOX_PORT="eighty")
    assert_refused_without_traceback(done, "MCHUB_SANDBOX_PORT='eighty'", "valid integer")


# --- the flows ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["../elsewhere", OUTSIDE, "x" * 300, f"hpc1.{DOMAIN}\0"])
def test_the_flows_refuse_a_hostile_hostname_parameter_first(hub: Hub, text: str) -> None:
    """Called as their deployment's process would call them, with no run around them: the
    refusal comes before anything that needs one (the run's tag, its logger, the lock)."""
    with pytest.raises(HostnameError):
        destroy_cluster.fn(hostname=hub.expand(text), auto_approve=True)
    requests = hub.clusters / lifecycle.REQUESTS
    requests.mkdir(exist_ok=True)
    request = requests / f"{uuid4()}.yaml"
    dump_spec(spec_named("requested"), request)
    with pytest.raises(HostnameError):
        build_cluster.fn(request_file=str(request), hostname=hub.expand(text), new=True)
    assert not request.exists()  # it holds the guest password and can never be used


def _run_from_deployment(stack: LiveStack, flow_name: str, parameters: dict[str, object]) -> UUID:
    with stack.client() as client:
        deployment = client.read_deployment_by_name(f"{flow_name}/{flow_name}")
        return client.create_flow_run_from_deployment(deployment.id, parameters=parameters).id


def _lock_exists(stack: LiveStack, hostname: str) -> bool:
    with stack.client() as client:
        try:
            client.read_global_concurrency_limit_by_name(lock_name(hostname))
        except ObjectNotFound:
            return False
    return True


def test_runs_started_through_prefects_api_with_a_path_for_hostname_fail_before_any_lock(
    live_stack: LiveStack,
) -> None:
    from tests.test_flows import ended

    real = spec_named(f"r{uuid4().hex[:8]}")
    create(live_stack.clusters_dir, real)
    dump_spec(real, live_stack.clusters_dir / real.hostname / "spec.yaml")
    through = f"../{live_stack.clusters_dir.name}/{real.hostname}"
    destroying = ended(_run_from_deployment(live_stack, DESTROY_FLOW, {"hostname": through}), timeout=60)

    requested = spec_named(f"q{uuid4().hex[:8]}")
    request = lifecycle.new_cluster_request(requested)
    building = ended(_run_from_deployment(
        live_stack, BUILD_FLOW, {"request_file": str(request), "hostname": "../elsewhere", "new": True}
    ), timeout=60)

    for run, hostname in ((destroying, through), (building, "../elsewhere")):
        assert run.state_type == "FAILED", run.describe()
        assert "hostname: " in (run.state_message or "") and "is not a cluster's hostname" in run.state_message
        assert not _lock_exists(live_stack, hostname)
    assert sorted(p.name for p in (live_stack.clusters_dir / real.hostname).iterdir()) == ["logs", "spec.yaml"]
    assert not (live_stack.clusters_dir / requested.hostname).exists()
    assert not request.exists()


# --- the pages ------------------------------------------------------------------------


@dataclass
class Pages:
    url: str
    hub: Hub
    log: Path
    """Streamlit's stdout and stderr: the web pages' log."""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, sandbox_cloud: SandboxCloud) -> Iterator[Pages]:
    """The web pages alone (as `mchub up` starts them), with the sandbox cloud (the modify form
    needs its flavors) and no Prefect."""
    hub = make_hub(tmp_path_factory.mktemp("pages"))
    broken = create(hub.clusters, spec_named("broken"))
    dump_spec(spec_named("broken"), broken.spec_file)
    broken.cluster_state_file.write_text("{ damaged")
    with web_pages_alone(hub.home, sandbox_cloud, clusters_dir=hub.clusters) as stack:
        yield Pages(url=stack.ui_url, hub=hub, log=stack.log_dir / "web-pages.log")


@pytest.fixture(scope="module")
def admin(pages: Pages, browser: Browser) -> Iterator[Page]:
    """A tab signed in as the hub's admin, who may see every cluster: what the pages refuse here,
    they refuse whoever asks."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    sign_in(tab, pages.url, "ada")
    yield tab
    context.close()


def opened(page: Page, url: str, message: str) -> str:
    """Open `url`, wait for an error saying `message` and for the page to finish; returns
    all it holds: its HTML and the values of its fields."""
    page.goto(url)
    expect(page.locator('[data-testid="stAlertContentError"]').filter(has_text=message).first).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")
    values = page.eval_on_selector_all("input, textarea", "fields => fields.map(f => f.value).join('\\n')")
    return page.content() + "\n" + values


def assert_nothing_leaked(shown: str) -> None:
    assert SECRET not in shown
    assert "Traceback" not in shown and 'File "' not in shown


PAGE_CASES = [
    pytest.param("cluster", "../elsewhere", id="cluster-dot-dot"),
    pytest.param("cluster", OUTSIDE, id="cluster-absolute-path"),
    pytest.param("cluster", "a/../../elsewhere", id="cluster-a-dot-dot-b"),
    pytest.param("cluster", "x" * 300, id="cluster-300-characters"),
    pytest.param("cluster", f"hpc1.{DOMAIN}\0", id="cluster-nul"),
    pytest.param("cluster", f"HPC1.{DOMAIN}", id="cluster-uppercase"),
    pytest.param("modify-cluster", OUTSIDE, id="modify-absolute-path"),
    pytest.param("modify-cluster", "../elsewhere", id="modify-dot-dot"),
    pytest.param("modify-cluster", "x" * 300, id="modify-300-characters"),
    pytest.param("modify-cluster", f"hp\u04411.{DOMAIN}", id="modify-cyrillic-es"),
]


@pytest.mark.parametrize(("path", "text"), PAGE_CASES)
def test_a_page_refuses_a_hostile_hostname_in_its_url(pages: Pages, admin: Page, path: str, text: str) -> None:
    shown = opened(admin, f"{pages.url}/{path}?hostname={quote(pages.hub.expand(text), safe='')}",
                   "is not a cluster's hostname")
    assert "There is no such cluster" in shown and "hostname: " in shown
    assert_nothing_leaked(shown)


def test_a_percent_encoded_path_in_the_url_is_refused(pages: Pages, admin: Page) -> None:
    shown = opened(admin, f"{pages.url}/cluster?hostname=%2e%2e%2felsewhere", "is not a cluster's hostname")
    assert_nothing_leaked(shown)


@pytest.mark.parametrize("path", ["cluster", "modify-cluster"])
def test_a_page_refuses_a_cluster_folder_that_is_a_link_out(pages: Pages, admin: Page, path: str) -> None:
    assert_nothing_leaked(opened(admin, f"{pages.url}/{path}?hostname={LINK}", "is a symbolic link"))


def test_an_unexpected_error_on_a_page_is_a_message_with_a_reference_and_a_logged_traceback(
    pages: Pages, admin: Page
) -> None:
    shown = opened(admin, f"{pages.url}/modify-cluster?hostname=broken.{DOMAIN}", "something went wrong")
    assert_nothing_leaked(shown)
    reference = admin.locator('[data-testid="stAlertContentError"]').first.inner_text().split("reference ")[1][:8]
    deadline = time.monotonic() + 10
    while f"(reference {reference})" not in pages.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    logged = pages.log.read_text()
    assert f"The modification form failed (reference {reference})" in logged
    assert "Traceback" in logged[logged.index(reference):]
