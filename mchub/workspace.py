"""A cluster's folder, `clusters/<hostname>/`: its spec, main.tf.json, plans, state and logs.

Users lose nothing here: a folder that exists is never taken over by a new cluster, a folder
whose Terraform state still holds resources is never removed, and destroy archives the
folder with its logs instead of deleting it.
"""

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from mchub.spec import ClusterSpec, dump_spec, load_spec
from mchub.tfconfig import CloudKind
from mchub.tfconfig import write as write_config

ARCHIVE = ".archive"


class WorkspaceError(Exception):
    """The folder cannot be used as asked; the message says why and what to do."""


class PlanRecord(BaseModel):
    """What was planned, so that only an approved, still-current plan is applied."""

    plan_file: str
    config_hash: str
    destroy: bool
    created_at: datetime


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def hostname(self) -> str:
        return self.root.name

    @property
    def main_tf(self) -> Path:
        return self.root / "main.tf.json"

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state_file(self) -> Path:
        return self.root / "terraform.tfstate"

    @property
    def plan_record_file(self) -> Path:
        return self.root / "plan.meta.json"

    def spec(self) -> ClusterSpec:
        return load_spec(self.spec_file, stored=True)

    def write(self, spec: ClusterSpec, kind: CloudKind, sandbox_url: str = "") -> str:
        """Write the spec and main.tf.json; returns the configuration's hash."""
        if spec.hostname != self.hostname:
            raise WorkspaceError(
                f"cluster_name/domain: this folder belongs to {self.hostname}; a cluster cannot be "
                f"renamed to {spec.hostname}. Create a new cluster instead."
            )
        dump_spec(spec, self.spec_file)
        write_config(spec, kind, self.root, sandbox_url)
        return self.config_hash()

    def config_hash(self) -> str:
        return hashlib.sha256(self.main_tf.read_bytes()).hexdigest()

    def record_plan(self, plan_file: Path, *, destroy: bool) -> PlanRecord:
        record = PlanRecord(
            plan_file=plan_file.name,
            config_hash=self.config_hash(),
            destroy=destroy,
            created_at=datetime.now(timezone.utc),
        )
        self.plan_record_file.write_text(record.model_dump_json(indent=2))
        return record

    def plan_record(self) -> PlanRecord | None:
        if not self.plan_record_file.exists():
            return None
        return PlanRecord.model_validate_json(self.plan_record_file.read_text())

    def approved_plan(self, expected: PlanRecord) -> Path:
        """The plan file to apply, refusing one that is not the approved one or has gone stale."""
        current = self.plan_record()
        if current is None or current != expected:
            raise WorkspaceError(
                f"{self.hostname}: the plan that was approved is no longer the latest plan; "
                "review the new plan and approve it instead"
            )
        if self.config_hash() != expected.config_hash:
            raise WorkspaceError(
                f"{self.hostname}: main.tf.json changed after the plan was made; plan again and approve the new plan"
            )
        path = self.root / expected.plan_file
        if not path.exists():
            raise WorkspaceError(f"{self.hostname}: the approved plan file {path.name} is gone; plan again")
        return path

    def holds_resources(self) -> bool:
        """True when Terraform's state still lists resources in the cloud."""
        if not self.state_file.exists():
            return False
        state = json.loads(self.state_file.read_text() or "{}")
        return bool(state.get("resources"))

    def archive(self) -> Path:
        """Move the folder (logs and all) under clusters/.archive/; refuses while it holds resources."""
        if self.holds_resources():
            raise WorkspaceError(
                f"{self.hostname}: Terraform's state still holds resources; destroy them before archiving"
            )
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self.root.parent / ARCHIVE / f"{self.hostname}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(self.root, target)
        return target


def create(clusters_dir: Path, spec: ClusterSpec) -> Workspace:
    """A new, empty folder for `spec`; an existing folder is refused, never reused or deleted."""
    root = clusters_dir / spec.hostname
    clusters_dir.mkdir(parents=True, exist_ok=True)
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        raise WorkspaceError(
            f"cluster_name: a cluster named {spec.hostname} already exists (folder {root}); "
            "choose another name, or modify that cluster instead"
        ) from None
    (root / "logs").mkdir()
    return Workspace(root)


def open_existing(clusters_dir: Path, hostname: str) -> Workspace:
    root = clusters_dir / hostname
    if not root.is_dir():
        raise WorkspaceError(f"no cluster named {hostname} (no folder {root})")
    return Workspace(root)


def list_hostnames(clusters_dir: Path) -> list[str]:
    if not clusters_dir.is_dir():
        return []
    return sorted(p.name for p in clusters_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

