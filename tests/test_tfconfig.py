"""main.tf.json: only variables Magic Castle 15.6.1 declares, the same document for both clouds."""

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mchub import tfconfig
from mchub.settings import get_settings
from mchub.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cluster.yaml"

# The variables of Magic Castle's openstack module at 15.6.1 (shared/reference/magic-castle.md),
# and those without a default, which main.tf.json must always give.
MAGIC_CASTLE_15_6_1 = {
    "cluster_name", "domain", "image", "nb_users", "instances", "volumes", "public_keys",
    "guest_passwd", "config_git_url", "config_version", "hieradata", "hieradata_dir",
    "sudoer_username", "firewall_rules", "software_stack", "pool", "skip_upgrade", "puppetfile",
    "eyaml_key", "bastion_tags", "puppet_conf", "os_floating_ips", "os_ext_network", "subnet_id",
}  # fmt: skip
REQUIRED = {"cluster_name", "domain", "image", "instances", "volumes", "public_keys", "config_git_url", "config_version"}


@pytest.fixture
def spec():
    return load_spec(EXAMPLE)


def _inputs(document: dict) -> set[str]:
    return set(document["module"]["cluster"]) - {"source"}


def test_openstack_inputs_are_variables_the_pinned_release_declares(spec, tmp_path):
    document = tfconfig.render(spec, "openstack", tmp_path / spec.hostname)
    assert _inputs(document) <= MAGIC_CASTLE_15_6_1
    assert REQUIRED <= _inputs(document)
    assert document["module"]["cluster"]["source"].endswith("//openstack?ref=15.6.1")
    assert document["module"]["cluster"]["config_version"] == get_settings().magic_castle_version


def test_the_sandbox_module_declares_the_same_variables_plus_its_address(spec, tmp_path):
    declared = set(re.findall(r'^variable "(\w+)"', (tfconfig.sandbox_module_dir() / "variables.tf").read_text(), re.MULTILINE))
    document = tfconfig.render(spec, "sandbox", tmp_path / spec.hostname, "http://127.0.0.1:1")
    assert _inputs(document) == declared
    assert declared - {"sandbox_url"} <= MAGIC_CASTLE_15_6_1


def test_both_clouds_differ_only_in_the_module_source_and_where_service_urls_come_from(spec, tmp_path):
    workdir = tmp_path / spec.hostname
    openstack = tfconfig.render(spec, "openstack", workdir)
    sandbox = tfconfig.render(spec, "sandbox", workdir, "http://127.0.0.1:1")
    for document in (openstack, sandbox):
        document["module"]["cluster"].pop("source")
        document["module"]["cluster"].pop("sandbox_url", None)
        document["output"].pop("service_urls")
    assert openstack == sandbox


def test_the_sandbox_module_is_referenced_relative_to_the_cluster_folder(spec, tmp_path):
    workdir = ROOT / "clusters" / spec.hostname
    source = tfconfig.render(spec, "sandbox", workdir)["module"]["cluster"]["source"]
    assert source == "../../sandbox/terraform"


def test_main_tf_json_is_readable_by_its_owner_only(spec, tmp_path):
    with_password = parse_spec({**spec.to_data(include_secrets=True), "guest_passwd": "a-secret-pass"})
    path = tfconfig.write(with_password, "sandbox", tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["module"]["cluster"]["guest_passwd"] == "a-secret-pass"


def test_a_dns_module_is_added_for_a_configured_domain(spec, tmp_path, monkeypatch):
    assert "dns" not in tfconfig.render(spec, "openstack", tmp_path)["module"]
    monkeypatch.setenv("MCHUB_DNS", json.dumps({spec.domain: "cloudflare"}))
    get_settings.cache_clear()
    try:
        document = tfconfig.render(spec, "openstack", tmp_path)
    finally:
        get_settings.cache_clear()
    assert document["module"]["dns"]["source"].endswith("//dns/cloudflare?ref=15.6.1")
    assert document["output"]["hostnames"] == {"value": "${module.dns.hostnames}"}


def test_mchub_render_prints_the_document_and_writes_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mchub.cli", "render", str(EXAMPLE), "--cloud", "openstack"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["module"]["cluster"]["cluster_name"] == "demo-castle"
    assert list(tmp_path.iterdir()) == []


def test_mchub_render_names_the_field_of_a_bad_spec(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("cluster_name: demo-castle", "cluster_name: Demo_Castle"))
    result = subprocess.run(
        [sys.executable, "-m", "mchub.cli", "render", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "cluster_name:" in result.stderr and "lowercase" in result.stderr
