"""Steps on a cluster's folder: make it match the requested spec, archive it."""

from pathlib import Path

from prefect import get_run_logger

from mchub.cluster import lifecycle
from mchub.cluster.workspace import Workspace
from tasks.uncached import uncached_task


@uncached_task(name="prepare")
def prepare_workspace(request_file: str, hostname: str, new: bool) -> Workspace:
    """The folder of `hostname` with the requested spec and its main.tf.json (unchanged
    when a resumed run finds them already written)."""
    workspace = lifecycle.prepare(Path(request_file), new=new, hostname=hostname)
    get_run_logger().info("folder %s is ready", workspace.root)
    return workspace


@uncached_task(name="archive")
def archive_workspace(workspace: Workspace) -> Path:
    """Move the folder, logs and all, under clusters/.archive/ (it must hold no resources)."""
    archived = workspace.archive()
    get_run_logger().info("folder of %s archived to %s", workspace.hostname, archived)
    return archived
