"""Quota arithmetic: what a cluster takes from a project, checked against the real sandbox's quotas."""

from pathlib import Path

import pytest

from mchub.cloud import connection
from mchub.cloud.quota import (
    Allocation,
    UnknownFlavor,
    allocation_of,
    check_quota,
    quota_lines,
)
from mchub.cloud.resources import ResourceReader
from mchub.spec.model import ClusterSpec, load_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster.yaml"


@pytest.fixture
def resources(clean_sandbox):
    connection.forget()
    return ResourceReader("sandbox", clean_sandbox.clouds_yaml).read()


def _spec(**changes) -> ClusterSpec:
    """examples/cluster.yaml (mgmt p4-6gb, login p2-3gb, 2 nodes p2-3gb, 3 × 50 GB) with changes."""
    spec = load_spec(EXAMPLE)
    return spec.model_copy(update=changes)


def _with_nodes(count: int, flavor: str = "p2-3gb") -> ClusterSpec:
    spec = _spec()
    node = spec.instances["node"].model_copy(update={"count": count, "type": flavor})
    return spec.model_copy(update={"instances": {**spec.instances, "node": node}})


def test_a_row_counts_count_times_its_flavor(resources):
    flavors = {f.name: f for f in resources.flavors}
    five = allocation_of(_with_nodes(5, "c8-30gb"), flavors)
    # mgmt 4 vCPU + login 2 vCPU + 5 × 8 vCPU; the original counted a row of 5 once.
    assert (five.instances, five.cores, five.ram) == (7, 46, 6144 + 3072 + 5 * 30720)


def test_instances_without_a_root_disk_get_a_10_gb_boot_volume(resources):
    flavors = {f.name: f for f in resources.flavors}
    small = allocation_of(_with_nodes(2, "p2-3gb"), flavors)  # p-flavors: disk 0 → boot volumes
    large = allocation_of(_with_nodes(2, "c8-30gb"), flavors)  # c-flavors: 20 GB root disk
    assert (small.volumes, small.volume_gb) == (3 + 4, 150 + 4 * 10)
    assert (large.volumes, large.volume_gb) == (3 + 2, 150 + 2 * 10)


def test_only_public_instances_need_a_floating_ip(resources):
    flavors = {f.name: f for f in resources.flavors}
    assert allocation_of(_spec(), flavors).floating_ips == 1


def test_an_unknown_flavor_names_the_row(resources):
    with pytest.raises(UnknownFlavor, match="instances.node.type: 'x9-huge' is not a flavor"):
        allocation_of(_with_nodes(1, "x9-huge"), {f.name: f for f in resources.flavors})


def test_a_spec_that_fits_has_no_shortfall(resources):
    assert check_quota(_spec(), resources) == []


def test_every_shortfall_is_reported_in_words(clean_sandbox):
    clean_sandbox.set_knobs(quotas={"cores": 8, "floating_ips": 0, "gigabytes": 100})
    connection.forget()
    resources = ResourceReader("sandbox", clean_sandbox.clouds_yaml).read()
    messages = [s.message for s in check_quota(_with_nodes(2, "c8-30gb"), resources)]
    assert messages == [
        "cores: the cluster needs 22 vCPU, the project has 8 vCPU free",
        "volume storage: the cluster needs 170 GB, the project has 100 GB free",
        "floating IPs: the cluster needs 1, the project has 0 free",
    ]


def test_what_the_cluster_already_holds_counts_as_available_to_its_modification(clean_sandbox):
    # The project has 64 cores; others use none, this cluster holds 22 (mgmt, login, 2 × c8).
    clean_sandbox.set_knobs(quotas={"cores": 30})
    conn = clean_sandbox.connect()
    image = conn.image.find_image("Rocky-9", ignore_missing=False)
    for flavor in ["p4-6gb", "p2-3gb", "c8-30gb", "c8-30gb"]:
        conn.compute.create_server(name="held", flavor_id=flavor, image_id=image.id, networks="auto")
    connection.forget()
    resources = ResourceReader("sandbox", clean_sandbox.clouds_yaml).read()
    held = allocation_of(_with_nodes(2, "c8-30gb"), {f.name: f for f in resources.flavors})

    # Growing to 3 nodes needs 8 more cores; 30 - 22 = 8 are free: it fits only with `held`.
    assert check_quota(_with_nodes(3, "c8-30gb"), resources, held) == []
    without_held = [s.message for s in check_quota(_with_nodes(3, "c8-30gb"), resources)]
    assert "cores: the cluster needs 30 vCPU, the project has 8 vCPU free" in without_held

    too_big = check_quota(_with_nodes(4, "c8-30gb"), resources, held)
    assert [s.message for s in too_big] == [
        "cores: the cluster needs 38 vCPU, the project has 30 vCPU free "
        "(counting the 22 vCPU this cluster already holds)"
    ]


def test_quota_lines_split_used_by_others_this_cluster_and_free(clean_sandbox):
    conn = clean_sandbox.connect()
    image = conn.image.find_image("Rocky-9", ignore_missing=False)
    for flavor in ["c16-60gb", "p4-6gb"]:  # 16 cores for another cluster, 4 for this one's mgmt
        conn.compute.create_server(name="used", flavor_id=flavor, image_id=image.id, networks="auto")
    connection.forget()
    resources = ResourceReader("sandbox", clean_sandbox.clouds_yaml).read()
    lines = {line.quota.name: line for line in quota_lines(_spec(), resources, Allocation(cores=4))}
    cores = lines["cores"]
    assert (cores.used_by_others, cores.held, cores.needed, cores.available) == (16, 4, 10, 48)
    assert list(lines) == ["instances", "cores", "ram", "volumes", "volume storage", "floating IPs"]
