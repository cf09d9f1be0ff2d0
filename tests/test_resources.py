"""Available resources of a cloud project, read with openstacksdk from the real sandbox cloud."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mchub.cloud import connection
from mchub.cloud.connection import CloudError
from mchub.cloud.resources import ResourceReader

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_reader(clean_sandbox):
    """A reader with no cache, on a new connection to the reset sandbox."""
    connection.forget()
    return ResourceReader("sandbox", clean_sandbox.clouds_yaml)


def test_flavors_come_with_vcpus_ram_disk_and_gpus(fresh_reader):
    flavors = {f.name: f for f in fresh_reader.read().flavors}
    assert (flavors["p2-3gb"].vcpus, flavors["p2-3gb"].ram_mb, flavors["p2-3gb"].disk_gb) == (2, 3072, 0)
    assert (flavors["c16-60gb"].vcpus, flavors["c16-60gb"].disk_gb) == (16, 20)
    assert flavors["g1-8gb-c4-22gb"].gpus == 1
    assert flavors["p2-3gb"].gpus == 0
    assert flavors["p2-3gb"].label == "p2-3gb (2 vCPU, 3 GB RAM)"


def test_only_images_a_cluster_can_use_are_offered(fresh_reader):
    names = [image.name for image in fresh_reader.read().images]
    # Ubuntu, Windows, CentOS 7 and a deactivated Rocky image exist on the cloud but are filtered out.
    assert names == ["AlmaLinux-9", "Rocky-8", "Rocky-9"]


def test_quotas_show_used_and_limit_and_follow_usage(fresh_reader, clean_sandbox):
    before = fresh_reader.read().quotas
    assert (before.cores.used, before.cores.limit, before.cores.free) == (0, 64, 64)
    assert (before.floating_ips.used, before.floating_ips.limit) == (0, 5)

    conn = clean_sandbox.connect()
    image = conn.image.find_image("Rocky-9", ignore_missing=False)
    conn.compute.create_server(name="probe", flavor_id="p4-6gb", image_id=image.id, networks="auto")
    conn.block_storage.create_volume(name="data", size=30)

    after = fresh_reader.read(fresh_quotas=True).quotas
    assert (after.instances.used, after.cores.used, after.ram.used) == (1, 4, 6144)
    assert (after.volumes.used, after.volume_gb.used, after.volume_gb.free) == (1, 30, 1970)


def test_quota_usage_is_reused_within_its_cache_time_unless_asked_fresh(fresh_reader, clean_sandbox):
    assert fresh_reader.read().quotas.volumes.used == 0
    clean_sandbox.connect().block_storage.create_volume(name="data", size=1)
    assert fresh_reader.read().quotas.volumes.used == 0  # cached: the form does not hammer the cloud
    assert fresh_reader.read(fresh_quotas=True).quotas.volumes.used == 1


def test_a_wrong_password_says_to_check_the_credentials(clean_sandbox, tmp_path):
    bad = tmp_path / "clouds.yaml"
    bad.write_text(clean_sandbox.clouds_yaml.read_text().replace("sandbox-password", "wrong-password"))
    connection.forget()
    with pytest.raises(CloudError, match="refused the credentials"):
        ResourceReader("sandbox", bad).read()


def test_an_unreachable_cloud_says_so_with_its_address(clean_sandbox, tmp_path):
    down = tmp_path / "clouds.yaml"
    down.write_text(clean_sandbox.clouds_yaml.read_text().replace(str(clean_sandbox.port), "9"))
    connection.forget()
    with pytest.raises(CloudError, match=r"cannot be reached at http://127\.0\.0\.1:9/identity"):
        ResourceReader("sandbox", down).read()


def test_an_unknown_cloud_name_says_where_to_configure_it(clean_sandbox):
    with pytest.raises(CloudError, match="cloud 'nowhere' is not configured: add it to"):
        ResourceReader("nowhere", clean_sandbox.clouds_yaml).read()


def test_a_cloud_failing_midway_is_reported_with_what_was_asked(fresh_reader, clean_sandbox):
    fresh_reader.read()
    clean_sandbox.set_knobs(fail_next_requests=10)
    with pytest.raises(CloudError, match="did not give its quotas"):
        fresh_reader.read(fresh_quotas=True)


def test_mchub_resources_prints_them_for_a_person(clean_sandbox):
    result = subprocess.run(
        [sys.executable, "-m", "mchub.cli", "resources", "--cloud", "sandbox"],
        env={**_env(), "MCHUB_CLOUDS_YAML": str(clean_sandbox.clouds_yaml)},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "c16-60gb" in result.stdout and "16 vCPU" in result.stdout
    assert "Rocky-9" in result.stdout and "Ubuntu" not in result.stdout
    assert "cores" in result.stdout and "0 vCPU / 64 vCPU, 64 vCPU free" in result.stdout



def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MCHUB_", "OS_"))}
