"""A cluster's life in Terraform steps: request, prepare, init, plan, apply, destroy.

Plain Python that the flows call one step at a time. A flow suspended for approval runs
again from the top when it is resumed, so every step before the apply recognises work
already done and does not redo it: `prepare` finds its folder already written from the same
request, `init` is skipped for an unchanged configuration, and `plan` returns the plan that
was waiting for approval. `apply` applies only that plan, and only while main.tf.json is
what it was planned from.

A change is kept as the cluster's proposal beside its applied spec, and becomes its spec only
when an apply of its plan starts; main.tf.json is rendered from the proposal only while it is
planned and applied. A rejected plan, one never answered or one that failed leaves the cluster's
spec and configuration as they were, without any step having to undo anything.

The spec travels between the submitter and the flow as a request file under
`clusters/.requests/` (0600), because flow parameters are stored in Prefect's database and
the spec holds the guest password.
"""

import hashlib
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from mchub.access.people import Person
from mchub.access.rights import AccessDenied, Ownership, check_act, check_create
from mchub.cloud import connection
from mchub.cluster import drift, shared_store
from mchub.cluster.expiration import check_lifetime
from mchub.cluster.workspace import (
    PlanRecord,
    Workspace,
    WorkspaceError,
    check_name_free,
    create,
    list_hostnames,
    open_existing,
)
from mchub.settings import get_settings
from mchub.spec.model import ClusterSpec, FieldProblem, SpecError, dump_spec, load_spec
from mchub.terraform.config import write as write_config
from mchub.terraform.errors import TerraformError, TerraformInterrupted
from mchub.terraform.plan import PlanSummary
from mchub.terraform.progress import ApplyProgress
from mchub.terraform.runner import Terraform

REQUESTS = ".requests"

# What cannot change once a cluster exists: a new name or cloud would strand what was built,
# a new image would rebuild every machine, and the guest accounts keep their first password.
_LOCKED_FIELDS = ("cluster_name", "domain", "image", "cloud")


def new_cluster_request(
    spec: ClusterSpec, *, new: bool = True, hostname: str | None = None, clusters_dir: Path | None = None
) -> Path:
    """Write `spec` (0600) as `<clusters_dir>/.requests/<uuid>.yaml` and return its path, the
    flow's parameter. `new` False: a modification of the cluster `hostname` (default: the
    spec's). Refused before anything is written: a new cluster whose folder exists
    (WorkspaceError naming cluster_name), a modification of a cluster that has no folder, or
    one that changes what cannot change, or an expiration date past the maximum lifetime
    (SpecError naming the fields)."""
    clusters_dir = clusters_dir if clusters_dir is not None else get_settings().clusters_dir
    shared_store.pull()  # a name taken on another machine is taken
    if new:
        check_name_free(clusters_dir, spec.hostname)
        created = datetime.now(UTC).date()
    else:
        existing = open_existing(clusters_dir, hostname or spec.hostname)
        refuse_locked_changes(existing.spec(), spec)
        created = existing.created_at().date()
    check_lifetime(spec.expiration_date, created=created, max_days=get_settings().max_lifetime_days)
    requests = clusters_dir / REQUESTS
    requests.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = requests / f"{uuid4()}.yaml"
    dump_spec(spec, path)
    shared_store.push()  # the worker that takes the run may be on another machine
    return path


def request_here(request_file: Path) -> Path:
    """The request a run names, in this machine's clusters folder: with a shared store, it
    was written on the submitter's machine, and came here with the store's pull."""
    if shared_store.shared_store() is None:
        return request_file
    return get_settings().clusters_dir / REQUESTS / request_file.name


def check_build(request_file: Path, *, new: bool, hostname: str, person: Person, project: str) -> Ownership | None:
    """AccessDenied (the request removed) unless `person` may make the build the request asks
    for: a new cluster in `project`, on a cloud the project may build on, or a change of a
    cluster they may act on. Returns the new cluster's ownership, for `prepare` to record.
    A resumed run (its request already consumed) is checked against the folder it prepared."""
    try:
        if new and request_file.exists():
            check_create(person, project, load_spec(request_file, stored=True).cloud)
            return Ownership(owner=person.ref, project=project)
        ws = open_existing(_clusters_dir_of(request_file), hostname)
        check_act(person, ws.ownership(), hostname, "change")
        return None
    except AccessDenied:
        discard_request(request_file)
        raise


def prepare(
    request_file: Path, *, new: bool, hostname: str | None = None, owner: Ownership | None = None
) -> Workspace:
    """The cluster's folder, holding the requested spec as its proposal and main.tf.json
    rendered from it for the plan; the cluster's spec (spec.yaml) stays the applied one until
    an apply of that plan starts.

    `new`: creates `clusters/<hostname>/`, recording `owner` in it (checked by check_build),
    refusing a folder that exists. Else opens the
    folder of `hostname` (default: the request's own) and refuses a request that changes its
    cluster_name, domain, image, cloud or guest password or removes a volume. The request
    file is removed once copied, and also when refused (it holds the guest password and can
    never be used). Run again with the same request (a resumed flow), it changes nothing,
    unless the folder's proposal or configuration is no longer what the request renders (cut
    short, damaged, or put back to the applied spec's after the plan): then it is written again.
    """
    clusters_dir = _clusters_dir_of(request_file)
    request_id = request_file.stem
    if not request_file.exists():
        ws = _prepared_from(clusters_dir, request_id, request_file)
        proposal = ws.proposed_spec()
        spec = proposal if proposal is not None else ws.spec()  # else its apply has started
    else:
        spec = load_spec(request_file, stored=True)  # stored: an expiration date may pass while it waits
        try:
            if new:
                ws = _new_workspace(clusters_dir, spec, request_id, owner)
            else:
                ws = open_existing(clusters_dir, hostname or spec.hostname)
                refuse_locked_changes(ws.spec(), spec)
                ws.record_request(request_id)
        except (WorkspaceError, SpecError):
            request_file.unlink()
            raise
    if not _proposes(ws, spec):
        ws.propose(spec)
    _render(ws, spec)
    request_file.unlink(missing_ok=True)
    return ws


def render_applied(ws: Workspace) -> None:
    """main.tf.json and its values rendered from the cluster's applied spec: what its folder
    holds but while a build plans or applies a proposal, so that a proposal rejected, never
    answered or failing its plan leaves the configuration as it was. Without a proposal,
    main.tf.json was rendered from nothing else: it is left as it is."""
    if ws.proposal_file.exists():
        _render(ws, ws.spec())


def discard_request(request_file: Path) -> None:
    """Remove a request whose run was refused before preparing it: it holds the guest
    password. Anything not in a requests folder is left alone (a run's parameter could name
    any file)."""
    if request_file.parent.name == REQUESTS:
        request_file.unlink(missing_ok=True)


def as_modification(current: ClusterSpec, requested: ClusterSpec) -> ClusterSpec:
    """`requested` as a modification of the cluster whose spec is `current`: an empty guest
    password keeps the cluster's (the guest accounts keep theirs; a spec file need not repeat it)."""
    if requested.guest_passwd.get_secret_value():
        return requested
    return requested.model_copy(update={"guest_passwd": current.guest_passwd})


def refuse_locked_changes(current: ClusterSpec, requested: ClusterSpec) -> None:
    """SpecError naming every field a modification may not change, and every removed volume."""
    problems = [
        FieldProblem(
            field=field,
            message=f"cannot change once the cluster exists ({getattr(current, field)!r} → "
            f"{getattr(requested, field)!r}); keep {getattr(current, field)!r}, or create a new cluster",
        )
        for field in _LOCKED_FIELDS
        if getattr(current, field) != getattr(requested, field)
    ]
    if current.guest_passwd != requested.guest_passwd:
        problems.append(
            FieldProblem(
                field="guest_passwd",
                message="cannot change once the cluster exists: the guest accounts keep the password "
                "they were given; give the current one",
            )
        )
    problems += [
        FieldProblem(
            field=f"volumes.{tag}.{name}",
            message="removing a volume deletes it with its data; keep it in the spec "
            "(destroy the whole cluster to delete everything)",
        )
        for tag, named in current.volumes.items()
        for name in named
        if name not in requested.volumes.get(tag, {})
    ]
    if problems:
        raise SpecError(problems)


def terraform_for(ws: Workspace) -> Terraform:
    """Terraform for the cluster's folder, with the credentials of the cloud its spec names
    and logs in its logs/."""
    env = connection.terraform_env(connection.target(ws.spec().cloud).name)
    if (store := shared_store.shared_store()) is not None:
        env |= store.terraform_env()
    return Terraform(ws.root, log_dir=ws.logs, env=env)


def init(ws: Workspace, tf: Terraform) -> bool:
    """`terraform init`; False (and nothing run) when already done for this configuration's
    modules and Terraform. Changing counts or sizes needs no new init."""
    fingerprint = _init_fingerprint(ws, tf)
    if ws.initialised_for() == fingerprint:
        return False
    try:
        tf.init()
    except BaseException:
        render_applied(ws)  # the build ends here, its proposal never planned
        raise
    ws.record_init(fingerprint)
    return True


def plan(ws: Workspace, tf: Terraform, *, destroy: bool = False) -> tuple[PlanRecord, PlanSummary]:
    """Plan (a destroy plan with `destroy`) and summarise it. The latest plan is returned
    instead when it is of the same kind, made from the current main.tf.json and not applied
    yet: a flow resumed after approval gets the plan that was approved. Refused
    (WorkspaceError, nothing run) while Terraform's state is empty or unreadable.

    A build plans the proposal `prepare` rendered; whatever the outcome, main.tf.json is the
    applied spec's again afterwards (`render_applied`): its plan may be rejected or never
    answered, and then no step of the run comes back to put it back."""
    if destroy:
        return _plan(ws, tf, destroy=True)
    try:
        return _plan(ws, tf, destroy=False)
    finally:
        render_applied(ws)


def _refuse_unreadable_state(ws: Workspace) -> None:
    problem = ws.state_problem()
    if problem is not None:
        # Terraform would read an empty state as "nothing built" and plan every resource
        # again, beside the ones the cloud still holds.
        raise WorkspaceError(
            f"{ws.hostname}: {problem}; it is not planned from: put back the state from "
            f"{ws.state_file.name}.backup (the state before that run) after checking the cloud for "
            "the cluster's servers, volumes and floating IPs that it does not list"
        )


def _plan(ws: Workspace, tf: Terraform, *, destroy: bool) -> tuple[PlanRecord, PlanSummary]:
    _refuse_unreadable_state(ws)
    config_hash = ws.config_hash()
    latest = ws.plan_record()
    if (
        latest is not None
        and not latest.applied
        and latest.destroy == destroy
        and latest.config_hash == config_hash
        and (ws.root / latest.plan_file).exists()
        and (ws.root / latest.plan_json).is_file()
    ):
        return latest, PlanSummary.from_plan_json(ws.plan_json(latest))
    plan_file = ws.new_plan_file(destroy=destroy)
    tf.plan(plan_file, destroy=destroy, replace=() if destroy else drift.vanished_servers(ws))
    plan_json = tf.show_plan(plan_file)
    record = ws.save_plan(plan_file, plan_json, destroy=destroy, config_hash=config_hash)
    return record, PlanSummary.from_plan_json(plan_json)


def check_drift(ws: Workspace, tf: Terraform, now: datetime) -> drift.DriftCheck:
    """Plan the cluster's applied spec (spec.yaml, never its proposal) without keeping the plan
    or applying it, and record the outcome as its latest drift check. The folder's plans and
    configuration are left as they were: main.tf.json is written only when it is not the
    applied spec's already (a build killed mid-plan leaves its proposal's)."""
    _refuse_unreadable_state(ws)
    _render(ws, ws.spec())
    with tempfile.TemporaryDirectory(prefix=".drift-", dir=ws.root) as scratch:
        plan_file = Path(scratch) / "drift.tfplan"
        tf.plan(plan_file, replace=drift.vanished_servers(ws))
        summary = PlanSummary.from_plan_json(tf.show_plan(plan_file))
    check = drift.DriftCheck(checked_at=now, summary=summary)
    drift.record(ws, check)
    return check


def apply(
    ws: Workspace,
    tf: Terraform,
    approved: PlanRecord,
    on_progress: Callable[[ApplyProgress], None] | None = None,
) -> ApplyProgress:
    """Apply exactly the `approved` plan, calling `on_progress` at each Terraform message.

    Refused (WorkspaceError, nothing run) when it is no longer the latest plan, was applied
    already, or main.tf.json (for a build: rendered from the proposal) changed since. A build's
    proposal becomes the cluster's spec as its apply starts. The plan is marked applied before
    Terraform starts: whatever the outcome, the next step is a new plan. A failure raises
    TerraformError (its message is Terraform's diagnostic, e.g. the cloud's quota refusal),
    a cancellation TerraformCancelled once Terraform has saved its state.
    """
    proposal = None if approved.destroy else ws.proposed_spec()
    if proposal is not None:
        _render(ws, proposal)  # what the plan was made from
    try:
        plan_file = ws.approved_plan(approved)
    except WorkspaceError:
        render_applied(ws)
        raise
    if proposal is not None:
        # From here the cloud moves towards the proposal, even if the apply fails halfway.
        ws.adopt_proposal()
    progress = ApplyProgress.from_plan(PlanSummary.from_plan_json(ws.plan_json(approved)))
    ws.mark_applied(approved)

    def on_event(event: dict[str, Any]) -> None:
        progress.update(event)
        if on_progress is not None:
            on_progress(progress)

    # Until Terraform has ended by itself (its state then lists what it made), the folder is
    # marked: a run killed meanwhile leaves it marked as holding resources, never as empty.
    ws.mark_apply_started(approved)
    shared_store.push()  # the other machines must see the mark should this one die mid-apply
    try:
        tf.apply(plan_file.relative_to(ws.root), step="destroy" if approved.destroy else "apply", on_event=on_event)
    except TerraformInterrupted as interrupted:
        if not interrupted.killed:  # stopped on SIGINT: it saved its state
            ws.mark_apply_ended()
        raise
    except TerraformError:
        ws.mark_apply_ended()  # an error exit: Terraform saved what it made
        raise
    else:
        ws.mark_apply_ended()
    finally:
        _keep_state_private(ws)
        shared_store.copy_state(ws.hostname)
    return progress


def _proposes(ws: Workspace, spec: ClusterSpec) -> bool:
    try:
        return ws.proposed_spec() == spec
    except SpecError:  # damaged: written again
        return False


def _render(ws: Workspace, spec: ClusterSpec) -> None:
    """Write main.tf.json and its variables for `spec`, unless the folder holds exactly them
    already (a resumed run's), not a main.tf.json cut short (a full disk, a crash) or edited
    by hand."""
    target = connection.target(spec.cloud)
    # Rendered beside the folder, so that its relative paths (the sandbox module's) are the same.
    with tempfile.TemporaryDirectory(prefix=".render-", dir=ws.root.parent) as scratch:
        write_config(spec, target.kind, Path(scratch), target.sandbox_url)
        rendered = [path for path in Path(scratch).iterdir() if path.is_file()]
        if all(_same_bytes(path, ws.root / path.name) for path in rendered):
            return
    ws.write_config(spec, target.kind, target.sandbox_url)


def _same_bytes(expected: Path, found: Path) -> bool:
    try:
        return found.read_bytes() == expected.read_bytes()
    except OSError:
        return False


def _clusters_dir_of(request_file: Path) -> Path:
    if request_file.parent.name != REQUESTS:
        raise WorkspaceError(
            f"{request_file}: a request file lives in <clusters dir>/{REQUESTS}/; "
            "make it with mchub.cluster.lifecycle.new_cluster_request"
        )
    return request_file.parent.parent


def _new_workspace(clusters_dir: Path, spec: ClusterSpec, request_id: str, owner: Ownership | None) -> Workspace:
    try:
        ws = create(clusters_dir, spec)
    except WorkspaceError:
        existing = open_existing(clusters_dir, spec.hostname)
        if existing.request_id() != request_id:
            raise
        return existing  # made by an earlier try of this same request
    if owner is not None:
        ws.record_ownership(owner)
    ws.record_request(request_id)
    return ws


def _prepared_from(clusters_dir: Path, request_id: str, request_file: Path) -> Workspace:
    """The folder an earlier run prepared from this (since removed) request file."""
    for hostname in list_hostnames(clusters_dir):
        ws = Workspace(clusters_dir / hostname)
        if ws.request_id() == request_id:
            return ws
    raise WorkspaceError(
        f"{request_file} does not exist and no cluster folder was prepared from it; submit the request again"
    )


def _init_fingerprint(ws: Workspace, tf: Terraform) -> str:
    """What `terraform init` depends on: module sources, Terraform and provider settings, and
    which Terraform runs; not the module inputs."""
    config = json.loads(ws.main_tf.read_text())
    relevant = {
        "terraform": config.get("terraform"),
        "provider": config.get("provider"),
        "modules": {
            name: {key: module.get(key) for key in ("source", "version")}
            for name, module in config.get("module", {}).items()
        },
        "binary": list(tf.binary.argv),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _keep_state_private(ws: Workspace) -> None:
    # Terraform writes its state world-readable, and the state holds the outputs' secrets.
    for path in (ws.state_file, ws.state_file.with_name(ws.state_file.name + ".backup")):
        if path.exists():
            path.chmod(0o600)
