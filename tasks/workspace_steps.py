"""Steps on a cluster's folder: make it match the requested spec, open it, archive it."""

from pathlib import Path

from prefect import get_run_logger

from mchub.access.people import Person
from mchub.access.rights import AccessDenied, check_act
from mchub.access.signed import verified
from mchub.cluster import lifecycle, shared_store
from mchub.cluster.workspace import Workspace, WorkspaceError, open_existing
from mchub.settings import get_settings
from mchub.terraform.runner import Terraform
from tasks.uncached import uncached_task


@uncached_task(name="prepare")
def prepare_workspace(
    request_file: str, hostname: str, new: bool, person: str, project: str
) -> tuple[Workspace, Terraform, Person]:
    """The folder of `hostname` with the requested spec and its main.tf.json (unchanged
    when a resumed run finds them already written), Terraform for it, and who asked; refused
    (the request removed) when the request describes another cluster, or when `person` is not
    signed by the hub or may not make this build (mchub.cluster.lifecycle.check_build)."""
    request = lifecycle.request_here(Path(request_file))
    try:
        asker = verified(person, hostname, "build")
    except AccessDenied:
        lifecycle.discard_request(request)
        raise
    owner = lifecycle.check_build(request, new=new, hostname=hostname, person=asker, project=project)
    workspace = lifecycle.prepare(request, new=new, hostname=hostname, owner=owner)
    if workspace.hostname != hostname:
        raise WorkspaceError(
            f"hostname: the run is for {hostname} but {request_file} describes {workspace.hostname}; "
            "submit the request again with its own hostname"
        )
    get_run_logger().info("folder %s is ready for %s", workspace.root, asker.label())
    return workspace, lifecycle.terraform_for(workspace), asker


@uncached_task(name="open")
def open_workspace(hostname: str, person: str) -> tuple[Workspace, Terraform, Person]:
    """The existing folder of `hostname` and Terraform for it (`open_applied`), and who asks to
    destroy it: refused unless `person` is signed by the hub and may act on the cluster."""
    asker = verified(person, hostname, "destroy")
    workspace = open_existing(get_settings().clusters_dir, hostname)
    check_act(asker, workspace.ownership(), hostname, "destroy")
    return (*_applied(workspace), asker)


@uncached_task(name="open-applied")
def open_applied(hostname: str) -> tuple[Workspace, Terraform]:
    """The existing folder of `hostname`, with main.tf.json rendered from its applied spec
    (a build killed mid-plan leaves its proposal's), and Terraform for it: for the hub's own
    checks, which change nothing."""
    return _applied(open_existing(get_settings().clusters_dir, hostname))


def _applied(workspace: Workspace) -> tuple[Workspace, Terraform]:
    lifecycle.render_applied(workspace)
    return workspace, lifecycle.terraform_for(workspace)


@uncached_task(name="archive")
def archive_workspace(workspace: Workspace) -> Path:
    """Move the folder, logs and all, under clusters/.archive/ (it must hold no resources)."""
    archived = workspace.archive()
    shared_store.forget_state(workspace.hostname)
    get_run_logger().info("folder of %s archived to %s", workspace.hostname, archived)
    return archived
