"""Start a sandbox cloud as a child process and talk to it: for tests, benchmarks and demos."""

import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openstack.config
from openstack.connection import Connection

from sandbox import admin_token
from sandbox.clouds import write_clouds_yaml

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def admin_client(url: str, data_dir: Path) -> httpx.Client:
    """A client of the admin API of the sandbox at `url` (base_url url + /sandbox/admin) that
    keeps its data in `data_dir`: it sends the admin token found there."""
    return httpx.Client(
        base_url=url + "/sandbox/admin",
        headers={admin_token.ADMIN_TOKEN_HEADER: admin_token.read(data_dir)},
        timeout=10.0,
    )


@dataclass
class SandboxCloud:
    url: str  # http://127.0.0.1:PORT
    port: int
    data_dir: Path
    clouds_yaml: Path  # written by sandbox.clouds.clouds_yaml(); clouds "sandbox" and "sandbox-appcred"
    process: subprocess.Popen | None = field(default=None, repr=False)
    _admin: httpx.Client | None = field(default=None, init=False, repr=False)

    def admin(self) -> httpx.Client:
        """A client of the admin API: base_url is url + /sandbox/admin."""
        if self._admin is None:
            self._admin = admin_client(self.url, self.data_dir)
        return self._admin

    def reset(self) -> None:
        self.admin().post("/reset").raise_for_status()

    def set_knobs(self, **knobs: object) -> None:
        """e.g. set_knobs(boot_seconds=2, quotas={"cores": 48}); quotas may be partial."""
        self.admin().put("/knobs", json=knobs).raise_for_status()

    def connect(self, cloud: str = "sandbox") -> Connection:
        """A new openstacksdk connection to this sandbox, configured only by its clouds.yaml."""
        config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)], load_envvars=False)
        return Connection(config=config.get_one(cloud=cloud))

    def stop(self) -> None:
        """Stop the service as Ctrl-C would (SIGINT), then close the admin client."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.process is not None:
            interrupt(self.process, timeout=10)


def interrupt(process: subprocess.Popen, timeout: float) -> bool:
    """Stop `process`, if it still runs, as Ctrl-C would (SIGINT); kill it if it has not ended
    within `timeout` seconds. False if it had to be killed."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on now (the default ports may be another MC Hub's),
    and none handed out before by this process.

    It lies below the kernel's range for the local ports of outgoing connections: a port from
    that range (what binding port 0 gives) can be taken by any client's connection before the
    server it was chosen for binds it, which then fails with "address already in use"."""
    first_outgoing = _first_outgoing_port()
    if first_outgoing - _LOWEST_PORT < 1000:  # an unusual kernel setting: take the kernel's choice
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    while True:
        port = random.randrange(_LOWEST_PORT, first_outgoing)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


_LOWEST_PORT = 10000  # above the ports that services commonly listen on
_handed_out: set[int] = set()


def _first_outgoing_port(setting: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The start of the kernel's range for the local ports of outgoing connections (Linux's
    default where it cannot be read)."""
    try:
        return int(setting.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def start_sandbox(data_dir: Path, workdir: Path, boot_seconds: float = 0) -> SandboxCloud:
    """Run `python -m sandbox` on a free loopback port and wait until it answers its health check."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "clouds.yaml"
    write_clouds_yaml(config, "127.0.0.1", port)
    log_path = workdir / f"sandbox-{port}.log"
    argv = [sys.executable, "-m", "sandbox", "--port", str(port), "--data-dir", str(data_dir)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*argv, "--boot-seconds", str(boot_seconds)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    cloud = SandboxCloud(
        url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir, clouds_yaml=config, process=process
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with code {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{cloud.url}/sandbox/health", timeout=1.0).status_code == 200:
                return cloud
        except httpx.TransportError:
            time.sleep(0.05)
    cloud.stop()
    raise RuntimeError(f"the sandbox did not answer within {START_TIMEOUT:g} s:\n{log_path.read_text()}")
