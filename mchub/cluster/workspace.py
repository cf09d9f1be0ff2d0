"""A cluster's folder, `clusters/<hostname>/`: its spec, main.tf.json, plans, state and logs.

Users lose nothing here: a folder that exists is never taken over by a new cluster, a folder
whose Terraform state still holds resources is never removed, and destroy archives the
folder with its logs instead of deleting it. The folder is 0700 and every file in it that
can hold the guest password (spec, Terraform variables, plan files, plan JSON, cluster.json) 0600.

    spec.yaml                    the spec the cluster was last applied with: what it is
    spec.proposed.yaml           a requested change, until an apply of its plan starts
    main.tf.json                 rendered from spec.yaml (from the proposal while it is planned and applied)
    terraform.tfvars.json        the values main.tf.json's variables take (mchub.terraform.config)
    plans/<kind>-<time>.tfplan   the latest plan, and its `terraform show -json` (.json)
    plan.meta.json               the PlanRecord of that plan
    terraform.tfstate            what Terraform built (with a shared store: the backend's copy,
                                 terraform.tfstate.shared)
    cluster.json                 what was read back after the last apply (ClusterState)
    apply.unfinished             an apply started and has not ended (the state may miss resources)
    owner.json                   who created the cluster, in which project (mchub.access.rights.Ownership)
    logs/                        one log per Terraform step, older runs kept (mchub.terraform.logs)

An archived folder keeps all this but the guest password (mchub.cluster.secret_scrub) and the plan files.
"""

import contextlib
import errno
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mchub.access.rights import Ownership
from mchub.cluster.secret_scrub import remove_secrets
from mchub.cluster.shared_store import STATE_COPY
from mchub.cluster.state import REVEAL_SECRETS, ClusterState, cloud_objects
from mchub.errors import MCHubError
from mchub.private_file import write_private
from mchub.spec.hostname import HostnameError, checked_hostname, hostname_problem
from mchub.spec.model import ClusterSpec, SpecError, dump_spec, load_spec
from mchub.terraform.config import VARIABLES_FILE, CloudKind
from mchub.terraform.config import write as write_config

ARCHIVE = ".archive"
PLANS = "plans"
UNFINISHED_APPLY = "apply.unfinished"
OWNER_FILE = "owner.json"
LOCK_INFO = ".terraform.tfstate.lock.info"
"""What Terraform's local backend writes beside the state while it holds the state's lock."""


class WorkspaceError(MCHubError):
    """The folder cannot be used as asked; the message says why and what to do."""


class PlanRecord(BaseModel):
    """What was planned, so that only an approved, still-current plan is applied."""

    plan_file: str
    """Relative to the cluster's folder; unique per plan, so a replaced plan is told apart."""
    config_hash: str
    """Workspace.config_hash when the plan was made."""
    destroy: bool
    created_at: datetime
    plan_json: str = ""
    """Relative path of the plan as `terraform show -json` gave it (it holds secrets: 0600)."""
    applied: bool = False
    """An apply of this plan has started. The plan is spent even if that apply failed or was
    cancelled: the state has moved on, and Terraform refuses a saved plan made before."""

    def same_plan(self, other: "PlanRecord") -> bool:
        return (self.plan_file, self.config_hash, self.destroy) == (other.plan_file, other.config_hash, other.destroy)


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def hostname(self) -> str:
        return self.root.name

    @property
    def main_tf(self) -> Path:
        return self.root / "main.tf.json"

    @property
    def variables_file(self) -> Path:
        return self.root / VARIABLES_FILE

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def proposal_file(self) -> Path:
        return self.root / "spec.proposed.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state_file(self) -> Path:
        """Terraform's local state; with a shared store, the copy of the backend's (mchub.cluster.shared_store)."""
        copy = self.root / STATE_COPY
        return copy if copy.exists() else self.root / "terraform.tfstate"

    @property
    def plan_record_file(self) -> Path:
        return self.root / "plan.meta.json"

    @property
    def cluster_state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def _request_file(self) -> Path:
        return self.root / "request.id"

    @property
    def _init_file(self) -> Path:
        return self.root / "init.meta"

    def spec(self) -> ClusterSpec:
        """The spec the cluster was last applied with; a cluster never applied has only its
        proposal, and nothing in the cloud yet."""
        if not self.spec_file.exists() and self.proposal_file.exists():
            return load_spec(self.proposal_file, stored=True)
        return load_spec(self.spec_file, stored=True)

    def proposed_spec(self) -> ClusterSpec | None:
        """The change requested last, None when there is none or it was applied."""
        if not self.proposal_file.exists():
            return None
        return load_spec(self.proposal_file, stored=True)

    def set_expiration(self, day: date) -> None:
        """Change only the expiration date of the cluster's spec (the applied one; a cluster never
        applied, its proposal's)."""
        path = self.spec_file if self.spec_file.exists() or not self.proposal_file.exists() else self.proposal_file
        spec = load_spec(path, stored=True)
        dump_spec(spec.model_copy(update={"expiration_date": day}), path)

    def created_at(self) -> datetime:
        """When the cluster was created: when its first `terraform init` log was written (logs
        are never rewritten, only renamed), else when the folder changed last."""
        first_inits = sorted(path.stat().st_mtime for path in self.logs.glob("init*.log"))
        stamp = first_inits[0] if first_inits else self.root.stat().st_mtime
        return datetime.fromtimestamp(stamp, UTC)

    @property
    def reminders_file(self) -> Path:
        """Which expiry reminders went out (mchub.cluster.expiration)."""
        return self.root / "reminders.json"

    def propose(self, spec: ClusterSpec) -> None:
        """Keep `spec` beside the applied one until an apply of its plan starts."""
        self._check_hostname(spec)
        dump_spec(spec, self.proposal_file)

    def adopt_proposal(self) -> None:
        """The proposal becomes the cluster's spec (its plan is being applied)."""
        if self.proposal_file.exists():
            os.replace(self.proposal_file, self.spec_file)

    def write_config(self, spec: ClusterSpec, kind: CloudKind, sandbox_url: str = "") -> None:
        """Write main.tf.json and its variables for `spec`."""
        self._check_hostname(spec)
        write_config(spec, kind, self.root, sandbox_url)

    def _check_hostname(self, spec: ClusterSpec) -> None:
        if spec.hostname != self.hostname:
            raise WorkspaceError(
                f"cluster_name/domain: this folder belongs to {self.hostname}; a cluster cannot be "
                f"renamed to {spec.hostname}. Create a new cluster instead."
            )

    def config_hash(self) -> str:
        """sha256 of everything a plan is made from: main.tf.json and the values of its
        variables (a folder written before they had their own file has none)."""
        if not self.main_tf.exists():
            raise WorkspaceError(f"{self.hostname}: no main.tf.json in {self.root}; prepare the cluster first")
        digest = hashlib.sha256()
        for path in (self.main_tf, self.variables_file):
            content = path.read_bytes() if path.exists() else None
            # Each file's length first, so that no two pairs of files hash alike.
            digest.update(f"{path.name} {-1 if content is None else len(content)}\n".encode())
            digest.update(content or b"")
        return digest.hexdigest()

    # --- the request this folder was last prepared from, so a re-run recognises its work ---

    def record_request(self, request_id: str) -> None:
        self._request_file.write_text(request_id + "\n")

    def request_id(self) -> str | None:
        return self._request_file.read_text().strip() if self._request_file.exists() else None

    # --- what `terraform init` was last run for ---

    def record_init(self, fingerprint: str) -> None:
        self._init_file.write_text(fingerprint + "\n")

    def initialised_for(self) -> str | None:
        """The fingerprint recorded by the last successful init, None if none (or its
        .terraform folder is gone)."""
        if not self._init_file.exists() or not (self.root / ".terraform").is_dir():
            return None
        return self._init_file.read_text().strip()

    # --- plans ---

    def new_plan_file(self, *, destroy: bool) -> str:
        """A fresh name, relative to the folder, for the next plan file."""
        (self.root / PLANS).mkdir(mode=0o700, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{PLANS}/{'destroy' if destroy else 'build'}-{stamp}.tfplan"

    def save_plan(self, plan_file: str, plan_json: dict[str, Any], *, destroy: bool, config_hash: str) -> PlanRecord:
        """Record the plan just written to `plan_file` (made from main.tf.json with hash
        `config_hash`) as the latest one, keeping its JSON; earlier plans are removed."""
        plan_path = self.root / plan_file
        plan_path.chmod(0o600)  # Terraform writes it 0644; it holds the configuration, password included
        json_file = str(Path(plan_file).with_suffix(".json"))
        write_private(self.root / json_file, json.dumps(plan_json))
        record = PlanRecord(
            plan_file=plan_file,
            config_hash=config_hash,
            destroy=destroy,
            created_at=datetime.now(UTC),
            plan_json=json_file,
        )
        self._save_record(record)
        for old in (self.root / PLANS).iterdir():
            if old.name not in (plan_path.name, Path(json_file).name):
                old.unlink()
        return record

    def plan_record(self) -> PlanRecord | None:
        if not self.plan_record_file.exists():
            return None
        return PlanRecord.model_validate_json(self.plan_record_file.read_text())

    def plan_json(self, record: PlanRecord) -> dict[str, Any]:
        path = self.root / record.plan_json
        if not record.plan_json or not path.exists():
            raise WorkspaceError(f"{self.hostname}: the JSON of plan {record.plan_file} is gone; plan again")
        return json.loads(path.read_text())

    def approved_plan(self, expected: PlanRecord) -> Path:
        """The plan file to apply, refusing one that is not the approved one, was applied
        already, or has gone stale."""
        current = self.plan_record()
        if current is None or not current.same_plan(expected):
            raise WorkspaceError(
                f"{self.hostname}: the plan that was approved is no longer the latest plan; "
                "review the new plan and approve it instead"
            )
        if current.applied:
            raise WorkspaceError(
                f"{self.hostname}: the approved plan {Path(expected.plan_file).name} was applied already, "
                "and a plan is applied only once; plan again and approve the new plan"
            )
        if self.config_hash() != expected.config_hash:
            raise WorkspaceError(
                f"{self.hostname}: main.tf.json changed after the plan was made; plan again and approve the new plan"
            )
        path = self.root / expected.plan_file
        if not path.exists():
            raise WorkspaceError(f"{self.hostname}: the approved plan file {path.name} is gone; plan again")
        return path

    def mark_applied(self, record: PlanRecord) -> PlanRecord:
        applied = record.model_copy(update={"applied": True})
        self._save_record(applied)
        return applied

    def _save_record(self, record: PlanRecord) -> None:
        write_private(self.plan_record_file, record.model_dump_json(indent=2))

    # --- who it belongs to ---

    @property
    def owner_file(self) -> Path:
        return self.root / OWNER_FILE

    def record_ownership(self, ownership: Ownership) -> None:
        write_private(self.owner_file, ownership.model_dump_json(indent=2))

    def ownership(self) -> Ownership | None:
        """Who created the cluster, in which project; None for a cluster that records no owner
        (its folder was made before the hub knew people): only hub admins act on it."""
        try:
            return Ownership.model_validate_json(self.owner_file.read_text())
        except FileNotFoundError:
            return None

    # --- what was built ---

    def save_cluster_state(self, state: ClusterState) -> None:
        """Keep `state` as cluster.json, 0600: it holds the guest password."""
        write_private(self.cluster_state_file, state.model_dump_json(indent=2, context={REVEAL_SECRETS: True}))

    def cluster_state(self) -> ClusterState | None:
        """What was read after the last apply, None before any."""
        if not self.cluster_state_file.exists():
            return None
        return ClusterState.model_validate_json(self.cluster_state_file.read_text())

    def left_in_cloud(self) -> list[str] | None:
        """What Terraform's state says the cluster holds in the cloud ("instance mgmt1", …);
        None when the state cannot be read (`state_problem` says why)."""
        if self.state_problem() is not None:
            return None
        if not self.state_file.exists():
            return []
        return cloud_objects(json.loads(self.state_file.read_text()))

    # --- an apply that did not end: its state may miss what it made ---

    @property
    def unfinished_apply_file(self) -> Path:
        return self.root / UNFINISHED_APPLY

    def mark_apply_started(self, record: PlanRecord) -> None:
        """Written before Terraform applies `record`; removed by `mark_apply_ended` once
        Terraform has ended by itself. Left behind (the run was killed), it says that the
        cloud may hold resources the state does not list."""
        write_private(self.unfinished_apply_file, record.model_dump_json(indent=2))

    def mark_apply_ended(self) -> None:
        self.unfinished_apply_file.unlink(missing_ok=True)

    def unfinished_apply(self) -> PlanRecord | None:
        """The plan whose apply started and did not end, None if none."""
        try:
            return PlanRecord.model_validate_json(self.unfinished_apply_file.read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # half written: it was being marked when the run died
            return PlanRecord(plan_file="(unknown)", config_hash="", destroy=False, created_at=datetime.now(UTC))

    def state_problem(self) -> str | None:
        """Why Terraform's state cannot be trusted (empty or unreadable: Terraform died while
        writing it), None when it can or there is none yet."""
        if not self.state_file.exists():
            return None
        try:
            text = self.state_file.read_text()
            if not text.strip():
                return f"Terraform's state {self.state_file} is empty: Terraform was killed while writing it"
            state = json.loads(text)
        except (OSError, ValueError) as error:
            return f"Terraform's state {self.state_file} cannot be read ({error})"
        resources = state.get("resources", []) if isinstance(state, dict) else None
        if not (isinstance(resources, list) and all(isinstance(r, dict) for r in resources)):
            return f"Terraform's state {self.state_file} is not a Terraform state"
        return None

    def why_not_archived(self) -> list[str]:
        """What keeps the folder from being archived: each reason says what to do. Nothing is
        archived on a guess: a state that cannot be read, or an apply that did not end, may
        leave resources in the cloud that nobody would ever destroy."""
        refresh = (
            "make sure no run of the cluster is active, then destroy it again: its plan reads "
            "what the cloud holds, its apply removes it"
        )
        problem = self.state_problem()
        if problem is not None:
            backup = self.state_file.with_name(self.state_file.name + ".backup")
            return [
                f"{problem}, so it counts as one that still holds resources: {backup.name}, if "
                "there, holds the state from before that run. Check the cloud for the cluster's "
                "servers, volumes and floating IPs, delete them or import them into a state put "
                f"back from {backup.name}, then destroy the cluster"
            ]
        reasons = []
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        if any(r.get("mode") == "managed" and r.get("instances") for r in state.get("resources", [])):
            reasons.append(
                f"Terraform's state ({self.state_file}) still holds resources; destroy the cluster before "
                "archiving its folder"
            )
        unfinished = self.unfinished_apply()
        if unfinished is not None:
            reasons.append(
                f"the apply of {unfinished.plan_file} started and never ended (its run was killed), so "
                f"the cloud may hold resources its state does not list; {refresh}"
            )
        if (self.root / LOCK_INFO).exists():
            reasons.append(
                f"Terraform's lock ({LOCK_INFO}) is still there: a Terraform run on this cluster did not "
                f"end, or still runs; {refresh}"
            )
        return reasons

    def archive(self) -> Path:
        """Move the folder (logs and all) under clusters/.archive/ and take the guest password
        out of it; refuses while it may hold resources (`why_not_archived`)."""
        reasons = self.why_not_archived()
        if reasons:
            raise WorkspaceError(f"{self.hostname}: its folder is not archived: " + "; and ".join(reasons))
        secrets = self._secrets()
        target = self._move_to_archive()
        remove_secrets(target, secrets)
        return target

    def _secrets(self) -> set[str]:
        """The guest passwords in the folder: the specs', or the one Terraform generated."""
        found = set()
        for path in (self.spec_file, self.proposal_file):
            with contextlib.suppress(SpecError):
                found.add(load_spec(path, stored=True).guest_passwd.get_secret_value())
        # Terraform's configuration and variables, cluster.json, the state and its backup.
        for path in [*self.root.glob("*.json"), *self.root.glob(f"{self.state_file.name}*")]:
            try:
                found.update(_passwords_in(json.loads(path.read_text())))
            except (OSError, ValueError):
                continue  # absent or unreadable: nothing to find there
        return found

    def _move_to_archive(self) -> Path:
        archive = self.root.parent / ARCHIVE
        archive.mkdir(mode=0o700, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for attempt in range(1, 1000):
            target = archive / (f"{self.hostname}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
            try:
                # rename, not shutil.move: it never nests the folder inside an existing one.
                os.rename(self.root, target)
            except OSError as error:
                if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
            return target
        raise WorkspaceError(f"{self.hostname}: {archive} already holds 999 archives made at {stamp}")


def ownership_of(clusters_dir: Path, hostname: str) -> Ownership | None:
    """Who the cluster `hostname` belongs to: its folder's record, else its latest archive's."""
    root = folder_of(clusters_dir, hostname)
    return Workspace(root).ownership() if root.is_dir() else archived_ownership(clusters_dir, hostname)


def latest_archive(clusters_dir: Path, hostname: str) -> Workspace | None:
    """The latest archived folder of the cluster `hostname`, to read: a destroyed cluster's
    owner and logs. None when it was never archived."""
    archive = clusters_dir / ARCHIVE
    latest = max(archive.glob(f"{checked_hostname(hostname)}-*"), key=lambda p: p.stat().st_mtime, default=None)
    return Workspace(latest) if latest is not None else None


def archived_ownership(clusters_dir: Path, hostname: str) -> Ownership | None:
    """Who the cluster `hostname` belonged to, from its latest archived folder (a destroyed
    cluster stays visible to the same people); None when no archive records it."""
    archived = latest_archive(clusters_dir, hostname)
    return archived.ownership() if archived is not None else None


def _passwords_in(data: Any) -> Iterator[str]:
    """The guest passwords in Terraform's variables or state, or in cluster.json."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("guest_passwd", "guest_password") and isinstance(value, str):
                yield value
            elif key == "guests" and isinstance(value, dict) and isinstance(value.get("password"), str):
                yield value["password"]  # the accounts output
            else:
                yield from _passwords_in(value)
    elif isinstance(data, list):
        for item in data:
            yield from _passwords_in(item)


def folder_of(clusters_dir: Path, hostname: str) -> Path:
    """Where the folder of the cluster `hostname` is in `clusters_dir`, whether it exists or not.

    Refused (WorkspaceError naming hostname): text that is not a cluster's hostname
    (mchub.spec.hostname), and a folder that is a symbolic link or lies outside `clusters_dir`. A
    hostname comes from URLs, command lines and flow parameters: it must never lead elsewhere.
    """
    try:
        checked_hostname(hostname)
    except HostnameError as error:
        raise WorkspaceError(str(error)) from None
    root = clusters_dir / hostname
    if root.is_symlink() or not root.resolve().is_relative_to(clusters_dir.resolve()):
        raise WorkspaceError(
            f"hostname: the folder of {hostname} ({root}) is a symbolic link; a cluster's folder must be "
            f"a real folder inside {clusters_dir}: remove the link"
        )
    return root


def create(clusters_dir: Path, spec: ClusterSpec) -> Workspace:
    """A new, empty folder for `spec`; an existing folder is refused, never reused or deleted."""
    root = folder_of(clusters_dir, spec.hostname)
    clusters_dir.mkdir(parents=True, exist_ok=True)
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        raise _name_taken(root) from None
    (root / "logs").mkdir()
    return Workspace(root)


def check_name_free(clusters_dir: Path, hostname: str) -> None:
    """Refuse (WorkspaceError naming cluster_name) a new cluster whose folder exists."""
    root = folder_of(clusters_dir, hostname)
    if root.exists():
        raise _name_taken(root)


def _name_taken(root: Path) -> WorkspaceError:
    return WorkspaceError(
        f"cluster_name: a cluster named {root.name} already exists (folder {root}); "
        "choose another name, or modify that cluster instead"
    )


def open_existing(clusters_dir: Path, hostname: str) -> Workspace:
    root = folder_of(clusters_dir, hostname)
    if not root.is_dir():
        raise WorkspaceError(
            f"no cluster named {hostname} (no folder {root}); `mchub list` shows the clusters there are"
        )
    return Workspace(root)


def list_hostnames(clusters_dir: Path) -> list[str]:
    """The clusters that have a folder: what folder_of accepts (not .archive or .requests,
    nor a link placed among them)."""
    if not clusters_dir.is_dir():
        return []
    return sorted(
        p.name for p in clusters_dir.iterdir()
        if hostname_problem(p.name) is None and p.is_dir() and not p.is_symlink()
    )

