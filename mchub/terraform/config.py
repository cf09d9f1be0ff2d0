"""A cluster's Terraform configuration, written from its spec: main.tf.json and its values.

Every string in a .tf.json file is a Terraform template, so a spec value written there as it
is would be run by Terraform (a guest password of `${file("/etc/passwd")}`). The values go to
terraform.tfvars.json instead, whose strings Terraform reads literally, and main.tf.json only
declares each as a variable and hands `var.<name>` to the module.

Both clouds get the same document but for the module block (Magic Castle's openstack module
at a pinned release, or the sandbox module with the same interface) and where the service
URLs come from. Only variables that the pinned Magic Castle release declares are written.
"""

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from mchub.private_file import write_private
from mchub.settings import DnsZone, get_settings
from mchub.spec.model import ClusterSpec

CloudKind = Literal["openstack", "sandbox"]

CONFIG_FILE = "main.tf.json"
VARIABLES_FILE = "terraform.tfvars.json"
"""Terraform loads it by itself from the folder it runs in, for plan and destroy alike."""

MAGIC_CASTLE_SOURCE = "git::https://github.com/ComputeCanada/magic_castle.git//{module}?ref={version}"
PUPPET_CONFIG_URL = "https://github.com/ComputeCanada/puppet-magic_castle.git"
MODULE = "cluster"

# Outputs of Magic Castle's openstack module that the hub reads after apply.
MODULE_OUTPUTS = ("public_ip", "public_instances", "cluster_name", "domain", "accounts")
SENSITIVE_OUTPUTS = {"accounts"}

# The Terraform type each module input is declared with at the root. `any` keeps the value's
# own shape (objects of objects), as the module received it when written in place.
VARIABLE_TYPES = {
    "config_git_url": "string",
    "config_version": "string",
    "cluster_name": "string",
    "domain": "string",
    "image": "string",
    "nb_users": "number",
    "instances": "any",
    "volumes": "any",
    "public_keys": "list(string)",
    "guest_passwd": "string",
    "hieradata": "string",
    "sandbox_url": "string",
}


def sandbox_module_dir() -> Path:
    """The sandbox's Terraform module, shipped in this repository."""
    return Path(__file__).resolve().parents[2] / "sandbox" / "terraform"


def module_variables(spec: ClusterSpec) -> dict[str, Any]:
    """The module inputs for `spec`: every one a variable of Magic Castle's openstack module."""
    version = get_settings().magic_castle_version
    return {
        "config_git_url": PUPPET_CONFIG_URL,
        "config_version": version,
        "cluster_name": spec.cluster_name,
        "domain": spec.domain,
        "image": spec.image,
        "nb_users": spec.nb_users,
        "instances": {
            prefix: {"type": group.type, "count": group.count, "tags": list(group.tags)}
            for prefix, group in spec.instances.items()
        },
        "volumes": {
            tag: {name: {"size": volume.size} for name, volume in named.items()}
            for tag, named in spec.volumes.items()
        },
        "public_keys": list(spec.public_keys),
        "guest_passwd": spec.guest_passwd.get_secret_value(),
        "hieradata": spec.hieradata,
    }


def variable_values(spec: ClusterSpec, kind: CloudKind, sandbox_url: str = "") -> dict[str, Any]:
    """terraform.tfvars.json for `spec` on a cloud of `kind`: the module's inputs, as data.

    `sandbox_url` (the sandbox cloud's base URL) is needed only for the sandbox, whose
    module builds the service URLs of the cluster from it.
    """
    values = module_variables(spec)
    if kind == "sandbox":
        values["sandbox_url"] = sandbox_url
    return values


def _module_source(kind: CloudKind, workdir: Path) -> str:
    if kind == "openstack":
        return MAGIC_CASTLE_SOURCE.format(module="openstack", version=get_settings().magic_castle_version)
    # Terraform wants local module sources relative, starting with ./ or ../
    relative = os.path.relpath(sandbox_module_dir(), workdir.resolve())
    return relative if relative.startswith("../") else f"./{relative}"


def backend_schema(hostname: str) -> str:
    """The PostgreSQL schema of the cluster's state in a shared store: readable, unique, a plain identifier."""
    digest = hashlib.sha256(hostname.encode()).hexdigest()[:10]
    return f"cluster_{re.sub(r'[^a-z0-9]', '_', hostname.lower())[:40]}_{digest}"


def _terraform_settings(hostname: str) -> dict[str, Any]:
    """The `terraform` block: with a shared store (MCHUB_SHARED_STORE_URL), the cluster's state
    is in its pg backend, whose connection string Terraform reads from PG_CONN_STR."""
    block: dict[str, Any] = {"required_version": ">= 1.5.7"}
    if get_settings().shared_store_url is not None:
        block["backend"] = {"pg": {"schema_name": backend_schema(hostname)}}
    return block


def render(spec: ClusterSpec, kind: CloudKind, workdir: Path) -> dict[str, Any]:
    """The main.tf.json document for `spec` on a cloud of `kind`, written into `workdir`.

    It holds no value from the spec: each module input is a variable, given in
    terraform.tfvars.json (`variable_values`).
    """
    module = f"module.{MODULE}"
    inputs = variable_values(spec, kind)
    outputs: dict[str, Any] = {
        name: {"value": f"${{{module}.{name}}}", **({"sensitive": True} if name in SENSITIVE_OUTPUTS else {})}
        for name in MODULE_OUTPUTS
    }
    if kind == "sandbox":
        outputs["service_urls"] = {"value": f"${{{module}.service_urls}}"}
        outputs["account_portal_url"] = {"value": f"${{{module}.account_portal_url}}"}
    else:
        host = f"${{{module}.cluster_name}}.${{{module}.domain}}"
        outputs["service_urls"] = {
            "value": {"jupyterhub": f"https://jupyter.{host}", "freeipa": f"https://ipa.{host}"}
        }
        outputs["account_portal_url"] = {"value": f"https://mokey.{host}"}
    modules: dict[str, Any] = {
        MODULE: {"source": _module_source(kind, workdir), **{name: f"${{var.{name}}}" for name in inputs}}
    }
    zone = get_settings().dns.get(spec.domain)
    if kind == "openstack" and zone:
        modules["dns"] = _dns_module(zone, module)
        outputs["hostnames"] = {"value": "${module.dns.hostnames}"}
    return {
        "terraform": _terraform_settings(spec.hostname),
        "variable": {name: {"type": VARIABLE_TYPES[name]} for name in inputs},
        "module": modules,
        "output": outputs,
    }


def _dns_module(zone: DnsZone, module: str) -> dict[str, Any]:
    """Magic Castle's dns module of the zone's provider, fed from the cluster module's outputs.
    The zone's project and name are settings whose grammar admits no template."""
    block = {
        "source": MAGIC_CASTLE_SOURCE.format(module=f"dns/{zone.provider}", version=get_settings().magic_castle_version),
        "name": f"${{{module}.cluster_name}}",
        "domain": f"${{{module}.domain}}",
        "public_instances": f"${{{module}.public_instances}}",
    }
    if zone.provider == "gcloud":
        block |= {"project": zone.project, "zone_name": zone.zone_name}
    return block


def write(spec: ClusterSpec, kind: CloudKind, workdir: Path, sandbox_url: str = "") -> Path:
    """Write main.tf.json and terraform.tfvars.json (both 0600, each whole or not at all: the
    values hold the guest password) and return the path of main.tf.json."""
    write_private(workdir / VARIABLES_FILE, _json(variable_values(spec, kind, sandbox_url)))
    path = workdir / CONFIG_FILE
    write_private(path, _json(render(spec, kind, workdir)))
    return path


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"
