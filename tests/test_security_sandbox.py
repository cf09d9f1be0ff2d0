"""Hostile requests to the sandbox cloud, over real HTTP: each gets a 4xx in its OpenStack service's
shape (never a 500, never a traceback), its admin API refuses strangers, and its files are private.

Every test here failed on the sandbox of commit 9ab0153 (issue 13, finding 5).
"""

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import accounts
from sandbox.__main__ import main as sandbox_command
from sandbox.catalog import PUBLIC_NETWORK
from sandbox.launcher import free_port

ROOT = Path(__file__).resolve().parent.parent
EVIL_ORIGIN = "http://evil.example"
MIB = 1024 * 1024


def assert_no_traceback(response: httpx.Response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:500]


def _login(url: str) -> str:
    credentials = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": accounts.USER_NAME, "domain": {"id": "default"}, "password": accounts.PASSWORD}
            },
        },
        "scope": {"project": {"id": accounts.PROJECT_ID}},
    }
    response = httpx.post(f"{url}/identity/v3/auth/tokens", json={"auth": credentials}, timeout=10)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


@pytest.fixture
def cloud(clean_sandbox) -> Iterator[httpx.Client]:
    """Plain HTTP to the (reset) session sandbox, with a valid Keystone token."""
    with httpx.Client(
        base_url=clean_sandbox.url, headers={"X-Auth-Token": _login(clean_sandbox.url)}, timeout=30
    ) as client:
        yield client


def _server(**fields: Any) -> dict:
    return {"server": {"name": "mgmt1", "flavorRef": "p2-3gb", "imageRef": "Rocky-9", **fields}}


def _volume(**fields: Any) -> dict:
    return {"volume": {"size": 10, "name": "home", **fields}}


def _floating_ip(**fields: Any) -> dict:
    return {"floatingip": {"floating_network_id": PUBLIC_NETWORK.id, **fields}}


def _chunks(total: int) -> Callable[[], Iterator[bytes]]:
    # A body sent in chunks, with no Content-Length for the server to check first.
    return lambda: (b" " * 65536 for _ in range(total // 65536))


@dataclass(frozen=True)
class Attack:
    method: str
    path: str
    status: int
    says: str  # what the answer's message must say
    json: Any = None
    content: Callable[[], Any] | None = None
    headers: dict[str, Any] = field(default_factory=dict)


ATTACKS = {
    "non-ASCII token": Attack(
        "GET", "/compute/v2.1/servers", 401, "requires authentication", headers={"X-Auth-Token": "abc.\xe9".encode()}
    ),
    "non-ASCII token to validate": Attack(
        "GET", "/identity/v3/auth/tokens", 404, "Could not find token", headers={"X-Subject-Token": b"abc.\xc3\xa9"}
    ),
    "IPv6 floating address": Attack(
        "POST", "/networking/v2.0/floatingips", 400, "only an IPv4 subnet", _floating_ip(floating_ip_address="::1")
    ),
    "fixed address that is no address": Attack(
        "POST", "/networking/v2.0/floatingips", 400, "fixed_ip_address", _floating_ip(fixed_ip_address="../../x")
    ),
    "floating IP description of 256 characters": Attack(
        "POST", "/networking/v2.0/floatingips", 400, "floatingip.description", _floating_ip(description="d" * 256)
    ),
    "129 metadata items": Attack(
        "POST", "/compute/v2.1/servers", 400, "server.metadata", _server(metadata={f"k{i}": "v" for i in range(129)})
    ),
    "metadata value of 256 characters": Attack(
        "POST", "/compute/v2.1/servers", 400, "server.metadata", _server(metadata={"cluster": "v" * 256})
    ),
    "metadata key of 256 characters": Attack(
        "POST", "/compute/v2.1/servers", 400, "server.metadata", _server(metadata={"k" * 256: "v"})
    ),
    "server name with NUL": Attack(
        "POST", "/compute/v2.1/servers", 400, "server.name", _server(name="mgmt\x001")
    ),
    "server name with a line separator": Attack(
        "POST", "/compute/v2.1/servers", 400, "server.name", _server(name="mgmt\u20281")
    ),
    "volume description of 100 000 characters": Attack(
        "POST", "/volume/v3/volumes", 400, "volume.description", _volume(description="d" * 100_000)
    ),
    "volume metadata of 129 items": Attack(
        "POST", "/volume/v3/volumes", 400, "volume.metadata", _volume(metadata={f"k{i}": "v" for i in range(129)})
    ),
    "volume size true": Attack("POST", "/volume/v3/volumes", 400, "volume.size", _volume(size=True)),
    "volume size past a 32-bit integer": Attack("POST", "/volume/v3/volumes", 400, "volume.size", _volume(size=2**31)),
    "microversion of 5000 digits": Attack(
        "GET",
        "/compute/v2.1/flavors",
        400,
        "Invalid API version",
        headers={"OpenStack-API-Version": "compute 2." + "9" * 5000},
    ),
    "body of 2 MiB": Attack(
        "POST", "/compute/v2.1/servers", 413, "too large", _server(metadata={"cluster": "x"}, description="d" * 2 * MIB)
    ),
    "chunked body of 2 MiB": Attack(
        "POST", "/volume/v3/volumes", 413, "too large", content=_chunks(2 * MIB),
        headers={"Content-Type": "application/json"},
    ),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_hostile_request_gets_a_4xx_that_says_why(cloud, attack):
    response = cloud.request(
        attack.method,
        attack.path,
        json=attack.json,
        content=attack.content() if attack.content else None,
        headers=attack.headers,
    )
    assert response.status_code == attack.status, response.text[:500]
    assert attack.says in response.text
    assert_no_traceback(response)
    assert cloud.get("/compute/v2.1/servers").json()["servers"] == []


BAD_KNOBS = {
    "latency of 1e308 s": (b'{"latency_seconds": 1e308}', "latency_seconds"),
    "latency of NaN": (b'{"latency_seconds": NaN}', "latency_seconds"),
    "negative latency": (b'{"latency_seconds": -1}', "latency_seconds"),
    "boot time of Infinity": (b'{"boot_seconds": Infinity}', "boot_seconds"),
    "failures counted as true": (b'{"fail_next_requests": true}', "fail_next_requests"),
    "a quota of 10^12 cores": (b'{"quotas": {"cores": 1000000000000}}', "quotas.cores"),
}


@pytest.mark.parametrize(("body", "knob"), BAD_KNOBS.values(), ids=BAD_KNOBS.keys())
def test_an_out_of_bounds_knob_is_refused_naming_it_and_changes_nothing(clean_sandbox, body, knob):
    admin = clean_sandbox.admin()
    before = admin.get("/knobs").json()
    response = admin.put("/knobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert [problem["field"] for problem in response.json()["detail"]] == [knob]
    assert_no_traceback(response)
    assert admin.get("/knobs").json() == before


ADMIN_REFUSALS = {
    # A web page's form or fetch: the browser names the page's origin, and a page cannot read the token.
    "another origin, even with the token": ({"Origin": EVIL_ORIGIN}, True, 403),
    "a sandboxed page (origin null), even with the token": ({"Origin": "null"}, True, 403),
    "no token": ({}, False, 401),
    "a wrong token": ({"X-Sandbox-Admin-Token": "guess"}, False, 401),
    "a non-ASCII token": ({"X-Sandbox-Admin-Token": "\xe9".encode()}, False, 401),
}


@pytest.mark.parametrize(("headers", "with_token", "status"), ADMIN_REFUSALS.values(), ids=ADMIN_REFUSALS.keys())
def test_admin_reset_is_refused_and_the_cloud_is_intact(clean_sandbox, cloud, headers, with_token, status):
    assert cloud.post("/volume/v3/volumes", json=_volume()).status_code == 202
    post = clean_sandbox.admin().post if with_token else httpx.post
    path = "/reset" if with_token else f"{clean_sandbox.url}/sandbox/admin/reset"
    # text/plain: what a cross-site form may send without asking the server first.
    response = post(path, headers={**headers, "Content-Type": "text/plain"}, content=b"x")
    assert response.status_code == status, response.text
    assert_no_traceback(response)
    assert len(cloud.get("/volume/v3/volumes").json()["volumes"]) == 1


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_mchub_sandbox_keeps_clouds_yaml_state_and_keys_private(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    env = {**os.environ, "MCHUB_HOME": str(home), "MCHUB_SANDBOX_PORT": str(port)}
    env.pop("MCHUB_CLOUDS_YAML", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mchub.cli", "sandbox"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "mchub sandbox did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        data = home / "sandbox"
        assert _mode(home / "clouds.yaml") == 0o600
        assert _mode(home) == 0o700
        assert _mode(data) == 0o700
        assert sorted(p.name for p in data.iterdir() if _mode(p) != 0o600) == []
        assert (data / "state.json").exists()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def test_a_state_file_left_readable_by_an_older_sandbox_is_closed_at_start(sandbox_launcher, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "state.json").write_text("{}")
    (data / "state.json").chmod(0o644)
    sandbox_launcher(data)
    assert _mode(data) == 0o700
    assert _mode(data / "state.json") == 0o600


def test_an_unexpected_error_answers_the_services_500_and_only_the_log_has_the_traceback(sandbox_launcher, tmp_path):
    data = tmp_path / "data"
    sandbox = sandbox_launcher(data)
    # The state can no longer be saved: a failure no request was meant to meet.
    (data / "state.json").unlink()
    (data / "state.json").mkdir()
    response = httpx.post(
        f"{sandbox.url}/volume/v3/volumes", json=_volume(), headers={"X-Auth-Token": _login(sandbox.url)}, timeout=10
    )
    assert response.status_code == 500
    assert_no_traceback(response)
    assert "erred" in response.json()["computeFault"]["message"]
    sandbox.stop()
    log = next(tmp_path.glob("run0/sandbox-*.log")).read_text()
    assert "Traceback" in log and "IsADirectoryError" in log


@pytest.mark.parametrize("boot_seconds", ["inf", "nan", "1e308", "-1"])
def test_a_boot_time_out_of_bounds_stops_the_start_with_a_message(tmp_path, capsys, boot_seconds):
    # `python -m sandbox` in this process, on a port held here: a start that got past the check
    # would stop at the port, saying so, rather than serve.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        code = sandbox_command(["--port", port, "--data-dir", str(tmp_path / "data"), f"--boot-seconds={boot_seconds}"])
    said = capsys.readouterr().err
    assert code == 1
    assert "the boot time must be a number of seconds from 0 to 86400" in said
    assert "Traceback" not in said
