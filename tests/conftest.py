"""Shared fixtures: the sandbox cloud, started once per test session as a real service on loopback."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.launcher import SandboxCloud, start_sandbox

pytest_plugins = ["tests.conftest_prefect"]  # the real Prefect server, deployments and worker

# Fixtures that start a live stack (Prefect's server, worker and engines, or all of `mchub up`):
# a test using one, directly or through another fixture, is in the `live` tier, which
# `./dev test --fast` leaves out. A module that starts one itself says `pytestmark = pytest.mark.live`.
LIVE_FIXTURES = {"prefect_stack"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)

@pytest.fixture(scope="session")
def sandbox_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxCloud]:
    """One sandbox for the whole session, with boot_seconds 0 (also after a reset)."""
    workdir = tmp_path_factory.mktemp("sandbox")
    cloud = start_sandbox(workdir / "data", workdir)
    yield cloud
    cloud.stop()


@pytest.fixture
def clean_sandbox(sandbox_cloud: SandboxCloud) -> SandboxCloud:
    """The session's sandbox, reset: no servers, volumes or floating IPs; default knobs and quotas."""
    sandbox_cloud.reset()
    return sandbox_cloud


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
