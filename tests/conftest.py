"""Shared fixtures: the sandbox cloud, started once per test session as a real service on
loopback, and the live stacks on it (tests/harness.py): the session's, which this process acts
on while the session lasts, and a second one whose parts the fault tests kill and restart.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Page, sync_playwright
from xdist.scheduler import LoadFileScheduling

from sandbox.launcher import SandboxCloud, start_sandbox
from tests import postgres
from tests.harness import LiveStack, acting_on, prefect_part, whole_product

# The fixtures behind the slow tests, the `live` tier, which `./dev test --fast` leaves out: a
# test using one, directly or through another fixture, is marked `live`. A module that starts
# something of the kind itself says `pytestmark = pytest.mark.live`.
LIVE_FIXTURES = {
    "live_stack",  # Prefect's server, worker and warm engines (own_stack builds on it)
    "mchub_up",  # the whole product, as `mchub up` starts it
    "browser",  # headless Chromium, and the pages it opens
    "fresh",  # clusters built with real Terraform on the sandbox
    "make_cluster",  # the sandbox's Terraform module applied by hand
    "notifying_stack",  # a Prefect part of its own that sends notifications (test_notifications)
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
    # `./dev test` shares whole modules between two processes in this order: the longest first,
    # then the other modules with live tests, so that the quick ones fill in the end.
    # A group of modules sharing a stack runs together, at the rank of its longest member, the
    # tests using the stack first: it can stop once they are done (KeptBetweenModules).
    live_modules = {item.path for item in items if item.get_closest_marker("live")}
    items.sort(key=lambda item: (
        _rank_by_length(*SHARING.get(item.path.name, (item.path.name,))),
        not SHARED_STACKS.keys() & set(getattr(item, "fixturenames", ())),
        _rank_by_length(item.path.name),
        item.path not in live_modules,
    ))
    for fixture, modules in SHARED_STACKS.items():
        unlisted = {item.path.name for item in items if fixture in getattr(item, "fixturenames", ())} - modules
        if unlisted:
            raise pytest.UsageError(f"{', '.join(sorted(unlisted))} use {fixture}: add them to SHARED_STACKS")


# The fixtures of stacks that several modules share, and those modules: `./dev test` gives each
# group to one process, so that the stack starts once, not once in each process taking a module.
SHARED_STACKS = {
    "own_stack": {"test_faults.py", "test_postgres.py", "test_security_terraform.py"},
    "mchub_up": {"test_ui_e2e.py", "test_identity.py", "test_service_manager.py"},
}
SHARING = {module: tuple(modules) for modules in SHARED_STACKS.values() for module in modules}


class ModulesSharingAStack(LoadFileScheduling):
    """xdist's loadfile (each module whole to one process), a group in SHARED_STACKS as one."""

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return " + ".join(sorted(SHARING.get(Path(module).name, (module,))))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    return ModulesSharingAStack(config, log) if config.getvalue("dist") == "loadfile" else None


# The longest modules, longest first, as measured in a full run in two processes (seconds of
# the 1019 all took): only the order in which the processes take them depends on it.
LONGEST_MODULES = [
    "test_flows.py",  # 210
    "test_ui_e2e.py",  # 105
    "test_two_machines.py",  # 87
    "test_security_terraform.py",  # 79
    "test_identity.py",  # 69
    "test_drift.py",  # 66
    "test_faults.py",  # 58
    "test_platform.py",  # 52
    "test_notifications.py",  # 49
    "test_security_prefect.py",  # 40
    "test_service_manager.py",  # 37
]


def _rank_by_length(*modules: str) -> int:
    """The rank of the longest of `modules`."""
    return min(LONGEST_MODULES.index(module) if module in LONGEST_MODULES else len(LONGEST_MODULES) for module in modules)


@pytest.fixture(scope="session")
def sandbox_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxCloud]:
    """One sandbox for the whole session, with boot_seconds 0 (also after a reset)."""
    workdir = tmp_path_factory.mktemp("sandbox")
    cloud = start_sandbox(workdir / "data", workdir)
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module", autouse=True)
def empty_cloud_for_each_module(request: pytest.FixtureRequest) -> None:
    """A module that uses the session's sandbox starts on it reset: what the modules before it
    left there (clusters holding quota, knobs) depends on the order in which the modules were
    shared out between the test processes, and must not decide the module's results."""
    module = request.node
    if any("sandbox_cloud" in getattr(item, "fixturenames", ()) for item in module.session.items if item.module is module.obj):
        request.getfixturevalue("sandbox_cloud").reset()


@pytest.fixture
def clean_sandbox(sandbox_cloud: SandboxCloud) -> SandboxCloud:
    """The session's sandbox, reset: no servers, volumes or floating IPs; default knobs and quotas."""
    sandbox_cloud.reset()
    return sandbox_cloud


@pytest.fixture
def fresh(hub: Any, clean_sandbox: SandboxCloud) -> Any:
    """The module's `hub` (test_lifecycle.Hub: MC Hub's settings on the sandbox) on the
    session's sandbox reset to no servers, volumes or floating IPs and default knobs."""
    return hub


@pytest.fixture
def sandbox_launcher(tmp_path: Path) -> Iterator[Callable[[Path], SandboxCloud]]:
    """Start extra sandboxes on a given data dir (e.g. to restart one); all stop after the test."""
    started: list[SandboxCloud] = []

    def launch(data_dir: Path) -> SandboxCloud:
        cloud = start_sandbox(data_dir, tmp_path / f"run{len(started)}")
        started.append(cloud)
        return cloud

    yield launch
    for cloud in started:
        cloud.stop()


@pytest.fixture(scope="session")
def live_stack(sandbox_cloud: SandboxCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The Prefect part of MC Hub on the session's sandbox. Its flows and this process share
    its settings while the session lasts (MCHUB_* in the environment, Prefect's client's), so
    `mchub.orchestration.runs` and `mchub.cluster.lifecycle` called from a test act on the same
    server and folders as the flows."""
    with prefect_part(tmp_path_factory.mktemp("mchub-home"), sandbox_cloud) as stack, acting_on(stack):
        yield stack


@pytest.fixture(scope="session")
def own_stack(
    live_stack: LiveStack, sandbox_cloud: SandboxCloud, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """A second Prefect part on the session's sandbox, for the tests that kill and restart its
    parts, so that the session's, which the other tests use, is never touched. Its Prefect
    database is PostgreSQL (tests/postgres.py), new for the session, when PostgreSQL answers,
    so that those tests prove both database modes; else SQLite (in CI, PostgreSQL must answer)."""
    url = postgres.new_database_url() if postgres.required(skip=False) else None
    database = {"database_url": url} if url else {}
    try:
        with prefect_part(tmp_path_factory.mktemp("own-stack"), sandbox_cloud, **database) as stack:
            yield stack
    finally:
        if url:
            postgres.drop(postgres.database_of(url))


@pytest.fixture
def on_own_stack(own_stack: LiveStack) -> Iterator[LiveStack]:
    """The own stack, with this process acting on it for the test."""
    with acting_on(own_stack):
        yield own_stack


class KeptBetweenModules:
    """`mchub up`, started for the first test that asks for it and kept for the next ones,
    whatever their module; stopped after the last one in a row (pytest_runtest_teardown)
    rather than at the session's end: idle, it would still take CPU from the tests after it."""

    running: LiveStack | None = None
    _stop: ExitStack | None = None

    @classmethod
    def get(cls, home: Callable[[], Path]) -> LiveStack:
        if cls.running is None:
            with ExitStack() as starting:
                cls.running = starting.enter_context(whole_product(home()))
                cls._stop = starting.pop_all()
        return cls.running

    @classmethod
    def stop(cls) -> None:
        if cls._stop is not None:
            cls.running, stop, cls._stop = None, cls._stop, None
            stop.close()


@pytest.fixture(scope="module")
def mchub_up(tmp_path_factory: pytest.TempPathFactory) -> LiveStack:
    """The whole product (tests/harness.py, `whole_product`), shared by the tests that follow
    each other: each module sets the sandbox's knobs it needs, and its clusters stay there."""
    return KeptBetweenModules.get(lambda: tmp_path_factory.mktemp("mchub-up"))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if "mchub_up" in getattr(item, "fixturenames", ()) and "mchub_up" not in getattr(nextitem, "fixturenames", ()):
        KeptBetweenModules.stop()


def pytest_sessionfinish() -> None:
    KeptBetweenModules.stop()


FAILED_PAGES = Path(__file__).resolve().parent.parent / "build" / "screenshots" / "failed"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A browser test that fails leaves a screenshot of its page as it was then, in FAILED_PAGES."""
    report = yield
    opened = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and isinstance(opened, Page) and not opened.is_closed():
        FAILED_PAGES.mkdir(parents=True, exist_ok=True)
        path = FAILED_PAGES / f"{item.name}.png"
        opened.screenshot(path=path, full_page=True)
        report.sections.append(("screenshot", f"the page when the test failed: {path}"))
    return report


def launch_chromium(chromium: BrowserType, *args: str) -> Browser:
    """Headless Chromium: Debian's if installed (Playwright's own download is not always
    possible), else Playwright's (`python -m playwright install chromium`); `args` added to its
    command line. Without a GPU process (there is no GPU): the pages' tests take 8 % less CPU."""
    return chromium.launch(
        executable_path=os.environ.get("MCHUB_CHROMIUM") or shutil.which("chromium"),
        args=["--no-sandbox", "--headless", "--disable-background-networking", "--disable-gpu", *args],
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright.chromium)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new tab in a context of its own, tall enough for a whole form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()
