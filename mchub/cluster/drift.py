"""Drift: a cluster whose cloud no longer matches what Terraform built (a server deleted in
Horizon, say).

The drift check (flows/drift.py, daily) plans the cluster's applied spec and never applies:
a plan with changes means drift, and its summary is kept in the cluster's folder
(drift.json) until a run acts on the cluster again. Repairing is an ordinary build of the
applied spec, whose plan makes the same changes.

Magic Castle's openstack provider reads every server back when Terraform plans, so a server
deleted behind Terraform's back is planned again by itself. The sandbox module's
terraform_data resources read nothing back: `vanished_servers` does that reading for them,
and the plan replaces what is gone (`terraform plan -replace`), which is what the provider's
refresh leads to.
"""

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from mchub.cloud import connection
from mchub.cluster.workspace import Workspace, WorkspaceError, folder_of
from mchub.private_file import write_private
from mchub.settings import get_settings
from mchub.terraform.config import MODULE
from mchub.terraform.plan import PlanSummary

DRIFT_FILE = "drift.json"
SANDBOX_SERVERS = f"module.{MODULE}.terraform_data.instance"


class DriftCheck(BaseModel):
    """The outcome of a cluster's latest drift check."""

    checked_at: datetime
    summary: PlanSummary

    @property
    def drifted(self) -> bool:
        return self.summary.has_changes


def record(ws: Workspace, check: DriftCheck) -> None:
    write_private(ws.root / DRIFT_FILE, check.model_dump_json(indent=2))


def last_check(ws: Workspace) -> DriftCheck | None:
    """The latest drift check of the cluster, None if it never had one (or its record is unreadable)."""
    try:
        return DriftCheck.model_validate_json((ws.root / DRIFT_FILE).read_text())
    except (OSError, ValueError):
        return None


def last_check_of(hostname: str) -> DriftCheck | None:
    """`last_check` of the cluster `hostname` in the clusters folder; None for a cluster with
    no folder (destroyed) or a name that is not a hostname."""
    try:
        return last_check(Workspace(folder_of(get_settings().clusters_dir, hostname)))
    except WorkspaceError:
        return None


def vanished_servers(ws: Workspace) -> list[str]:
    """The addresses of the sandbox servers that Terraform's state holds but the cloud no
    longer does (a server carries its terraform_data id in its metadata); none for a cluster
    on OpenStack, whose provider finds them itself."""
    if not ws.state_file.exists():
        return []
    built = _sandbox_server_ids(json.loads(ws.state_file.read_text()))
    if not built:  # none built, or a state of Magic Castle's openstack module
        return []
    target = connection.target(ws.spec().cloud)
    cloud = connection.connect(target.name)
    alive = {
        (server.metadata or {}).get("terraform_id")
        for server in cloud.compute.servers(details=True)
        if (server.metadata or {}).get("cluster") == ws.hostname
    }
    return [f'{SANDBOX_SERVERS}["{name}"]' for name, resource_id in sorted(built.items()) if resource_id not in alive]


def _sandbox_server_ids(state: dict[str, Any]) -> dict[str, str]:
    """{instance name: terraform_data id} of the sandbox module's servers in a state."""
    return {
        str(instance["index_key"]): str(instance["attributes"]["id"])
        for resource in state.get("resources", [])
        if resource.get("module") == f"module.{MODULE}"
        and resource.get("type") == "terraform_data"
        and resource.get("name") == "instance"
        for instance in resource.get("instances", [])
    }
