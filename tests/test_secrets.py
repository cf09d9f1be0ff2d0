"""Secrets through a cluster's whole life: after a create, a modification and a destroy (the
CLI's and the pages' paths), the guest password and the cloud's password are nowhere in
Prefect (its database, logs, artifacts, flow parameters), in the logs of the platform or of
the cluster, or in what the commands printed; and every file that holds one is 0600.

test_flows.py::test_nothing_prefect_stored_holds_a_secret searches Prefect after a build
with a generated password; this follows one cluster to its end and adds the cluster's own
logs, the flow parameters and the files' modes.
"""

import stat
from collections.abc import Iterable
from pathlib import Path
from uuid import uuid4

import yaml

from mchub.cluster.workspace import ARCHIVE
from mchub.orchestration import runs
from mchub.status import Status, cluster_status
from tests import test_flows
from tests.harness import LiveStack, prefect_database_files
from tests.reliability_helpers import mchub
from tests.test_flows import SANDBOX_OS_PASSWORD, build, cluster_spec, with_nodes

roomy_sandbox = test_flows.roomy_sandbox  # a fixture (autouse): quotas that fit whatever stands

PASSWORD = f"Guest-{uuid4().hex[:12]}"


def files_in(*folders: Path) -> list[Path]:
    return sorted({path for folder in folders for path in folder.rglob("*") if path.is_file()})


def holding(secret: str, paths: Iterable[Path]) -> list[Path]:
    """The files among `paths` whose bytes contain `secret`."""
    return [path for path in paths if secret.encode() in path.read_bytes()]


def readable_by_others(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def what_prefect_tells(stack: LiveStack) -> dict[str, list[str]]:
    """Every artifact, log line and flow run's parameters, as Prefect's API gives them."""
    with stack.client() as client:
        artifacts = runs.all_pages(lambda offset: client.read_artifacts(limit=runs.PAGE_SIZE, offset=offset))
        logs = runs.all_pages(lambda offset: client.read_logs(limit=runs.PAGE_SIZE, offset=offset))
        flow_runs = runs.all_pages(lambda offset: client.read_flow_runs(limit=runs.PAGE_SIZE, offset=offset))
    return {
        "artifacts": [f"{a.key} {a.data} {a.description}" for a in artifacts],
        "logs": [log.message for log in logs],
        "flow parameters": [f"{r.name} {r.parameters}" for r in flow_runs],
    }


def test_a_clusters_secrets_stay_out_of_prefect_and_logs_and_only_in_private_files(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    spec = cluster_spec(guest_passwd=PASSWORD)
    host = spec.hostname
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text(yaml.safe_dump(spec.to_data(include_secrets=True)))
    spec_file.chmod(0o600)

    created = mchub("create", str(spec_file), "--approve")
    assert created.code == 0, created.err
    modified = build(with_nodes(spec, 2), new=False)  # what the modify page submits
    assert modified.state_type == "COMPLETED", modified.state_message
    destroyed = mchub("destroy", host, "--approve")
    assert destroyed.code == 0, destroyed.err
    assert cluster_status(runs.runs_of(host)) == Status.DESTROYED

    [archived] = (live_stack.clusters_dir / ARCHIVE).glob(f"{host}-*")
    cluster_logs = sorted((archived / "logs").glob("*.log*"))
    assert {"apply.log", "destroy.log"} <= {path.name for path in cluster_logs}
    told = what_prefect_tells(live_stack)
    assert all(any(host in text for text in told[kind]) for kind in told)  # this cluster's runs are searched
    printed = [created.out, created.err, destroyed.out, destroyed.err]
    assert host in created.out

    everywhere = files_in(live_stack.settings.home, live_stack.clusters_dir)
    for secret in (PASSWORD, SANDBOX_OS_PASSWORD):
        assert not holding(secret, [*prefect_database_files(live_stack), *live_stack.log_dir.iterdir(), *cluster_logs])
        for kind, texts in told.items():
            assert not [text for text in texts if secret in text], f"Prefect's {kind} hold a secret"
        assert not [text for text in printed if secret in text], "the commands printed a secret"
        assert not [path for path in holding(secret, everywhere) if readable_by_others(path)]
    # The destroyed cluster's archive keeps no password (the search does find one: the spec file's).
    assert holding(PASSWORD, [spec_file]) and not holding(PASSWORD, files_in(archived))
