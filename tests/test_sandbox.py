"""The sandbox cloud, driven over HTTP by openstacksdk (as the hub drives a real cloud) and httpx."""

import ipaddress
import re
import subprocess
import sys
import time

import httpx
import openstack
import pytest
import yaml
from openstack import exceptions as os_exceptions

from sandbox import accounts, launcher
from sandbox.cluster_services import service_urls

HOSTNAME = "hpc.sandbox.mchub.dev"


@pytest.fixture(scope="module")
def conn(sandbox_cloud):
    """One warm connection for the module: sandbox tokens survive resets, as Fernet tokens would."""
    connection = sandbox_cloud.connect()
    yield connection
    connection.close()


def _create_server(conn, name: str, flavor: str = "p2-3gb", cluster: str | None = None):
    metadata = {"cluster": cluster} if cluster else {}
    image = conn.image.find_image("Rocky-9", ignore_missing=False)
    server = conn.compute.create_server(
        name=name, flavor_id=flavor, image_id=image.id, networks="auto", metadata=metadata
    )
    return conn.compute.wait_for_server(server, wait=5, interval=0.05)


def _public_network_id(conn) -> str:
    return next(conn.network.networks(is_router_external=True)).id


def _public_subnet(conn) -> ipaddress.IPv4Network:
    network = next(conn.network.networks(is_router_external=True))
    return ipaddress.ip_network(conn.network.get_subnet(network.subnet_ids[0]).cidr)


def _compute_usage(conn) -> tuple[int, int, int]:
    limits = conn.compute.get_limits().absolute
    return limits.instances_used, limits.total_cores_used, limits.total_ram_used


# --- what a new project offers -------------------------------------------------------------


def test_flavors_have_the_sizes_of_a_real_alliance_cloud(clean_sandbox, conn):
    flavors = {f.name: (f.vcpus, f.ram, f.disk) for f in conn.compute.flavors(details=True)}
    assert flavors == {
        "p1-1.5gb": (1, 1536, 0),
        "p2-3gb": (2, 3072, 0),
        "p4-6gb": (4, 6144, 0),
        "p8-12gb": (8, 12288, 0),
        "c8-30gb": (8, 30720, 20),
        "c16-60gb": (16, 61440, 20),
        "g1-8gb-c4-22gb": (4, 22528, 20),
    }


def test_gpu_flavor_announces_one_gpu_in_its_extra_specs(clean_sandbox, conn):
    gpu = conn.compute.find_flavor("g1-8gb-c4-22gb", ignore_missing=False)
    assert gpu.extra_specs == {"resources:VGPU": "1"}
    assert "1 GPU" in gpu.description


def test_images_include_ones_a_cluster_cannot_use(clean_sandbox, conn):
    images = {i.name: i.status for i in conn.image.images()}
    assert images == {
        "Rocky-9": "active",
        "AlmaLinux-9": "active",
        "Rocky-8": "active",
        "Ubuntu-24.04": "active",
        "Windows-Server-2022": "active",
        "CentOS-7": "active",
        "Rocky-9-old": "deactivated",
    }


def test_clients_find_flavors_and_images_by_name(clean_sandbox, conn):
    assert conn.compute.find_flavor("p4-6gb", ignore_missing=False).vcpus == 4
    assert conn.image.get_image(conn.image.find_image("AlmaLinux-9", ignore_missing=False)).name == "AlmaLinux-9"


def test_fresh_project_has_the_default_quotas_and_nothing_in_use(clean_sandbox, conn):
    nova = conn.compute.get_limits().absolute
    cinder = conn.block_storage.get_limits().absolute
    neutron = conn.network.get_quota(conn.current_project_id, details=True)
    assert (nova.instances, nova.total_cores, nova.total_ram) == (20, 64, 262144)
    assert (nova.instances_used, nova.total_cores_used, nova.total_ram_used) == (0, 0, 0)
    assert (cinder.max_total_volumes, cinder.max_total_volume_gigabytes) == (20, 2000)
    assert (cinder.total_volumes_used, cinder.total_gigabytes_used) == (0, 0)
    assert neutron.floating_ips == {"used": 0, "limit": 5, "reserved": 0}


def test_only_the_public_network_is_external(clean_sandbox, conn):
    assert [n.name for n in conn.network.networks(is_router_external=True)] == ["Public-Network"]
    assert len(list(conn.network.networks())) == 2


# --- resources and their usage ----------------------------------------------------------------


def test_server_is_active_at_once_with_a_private_address_and_its_metadata(clean_sandbox, conn):
    server = _create_server(conn, "login1", flavor="p2-3gb", cluster=HOSTNAME)
    assert server.status == "ACTIVE"
    assert server.metadata == {"cluster": HOSTNAME}
    assert server.flavor.original_name == "p2-3gb"
    [address] = next(iter(server.addresses.values()))
    assert address["addr"].startswith("10.0.")


def test_build_knob_keeps_new_servers_building_until_it_is_turned_down(clean_sandbox, conn):
    clean_sandbox.set_knobs(build_seconds=300)
    image = conn.image.find_image("Rocky-9", ignore_missing=False)
    server = conn.compute.create_server(name="node1", flavor_id="p2-3gb", image_id=image.id, networks="auto")
    assert conn.compute.get_server(server.id).status == "BUILD"
    assert [s.status for s in conn.compute.servers()] == ["BUILD"]
    clean_sandbox.set_knobs(build_seconds=0)
    assert conn.compute.get_server(server.id).status == "ACTIVE"


def test_metadata_and_names_at_openstacks_limits_are_kept(clean_sandbox, conn):
    # 128 items (Nova's metadata_items quota) of 255-character keys and values, a 255-character name.
    metadata = {f"{i:03d}".ljust(255, "k"): "v" * 255 for i in range(128)}
    server = conn.compute.create_server(
        name="n" * 255, flavor_id="p2-3gb", image_id=conn.image.find_image("Rocky-9").id, networks="auto",
        metadata=metadata,
    )
    assert conn.compute.get_server(server.id).metadata == metadata
    volume = conn.block_storage.create_volume(size=1, name="v" * 255, description="d" * 255, metadata=metadata)
    assert conn.block_storage.get_volume(volume.id).metadata == metadata


def test_server_from_a_deactivated_image_is_refused(clean_sandbox, conn):
    image = conn.image.find_image("Rocky-9-old", ignore_missing=False)
    with pytest.raises(os_exceptions.BadRequestException) as refused:
        conn.compute.create_server(name="node1", flavor_id="p2-3gb", image_id=image.id, networks="auto")
    assert refused.value.details == f"Image {image.id} is not active."
    assert list(conn.compute.servers()) == []


def test_server_create_and_delete_move_instances_cores_and_ram(clean_sandbox, conn):
    server = _create_server(conn, "mgmt1", flavor="p4-6gb")
    assert _compute_usage(conn) == (1, 4, 6144)
    usage = conn.compute.get_quota_set(conn.current_project_id, usage=True).usage
    assert (usage["instances"], usage["cores"], usage["ram"]) == (1, 4, 6144)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=5, interval=0.05)
    assert _compute_usage(conn) == (0, 0, 0)


def test_volume_create_and_delete_move_volumes_and_gigabytes(clean_sandbox, conn):
    volume = conn.block_storage.create_volume(size=100, name="home", metadata={"cluster": HOSTNAME})
    assert (volume.status, volume.size) == ("available", 100)
    cinder = conn.block_storage.get_limits().absolute
    assert (cinder.total_volumes_used, cinder.total_gigabytes_used) == (1, 100)
    usage = conn.block_storage.get_quota_set(conn.current_project_id, usage=True).usage
    assert usage["gigabytes"] == 100
    conn.block_storage.delete_volume(volume)
    assert conn.block_storage.get_limits().absolute.total_gigabytes_used == 0
    assert list(conn.block_storage.volumes()) == []


def test_floating_ip_create_and_delete_move_the_floating_ip_quota(clean_sandbox, conn):
    ip = conn.network.create_ip(floating_network_id=_public_network_id(conn))
    assert ipaddress.ip_address(ip.floating_ip_address) in _public_subnet(conn)
    assert [i.floating_ip_address for i in conn.network.ips()] == [ip.floating_ip_address]
    assert conn.network.get_quota(conn.current_project_id, details=True).floating_ips["used"] == 1
    conn.network.delete_ip(ip)
    assert list(conn.network.ips()) == []
    assert conn.network.get_quota(conn.current_project_id, details=True).floating_ips["used"] == 0


def test_floating_ip_gets_the_address_asked_for_when_it_is_free_on_the_subnet(clean_sandbox, conn):
    network_id = _public_network_id(conn)
    wanted = str(_public_subnet(conn)[1000])
    assert conn.network.create_ip(floating_network_id=network_id, floating_ip_address=wanted).floating_ip_address == wanted
    with pytest.raises(os_exceptions.ConflictException) as taken:
        conn.network.create_ip(floating_network_id=network_id, floating_ip_address=wanted)
    assert taken.value.details.startswith(f"IP address {wanted} already allocated")
    with pytest.raises(os_exceptions.BadRequestException) as elsewhere:
        conn.network.create_ip(floating_network_id=network_id, floating_ip_address="192.0.2.10")
    assert "not a valid IP for any of the subnets" in elsewhere.value.details
    assert len(list(conn.network.ips())) == 1


def test_long_server_lists_are_paged_and_clients_follow_the_pages(clean_sandbox, conn):
    for n in range(3):
        _create_server(conn, f"node{n + 1}", flavor="p1-1.5gb")
    assert sorted(s.name for s in conn.compute.servers(limit=1)) == ["node1", "node2", "node3"]


# --- quotas refused as real clouds refuse them --------------------------------------------------


def test_server_over_the_cores_quota_is_refused_with_novas_403_and_message(clean_sandbox, conn):
    clean_sandbox.set_knobs(quotas={"cores": 48})
    for n in range(5):
        _create_server(conn, f"node{n + 1}", flavor="p8-12gb")
    with pytest.raises(os_exceptions.ForbiddenException) as refused:
        _create_server(conn, "big1", flavor="c16-60gb")
    assert refused.value.status_code == 403
    assert refused.value.details == "Quota exceeded for cores: Requested 16, but already used 40 of 48 cores"
    assert _compute_usage(conn)[:2] == (5, 40)


def test_server_over_the_instances_quota_is_refused(clean_sandbox, conn):
    clean_sandbox.set_knobs(quotas={"instances": 1})
    _create_server(conn, "node1", flavor="p1-1.5gb")
    with pytest.raises(os_exceptions.ForbiddenException) as refused:
        _create_server(conn, "node2", flavor="p1-1.5gb")
    assert refused.value.details == "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"


def test_volume_over_the_gigabytes_quota_is_refused_with_cinders_413(clean_sandbox, conn):
    conn.block_storage.create_volume(size=1900, name="project")
    with pytest.raises(os_exceptions.HttpException) as refused:
        conn.block_storage.create_volume(size=500, name="scratch")
    assert refused.value.status_code == 413
    assert "Requested 500G, quota is 2000G and 1900G has been consumed." in refused.value.details
    assert conn.block_storage.get_limits().absolute.total_volumes_used == 1


def test_volume_over_the_volumes_quota_is_refused_with_cinders_413(clean_sandbox, conn):
    clean_sandbox.set_knobs(quotas={"volumes": 1})
    conn.block_storage.create_volume(size=1, name="home")
    with pytest.raises(os_exceptions.HttpException) as refused:
        conn.block_storage.create_volume(size=1, name="project")
    assert refused.value.status_code == 413
    assert "Maximum number of volumes allowed (1) exceeded for quota 'volumes'." in refused.value.details


def test_floating_ip_over_quota_is_refused_with_neutrons_409_overquota(clean_sandbox, conn):
    clean_sandbox.set_knobs(quotas={"floating_ips": 1})
    network_id = _public_network_id(conn)
    conn.network.create_ip(floating_network_id=network_id)
    with pytest.raises(os_exceptions.ConflictException) as refused:
        conn.network.create_ip(floating_network_id=network_id)
    assert refused.value.status_code == 409
    assert refused.value.details == "Quota exceeded for resources: ['floatingip']."
    body = refused.value.response.json()
    assert body["NeutronError"]["type"] == "OverQuota"


# --- Keystone ------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_401(clean_sandbox):
    conn = openstack.connect(
        auth_url=f"{clean_sandbox.url}/identity/v3",
        username=accounts.USER_NAME,
        password="not-the-password",
        project_name=accounts.PROJECT_NAME,
        user_domain_name="Default",
        project_domain_name="Default",
        load_yaml_config=False,
        load_envvars=False,
    )
    # openstacksdk's authorize() wraps keystoneauth's Unauthorized into an SDKException.
    with pytest.raises(os_exceptions.SDKException, match=r"\(HTTP 401\)"):
        conn.authorize()


def test_refused_login_answers_a_keystone_error_body(clean_sandbox):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "mchub", "domain": {"name": "Default"}, "password": "wrong"}},
            }
        }
    }
    response = httpx.post(f"{clean_sandbox.url}/identity/v3/auth/tokens", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert "wrong" not in response.text


def test_application_credential_logs_in_to_the_same_project(clean_sandbox):
    conn = clean_sandbox.connect("sandbox-appcred")
    try:
        conn.authorize()
        assert conn.current_project_id == accounts.PROJECT_ID
        assert [f.name for f in conn.compute.flavors()][0] == "p1-1.5gb"
    finally:
        conn.close()


def test_token_lists_every_service_at_this_server(clean_sandbox):
    body = {
        "auth": {
            "identity": {"methods": ["application_credential"], "application_credential": {
                "id": accounts.APP_CRED_ID, "secret": accounts.APP_CRED_SECRET}}
        }
    }
    response = httpx.post(f"{clean_sandbox.url}/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201
    token = response.json()["token"]
    assert response.headers["X-Subject-Token"]
    assert token["project"]["id"] == accounts.PROJECT_ID and token["expires_at"]
    urls = {entry["type"]: entry["endpoints"][0]["url"] for entry in token["catalog"]}
    assert {"compute", "image", "block-storage", "volumev3", "network"} <= set(urls)
    assert all(url.startswith(clean_sandbox.url + "/") for url in urls.values())


def test_a_token_can_be_validated(clean_sandbox, conn):
    token = conn.session.get_token()
    response = httpx.get(
        f"{clean_sandbox.url}/identity/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
    )
    assert response.status_code == 200
    assert response.json()["token"]["project"]["name"] == accounts.PROJECT_NAME


@pytest.mark.parametrize(
    "path",
    [
        "/compute/v2.1/flavors/detail",
        "/image/v2/images",
        "/volume/v3/limits",
        f"/networking/v2.0/quotas/{accounts.PROJECT_ID}/details",
        "/compute/v2.1/no-such-thing",
    ],
)
def test_service_requests_without_a_valid_token_get_401(clean_sandbox, path):
    for headers in ({}, {"X-Auth-Token": "forged.token"}):
        response = httpx.get(clean_sandbox.url + path, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "The request you have made requires authentication."


# --- the sandbox's own controls ---------------------------------------------------------------


def test_reset_empties_the_cloud_and_restores_knobs_and_quotas(clean_sandbox, conn):
    _create_server(conn, "node1")
    conn.block_storage.create_volume(size=10, name="home")
    conn.network.create_ip(floating_network_id=_public_network_id(conn))
    clean_sandbox.set_knobs(latency_seconds=0.01, quotas={"cores": 8})
    clean_sandbox.reset()
    assert list(conn.compute.servers()) == []
    assert list(conn.block_storage.volumes()) == []
    assert list(conn.network.ips()) == []
    knobs = clean_sandbox.admin().get("/knobs").json()
    # boot_seconds returns to what the service was started with (0 for the session fixture).
    assert knobs == {
        "latency_seconds": 0.0,
        "boot_seconds": 0.0,
        "build_seconds": 0.0,
        "fail_next_server_creates": 0,
        "fail_next_requests": 0,
        "quotas": {"instances": 20, "cores": 64, "ram": 262144, "volumes": 20, "gigabytes": 2000, "floating_ips": 5},
    }


def test_restart_keeps_servers_volumes_ips_and_knobs(sandbox_launcher, tmp_path):
    data_dir = tmp_path / "data"
    first = sandbox_launcher(data_dir)
    conn = first.connect()
    server = _create_server(conn, "login1", cluster=HOSTNAME)
    conn.block_storage.create_volume(size=30, name="home")
    ip = conn.network.create_ip(floating_network_id=_public_network_id(conn))
    first.set_knobs(quotas={"cores": 50})
    conn.close()
    first.stop()

    second = sandbox_launcher(data_dir)
    conn = second.connect()
    try:
        assert [(s.id, s.metadata) for s in conn.compute.servers()] == [(server.id, {"cluster": HOSTNAME})]
        assert [v.size for v in conn.block_storage.volumes()] == [30]
        assert [i.floating_ip_address for i in conn.network.ips()] == [ip.floating_ip_address]
        assert conn.compute.get_limits().absolute.total_cores == 50
        # The admin token lives in the data folder too: the same one still opens the admin API.
        assert second.admin().get("/knobs").json()["quotas"]["cores"] == 50
    finally:
        conn.close()


def test_injected_server_create_failure_answers_500_once(clean_sandbox, conn):
    clean_sandbox.set_knobs(fail_next_server_creates=1)
    with pytest.raises(os_exceptions.HttpException) as failed:
        _create_server(conn, "node1")
    assert failed.value.status_code == 500
    assert "fail_next_server_creates" in failed.value.details
    assert list(conn.compute.servers()) == []
    assert _create_server(conn, "node1").status == "ACTIVE"
    assert clean_sandbox.admin().get("/knobs").json()["fail_next_server_creates"] == 0


def test_injected_request_failures_answer_500_then_stop(clean_sandbox, conn):
    clean_sandbox.set_knobs(fail_next_requests=2)
    for _ in range(2):
        with pytest.raises(os_exceptions.HttpException) as failed:
            conn.network.get_quota(conn.current_project_id, details=True)
        assert failed.value.status_code == 500
    assert conn.network.get_quota(conn.current_project_id, details=True).floating_ips["limit"] == 5


def test_latency_knob_slows_every_openstack_request(clean_sandbox, conn):
    # A whole second: the sandbox's own health page must answer well within it even on a
    # machine busy enough to stretch a request to a few hundred milliseconds.
    clean_sandbox.set_knobs(latency_seconds=1.0)
    started = time.monotonic()
    conn.compute.get_limits()
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    httpx.get(f"{clean_sandbox.url}/sandbox/health")
    assert time.monotonic() - started < 1.0


def test_knobs_refuse_unknown_names_and_bad_values_naming_the_field(clean_sandbox):
    admin = clean_sandbox.admin()
    before = admin.get("/knobs").json()
    unknown = admin.put("/knobs", json={"fail_next_server_create": 1})
    negative = admin.put("/knobs", json={"quotas": {"cores": -5}})
    assert unknown.status_code == 400 and unknown.json()["detail"][0]["field"] == "fail_next_server_create"
    assert negative.status_code == 400 and negative.json()["detail"][0]["field"] == "quotas.cores"
    assert admin.get("/knobs").json() == before


def test_admin_usage_sums_what_is_in_use_and_counts_cluster_servers(clean_sandbox, conn):
    _create_server(conn, "mgmt1", flavor="p4-6gb", cluster=HOSTNAME)
    _create_server(conn, "login1", flavor="p2-3gb", cluster=HOSTNAME)
    conn.block_storage.create_volume(size=50, name="home")
    summary = clean_sandbox.admin().get("/usage").json()
    assert summary["in_use"] == {
        "instances": 2, "cores": 6, "ram": 9216, "volumes": 1, "gigabytes": 50, "floating_ips": 0
    }
    assert summary["clusters"] == {HOSTNAME: 2}


# --- a cluster's web services ---------------------------------------------------------------------


def test_service_urls_are_built_from_the_hostname():
    assert service_urls("http://127.0.0.1:8790/", "hpc.example.org") == {
        "jupyterhub": "http://127.0.0.1:8790/sandbox/clusters/hpc.example.org/jupyterhub",
        "freeipa": "http://127.0.0.1:8790/sandbox/clusters/hpc.example.org/freeipa",
    }


def test_cluster_services_boot_then_answer_then_vanish_with_the_servers(clean_sandbox, conn):
    # Long enough that a busy machine still asks while the services boot.
    clean_sandbox.set_knobs(boot_seconds=3.0)
    urls = service_urls(clean_sandbox.url, HOSTNAME)
    assert httpx.get(urls["jupyterhub"]).status_code == 404
    server = _create_server(conn, "login1", cluster=HOSTNAME)
    booting = httpx.get(urls["jupyterhub"])
    assert booting.status_code == 503
    assert re.search(r"is booting: ready in [123] s", booting.text), booting.text
    time.sleep(3.05)
    assert [httpx.get(url).status_code for url in urls.values()] == [200, 200]
    conn.compute.delete_server(server)
    assert [httpx.get(url).status_code for url in urls.values()] == [404, 404]



# --- the command ---------------------------------------------------------------------------------


def _python_m_sandbox(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args], cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_print_clouds_yaml_names_the_sandbox_at_the_given_address(request):
    done = _python_m_sandbox(request.config.rootpath, "--port", "9876", "--print-clouds-yaml")
    assert done.returncode == 0, done.stderr
    clouds = yaml.safe_load(done.stdout)["clouds"]
    assert clouds["sandbox"]["auth"]["auth_url"] == "http://127.0.0.1:9876/identity/v3"
    assert clouds["sandbox"]["auth_type"] == "password"
    assert clouds["sandbox"]["region_name"] == "RegionOne"
    assert clouds["sandbox-appcred"]["auth"]["application_credential_id"] == accounts.APP_CRED_ID


def test_a_taken_port_is_refused_with_a_message_that_says_what_to_do(sandbox_cloud, request, tmp_path):
    done = _python_m_sandbox(
        request.config.rootpath, "--port", str(sandbox_cloud.port), "--data-dir", str(tmp_path / "data")
    )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{sandbox_cloud.port}" in done.stderr
    assert "--port" in done.stderr


def test_an_unreadable_state_file_stops_the_start_with_what_to_do(request, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "state.json").write_text("{not json")
    done = _python_m_sandbox(request.config.rootpath, "--port", "0", "--data-dir", str(data_dir))
    assert done.returncode == 1
    assert f"{data_dir / 'state.json'} is not a sandbox state file" in done.stderr
    assert "move it away" in done.stderr


def test_free_ports_are_outside_the_range_of_outgoing_connections_and_never_given_twice():
    # A port from that range can be taken by a client's connection before its server binds it.
    first_outgoing = launcher._first_outgoing_port()
    ports = [launcher.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(launcher._LOWEST_PORT <= port < first_outgoing for port in ports)
