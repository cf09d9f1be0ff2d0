"""The Prefect platform for tests: a real Prefect server (mchub.orchestration.prefect_server), the
deployments of prefect.yaml and a process worker, started once per session with the same
code as `mchub up`.

Use the `prefect_stack` fixture: the worker's flow runs and this test process share its
settings (MCHUB_* in the environment while the session lasts: clusters dir, the sandbox's
clouds.yaml, the API URL and its credential), so `mchub.orchestration.runs` and `mchub.cluster.lifecycle`
called from a test act on the same server and folders as the flows, and Prefect's own
clients in the test process (get_client, Flow.deploy) send the server's credential.
"""

import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mchub.orchestration.stack import Stack, child_env, prefect_parts, worker_name
from mchub.settings import Settings, get_settings
from sandbox.launcher import SandboxCloud


def pytest_configure(config: pytest.Config) -> None:
    # Importing prefect creates its home; keep it out of ~/.prefect (the server's own home
    # is the session's temporary folder, set for its processes by child_env).
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="mchub-test-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@dataclass
class PrefectStack:
    api_url: str
    settings: Settings
    """The settings the worker's flows run with (also this process's, while the session lasts)."""
    sandbox: SandboxCloud
    log_dir: Path
    """Logs of the server, the deployment step and the worker."""
    worker: str

    @property
    def clusters_dir(self) -> Path:
        return self.settings.clusters_dir

    def client(self, **httpx_settings: Any) -> Any:
        """A new client of the server (a `SyncPrefectClient`; use it in a `with` block)."""
        from mchub.orchestration import runs

        return runs.connect(self.api_url, httpx_settings or None)

    def http_auth(self) -> Any:
        """httpx's `auth` for plain requests to the server: its credential, and the CSRF token
        it asks of every write."""
        from mchub.orchestration import prefect_auth

        return prefect_auth.PrefectAuth(self.api_url, prefect_auth.auth_string(self.settings))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def platform_settings(home: Path, sandbox_cloud: SandboxCloud) -> Settings:
    """Settings of a platform of its own under `home` (on a free port), building on the sandbox."""
    settings = Settings(
        home=home,
        clusters_dir=home / "clusters",
        clouds_yaml=sandbox_cloud.clouds_yaml,
        sandbox_port=sandbox_cloud.port,
        sandbox_boot_seconds=0,
        prefect_api_url=f"http://127.0.0.1:{_free_port()}/api",
    )
    settings.clusters_dir.mkdir()
    return settings


@pytest.fixture(scope="session")
def prefect_stack(sandbox_cloud: SandboxCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("mchub-home")
    settings = platform_settings(home, sandbox_cloud)
    env = child_env(settings)
    stack = Stack(env=env, log_dir=home / "logs")
    prefect_client = {PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"]}
    with pytest.MonkeyPatch.context() as patch, temporary_settings(prefect_client):
        for key in [k for k in env if k.startswith("MCHUB_")] + ["PREFECT_API_URL", "PREFECT_API_AUTH_STRING"]:
            patch.setenv(key, env[key])
        get_settings.cache_clear()
        try:
            for part in prefect_parts(settings):
                stack.start(part)
            yield PrefectStack(
                api_url=settings.prefect_api_url,
                settings=settings,
                sandbox=sandbox_cloud,
                log_dir=stack.log_dir,
                worker=worker_name(),
            )
        finally:
            stack.stop()
            get_settings.cache_clear()
