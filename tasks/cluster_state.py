"""Read back what the apply built: machines, volumes, accounts, service URLs, held quota."""

from prefect import get_run_logger

from mchub.cloud.resources import reader
from mchub.cluster.state import ClusterState, read_cluster_state
from mchub.cluster.workspace import Workspace
from mchub.terraform.runner import Terraform
from tasks.uncached import uncached_task


@uncached_task(name="read-cluster-state")
def read_state(workspace: Workspace, terraform: Terraform) -> ClusterState:
    """The cluster as Terraform's state and outputs describe it, also saved in its folder
    (cluster.json, 0600: it holds the guest password, which is why this result is never
    persisted by Prefect)."""
    spec = workspace.spec()
    flavors = {flavor.name: flavor for flavor in reader(spec.cloud).read().flavors}
    state = read_cluster_state(terraform, spec, flavors)
    workspace.save_cluster_state(state)
    get_run_logger().info(
        "%s has %d instance(s) and %d volume(s); address %s",
        state.hostname, len(state.instances), len(state.volumes), state.public_ip or "none",
    )
    return state
