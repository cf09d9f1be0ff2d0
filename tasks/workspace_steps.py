"""Steps on a cluster's folder: make it match the requested spec, open it, archive it."""

from pathlib import Path

from prefect import get_run_logger

from mchub.cluster import lifecycle
from mchub.cluster.workspace import Workspace, WorkspaceError, open_existing
from mchub.settings import get_settings
from mchub.terraform.runner import Terraform
from tasks.uncached import uncached_task


@uncached_task(name="prepare")
def prepare_workspace(request_file: str, hostname: str, new: bool) -> tuple[Workspace, Terraform]:
    """The folder of `hostname` with the requested spec and its main.tf.json (unchanged
    when a resumed run finds them already written), and Terraform for it; refused when the
    request describes another cluster."""
    workspace = lifecycle.prepare(Path(request_file), new=new, hostname=hostname)
    if workspace.hostname != hostname:
        raise WorkspaceError(
            f"hostname: the run is for {hostname} but {request_file} describes {workspace.hostname}; "
            "submit the request again with its own hostname"
        )
    get_run_logger().info("folder %s is ready", workspace.root)
    return workspace, lifecycle.terraform_for(workspace)


@uncached_task(name="open")
def open_workspace(hostname: str) -> tuple[Workspace, Terraform]:
    """The existing folder of `hostname`, with main.tf.json rendered from its applied spec
    (a build killed mid-plan leaves its proposal's), and Terraform for it."""
    workspace = open_existing(get_settings().clusters_dir, hostname)
    lifecycle.render_applied(workspace)
    return workspace, lifecycle.terraform_for(workspace)


@uncached_task(name="archive")
def archive_workspace(workspace: Workspace) -> Path:
    """Move the folder, logs and all, under clusters/.archive/ (it must hold no resources)."""
    archived = workspace.archive()
    get_run_logger().info("folder of %s archived to %s", workspace.hostname, archived)
    return archived
