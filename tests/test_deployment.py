"""The deployment recipe (docs/deployment.md) as files a person installs: the systemd unit
must be one systemd accepts, start `mchub up` from the clone's venv, set only settings MC
Hub has (with values it accepts), and give `mchub up` the time it takes to stop; behind a
reverse proxy, the pages answer to the public address."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mchub.orchestration import identity
from mchub.orchestration.stack import ROOT, STOP_SECONDS, stack_parts, web_pages
from mchub.settings import Settings

UNIT = ROOT / "deploy" / "mchub.service"
WORKER_UNIT = ROOT / "deploy" / "mchub-worker.service"
UNITS = {UNIT: "up", WORKER_UNIT: "worker"}
"""Each unit, and the `mchub` command it runs."""
INSTALLED_AT = "/opt/mchub"


def unit_lines(section: str, unit: Path = UNIT) -> list[tuple[str, str]]:
    """The `key=value` lines of one section, in order (systemd repeats keys such as Environment)."""
    lines, current = [], None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif line and not line.startswith("#") and current == section:
            key, _, value = line.partition("=")
            lines.append((key, value))
    return lines


def unit_settings(unit: Path) -> Settings:
    environment = dict(value.split("=", 1) for key, value in unit_lines("Service", unit) if key == "Environment")
    fields = {name.removeprefix("MCHUB_").lower(): value for name, value in environment.items()}
    assert set(fields) <= set(Settings.model_fields), f"not settings of MC Hub: {set(fields) - set(Settings.model_fields)}"
    return Settings(**fields)  # refused values raise, naming the variable


def test_the_units_set_only_settings_mchub_has_with_values_it_accepts() -> None:
    hub, worker = unit_settings(UNIT), unit_settings(WORKER_UNIT)
    assert hub.database_url is not None, "a shared hub keeps Prefect's database in PostgreSQL"
    assert hub.cloud != "sandbox" and worker.cloud == hub.cloud, "a deployed hub builds on a real cloud"
    # Workers elsewhere reach the hub's Prefect through the proxy, and the same store by TLS.
    assert worker.prefect_api_url.startswith("https://") and worker.shared_store_url is not None
    assert "sslmode=verify-full" in worker.shared_store_url.get_secret_value()
    assert hub.shared_store_url is not None
    assert hub.worker_name != worker.worker_name
    assert (worker.home, worker.clusters_dir) == (hub.home, hub.clusters_dir)  # the same paths on every machine


@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_runs_mchub_from_the_clone_and_waits_for_it_to_stop(unit: Path) -> None:
    service = dict(unit_lines("Service", unit))
    assert service["WorkingDirectory"] == INSTALLED_AT
    assert service["ExecStart"] == f"{INSTALLED_AT}/.venv/bin/mchub {UNITS[unit]}"
    assert float(service["TimeoutStopSec"]) > STOP_SECONDS + 5
    assert service["UMask"] == "0077"


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_accepts_the_unit(tmp_path: Path, unit: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # As installed in this clone, with the venv these tests run in, which holds `mchub`.
    venv_bin = Path(sys.executable).parent
    installed = tmp_path / unit.name
    installed.write_text(unit.read_text().replace(f"{INSTALLED_AT}/.venv/bin", str(venv_bin)).replace(INSTALLED_AT, str(ROOT)))
    checked = subprocess.run([analyze, "verify", str(installed)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_mchub_up_starts_the_sandbox_only_for_clusters_built_on_it(tmp_path: Path) -> None:
    def parts(cloud: str) -> list[str]:
        return [part.name for part in stack_parts(Settings(home=tmp_path, cloud=cloud))]

    assert parts("sandbox")[0] == "sandbox cloud"
    assert "sandbox cloud" not in parts("my-project")
    assert parts("my-project") == parts("sandbox")[1:]


def test_behind_a_reverse_proxy_the_sign_in_returns_to_the_public_address_and_the_pages_accept_its_name(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, public_url="https://mchub.example.org/")
    assert identity.pages_url(settings) == "https://mchub.example.org"
    assert 'redirect_uri = "https://mchub.example.org/oauth2callback"' in identity.write_secrets(settings).read_text()
    pages = web_pages(settings)
    allowed = [pages.argv[i + 1] for i, word in enumerate(pages.argv) if word == "--server.allowedHosts"]
    assert allowed == ["127.0.0.1", "localhost", "mchub.example.org"]
    assert pages.url == "https://mchub.example.org/create-cluster"  # what `mchub up` prints
    assert pages.argv[pages.argv.index("--server.address") + 1] == "127.0.0.1"  # for the proxy alone to reach

    local = Settings(home=tmp_path, ui_port=5001)
    assert identity.pages_url(local) == "http://localhost:5001"


@pytest.mark.parametrize("address", [
    "mchub.example.org", "ftp://mchub.example.org", "https://mchub.example.org/hub", "https://user:pw@mchub.example.org",
    "https://mchub.example.org/?next=x", "https://",
])
def test_a_public_address_that_is_not_an_origin_is_refused_naming_the_form(tmp_path: Path, address: str) -> None:
    with pytest.raises(ValidationError, match=r"public_url[\s\S]*as https://HOST\[:PORT\] with no path"):
        Settings(home=tmp_path, public_url=address)
