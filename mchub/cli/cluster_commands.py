"""The commands that act on clusters through Prefect's deployments: create, modify, approve,
reject, cancel, extend, status, list, destroy, logs; and deploy / reconcile, which `mchub up`
runs at start-up.

`create`, `modify` and `destroy` follow their run in the terminal until it ends, showing each change
of status and the plan to approve; the exit code is 0 only when the cluster is up
(provisioning_success) or gone (destroyed).
"""

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from mchub.access.people import operator
from mchub.cli.spec_file import SpecProblemsError, checked_spec
from mchub.cluster import shared_store
from mchub.cluster.workspace import Workspace, WorkspaceError, folder_of
from mchub.orchestration.stack import prefect_home, worker_name
from mchub.settings import get_settings
from mchub.status import RunView, Status, run_status

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

Command = Callable[[argparse.Namespace], int]


def add_cluster_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    create = commands.add_parser("create", help="build a new cluster from a spec file, through its plan and approval")
    create.add_argument("spec", type=Path, help="cluster spec in YAML, e.g. examples/cluster.yaml")
    create.add_argument(
        "--project", default=None, help="the project the cluster belongs to (default: the first of MCHUB_PROJECTS)"
    )
    _follow_options(create)
    create.set_defaults(run=_refusing_approve_without_wait(create, _create))

    modify = commands.add_parser(
        "modify", help="change a cluster to match a spec file, through its plan and approval (as the Modify form)"
    )
    _host_argument(modify)
    modify.add_argument("spec", type=Path, help="the cluster's new spec in YAML (an empty guest_passwd keeps its own)")
    _follow_options(modify)
    modify.set_defaults(run=_refusing_approve_without_wait(modify, _modify))

    repair = commands.add_parser(
        "repair", help="plan a cluster's spec again to put back what drifted, through its plan and approval"
    )
    _host_argument(repair)
    _follow_options(repair)
    repair.set_defaults(run=_refusing_approve_without_wait(repair, _repair))

    extend = commands.add_parser("extend", help="move a cluster's expiration date; nothing else changes, no Terraform run")
    _host_argument(extend)
    extend.add_argument(
        "--until", required=True, type=_day, metavar="DATE",
        help="the new expiration date, YYYY-MM-DD: the cluster lives through that day (UTC)",
    )
    extend.set_defaults(run=_extend)

    for verb, run, help_text in (
        ("approve", _approve, "approve the plan a cluster's run waits for"),
        ("reject", _reject, "reject the plan a cluster's run waits for; the run ends and nothing changes"),
    ):
        answer = commands.add_parser(verb, help=help_text)
        _host_argument(answer)
        answer.add_argument("--comment", default="", help="recorded with the answer")
        answer.set_defaults(run=run)

    cancel = commands.add_parser(
        "cancel", help="cancel the run acting on a cluster; Terraform stops and saves its state"
    )
    _host_argument(cancel)
    cancel.add_argument("--no-wait", action="store_true", help="return once the cancel is asked for")
    cancel.set_defaults(run=_cancel)

    status = commands.add_parser("status", help="a cluster's status and its latest run")
    _host_argument(status)
    status.set_defaults(run=_status)

    listing = commands.add_parser("list", help="every cluster and its status")
    listing.add_argument("--all", action="store_true", help="include destroyed clusters")
    listing.set_defaults(run=_list)

    destroy = commands.add_parser("destroy", help="destroy a cluster's cloud resources and archive its folder")
    _host_argument(destroy)
    _follow_options(destroy)
    destroy.set_defaults(run=_refusing_approve_without_wait(destroy, _destroy))

    logs = commands.add_parser("logs", help="the log of a cluster's latest run")
    _host_argument(logs)
    logs.set_defaults(run=_logs)

    deploy = commands.add_parser("deploy", help="create the work pool and apply prefect.yaml's deployments")
    deploy.set_defaults(run=_deploy)

    reconcile = commands.add_parser(
        "reconcile",
        help="mark as crashed the runs this machine's worker left unfinished when it died, and remove "
        "the request files no run will read",
    )
    reconcile.add_argument("--worker", default=worker_name(get_settings()), help="the worker's name (default: %(default)s)")
    reconcile.set_defaults(run=_reconcile)


def _host_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "hostname", metavar="HOST", type=_hostname, help="the cluster's hostname, e.g. hpc1.sandbox.mchub.dev"
    )


def _hostname(text: str) -> str:
    """HOST, checked (mchub.spec.hostname, and its folder stays in clusters/) before anything reads
    a folder or asks Prefect; refused, argparse says why."""
    try:
        folder_of(get_settings().clusters_dir, text)
    except WorkspaceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give it as YYYY-MM-DD, e.g. 2027-01-31") from None


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--approve", action="store_true", help="approve the plan without waiting for someone to")
    parser.add_argument(
        "--no-wait", action="store_true", help="return once the run is submitted (not with --approve)"
    )


def _refusing_approve_without_wait(parser: argparse.ArgumentParser, command: Command) -> Command:
    """`command`, refused before anything is submitted when given --approve with --no-wait.

    --approve answers the plan once the run has made it, so the command must be there to
    answer; an approval sent along with the run instead (a flow parameter) could be sent by
    anyone who submits runs through Prefect's API, not only by a person answering the plan."""

    def run(args: argparse.Namespace) -> int:
        if args.approve and args.no_wait:
            parser.error(
                "--approve and --no-wait cannot be used together: --approve answers the plan, so the "
                "command waits for it. Leave out --no-wait (Ctrl-C once the plan is approved stops "
                "following; the run goes on), or leave out --approve and answer the plan later with "
                "`mchub approve HOST`"
            )
        return command(args)

    return run


def _prefect_command(command: Command) -> Command:
    """Prefect kept in the project's home. Refusals (a busy cluster, a bad spec, Prefect not
    answering: MCHubError) are shown by `main` as every command's are."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        # Importing prefect creates its home: the project's, not ~/.prefect.
        os.environ.setdefault("PREFECT_HOME", str(prefect_home(get_settings())))
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        shared_store.pull()  # the clusters as the workers of every machine left them
        return command(args)

    return run


@_prefect_command
def _create(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    spec = checked_spec(args.spec)
    with runs.connect() as client:
        run_id = runs.submit_spec(spec, new=True, project=args.project, client=client)
        return _submitted(client, run_id, spec.hostname, args, Status.PROVISIONING_SUCCESS)


@_prefect_command
def _modify(args: argparse.Namespace) -> int:
    from mchub.cluster.lifecycle import as_modification
    from mchub.cluster.workspace import open_existing
    from mchub.orchestration import runs

    workspace = open_existing(get_settings().clusters_dir, args.hostname)
    state = workspace.cluster_state()
    spec = checked_spec(args.spec, held=state.held if state is not None else None)
    if spec.hostname != args.hostname:
        raise SpecProblemsError(
            f"{args.spec} cannot be used:\ncluster_name/domain: it describes {spec.hostname}, not {args.hostname}; "
            "give the cluster's own cluster_name and domain (a cluster cannot be renamed)"
        )
    spec = as_modification(workspace.spec(), spec)
    with runs.connect() as client:
        run_id = runs.submit_spec(spec, new=False, client=client)
        return _submitted(client, run_id, args.hostname, args, Status.PROVISIONING_SUCCESS)


@_prefect_command
def _repair(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    with runs.connect() as client:
        run_id = runs.submit_repair(args.hostname, client=client)
        return _submitted(client, run_id, args.hostname, args, Status.PROVISIONING_SUCCESS)


@_prefect_command
def _extend(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    runs.extend(args.hostname, args.until, operator(), field="--until")
    print(f"{args.hostname}: expires at the end of {args.until.isoformat()} (UTC); no Terraform run was needed")
    return 0


@_prefect_command
def _destroy(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    with runs.connect() as client:
        run_id = runs.submit_destroy(args.hostname, client=client)
        return _submitted(client, run_id, args.hostname, args, Status.DESTROYED)


@_prefect_command
def _approve(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    run = runs.approve(args.hostname, comment=args.comment)
    print(f"{args.hostname}: plan of {run.describe()} approved by {operator().name} (the hub's operator)")
    return 0


@_prefect_command
def _reject(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    run = runs.reject(args.hostname, comment=args.comment)
    print(f"{args.hostname}: plan of {run.describe()} rejected by {operator().name} (the hub's operator)")
    return 0


@_prefect_command
def _cancel(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs
    from mchub.status import cluster_status

    with runs.connect() as client:
        run = runs.cancel(args.hostname, operator(), client=client)
        print(f"{args.hostname}: cancelling {run.describe()}")
        if args.no_wait:
            return 0
        ended = runs.wait(run.id, poll_seconds=0.5, client=client)
        status = cluster_status(runs.runs_of(args.hostname, client=client))
    print(f"{args.hostname}: {status}")
    _print_left_in_cloud(args.hostname, status)
    if not ended.cancelled:
        print(f"mchub: {args.hostname}: the run ended before the cancel reached it: {ended.describe()}", file=sys.stderr)
        return 1
    return 0


def _print_left_in_cloud(hostname: str, status: Status) -> None:
    """For a cancelled cluster, what its state says it still holds."""
    from mchub.cluster.state import left_summary
    from mchub.cluster.workspace import open_existing

    if status != Status.CANCELLED:
        return
    try:
        workspace = open_existing(get_settings().clusters_dir, hostname)
    except WorkspaceError:
        return
    print(f"  {left_summary(workspace.left_in_cloud())}")


@_prefect_command
def _status(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs
    from mchub.cluster.drift import last_check_of
    from mchub.status import cluster_status, failed_change

    with runs.connect() as client:
        history = runs.runs_of(args.hostname, client=client)
        check = last_check_of(args.hostname)
        status = cluster_status(history, check)
        print(f"{args.hostname}: {status}")
        if status == Status.DRIFTED and check is not None:
            print(f"  the cloud no longer matches (drift check of {check.checked_at:%Y-%m-%d %H:%M} UTC); "
                  "`mchub repair` would:")
            for line in check.summary.lines():
                print(f"    {line}")
        failed = failed_change(history)
        if failed is not None:
            why = f": {failed.reason}" if failed.reason else ""
            print(f"  change not made (the cluster is as it was): {failed.describe()}{why}")
        if history:
            latest = history[0]
            print(f"  latest run: {latest.describe()}" + (f", phase {latest.phase_label}" if latest.phase_label else ""))
            for heading, text in (("progress", latest.progress), ("message", latest.reason)):
                if text:
                    print(f"  {heading}: {text}")
            if latest.awaiting_approval:
                print(runs.plan_markdown(latest, client=client) or "  (the run has published no plan)")
        _print_left_in_cloud(args.hostname, status)
    _print_expiry(args.hostname)
    return 1 if status == Status.NOT_FOUND else 0


def _print_expiry(hostname: str) -> None:
    """When the cluster expires and which reminders went out, as its page shows them."""
    from datetime import UTC

    from mchub.cluster.expiration import expires_at, reminder_schedule, time_left
    from mchub.cluster.workspace import open_existing
    from mchub.spec.model import SpecError

    try:
        workspace = open_existing(get_settings().clusters_dir, hostname)
        spec = workspace.spec()
    except (WorkspaceError, SpecError):
        return  # destroyed (archived), or a spec the status above explains
    expires = expires_at(spec)
    if expires is None:
        print("  expires: never")
        return
    now = datetime.now(UTC)
    when = f"in about {time_left(expires, now)}" if expires > now else "expired"
    print(f"  expires: end of {spec.expiration_date} (UTC), {when}")
    sent = [r for r in reminder_schedule(workspace, get_settings().expiry_reminder_hours) if r.sent_at is not None]
    for reminder in sent:
        print(f"  reminder {reminder.lead} before: sent {reminder.sent_at:%Y-%m-%d %H:%M} UTC")


@_prefect_command
def _list(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    shown = {h: s for h, s in runs.statuses().items() if args.all or s != Status.DESTROYED}
    if not shown:
        print("no clusters" + ("" if args.all else " (`mchub list --all` includes destroyed ones)"))
    for hostname, status in shown.items():
        print(f"{hostname:<50} {status:<22} {_owner(hostname)}")
    return 0


def _owner(hostname: str) -> str:
    """"alice in physics", from the cluster's folder; "" for a cluster without one or an owner."""
    folder = folder_of(get_settings().clusters_dir, hostname)
    ownership = Workspace(folder).ownership() if folder.is_dir() else None
    return f"{ownership.owner.name} in {ownership.project}" if ownership else ""


@_prefect_command
def _logs(args: argparse.Namespace) -> int:
    from mchub.orchestration import runs

    with runs.connect() as client:
        history = runs.runs_of(args.hostname, client=client)
        if not history:
            raise runs.RunsError(f"{args.hostname} has no runs; `mchub list` shows the clusters there are")
        print(f"log of {history[0].describe()}:")
        for line in runs.run_logs(history[0].id, client=client):
            print(f"{line.timestamp:%Y-%m-%d %H:%M:%S} {_level_name(line.level):<7} {line.message}")
    print(f"Terraform's own logs: {get_settings().clusters_dir / args.hostname / 'logs'}")
    return 0


@_prefect_command
def _deploy(args: argparse.Namespace) -> int:
    from mchub.orchestration import deployments, notifications, runs

    created = deployments.ensure_work_pool()
    print(f"work pool {deployments.WORK_POOL!r} {'created' if created else 'updated'}")
    deployments.apply_deployments()
    print("deployments of prefect.yaml applied")
    with runs.connect() as client:
        channels = notifications.apply_notifications(get_settings(), client)
    print(f"notifications: {', '.join(channels)}" if channels else "notifications: none (no MCHUB_SMTP_URL, no project webhook)")
    return 0


@_prefect_command
def _reconcile(args: argparse.Namespace) -> int:
    from mchub.orchestration import deployments, runs

    crashed = deployments.reconcile_orphaned_runs(args.worker)
    for run in crashed:
        print(f"run {run.name!r} ({run.id}) was left unfinished by a dead worker: marked crashed")
    print(f"{len(crashed)} run(s) of worker {args.worker!r} reconciled")
    abandoned = runs.discard_abandoned_requests()
    print(f"{len(abandoned)} request file(s) no run will read removed")
    return 0


def _submitted(client: "SyncPrefectClient", run_id: UUID, hostname: str, args: argparse.Namespace, success: Status) -> int:
    from mchub.orchestration import runs

    run = runs.read_run(run_id, client=client)
    print(f"{hostname}: {run.flow_name} run {run.name!r} submitted ({_dashboard(run_id)})")
    if args.no_wait:
        return 0
    try:
        ended = runs.wait(run_id, _progress_printer(client, hostname, approve=args.approve), client=client)
    except KeyboardInterrupt:
        print(f"\nstopped following; the run goes on: `mchub status {hostname}`")
        return 130
    status = run_status(ended)
    if ended.rejected:
        print(f"mchub: {hostname}: the plan was rejected: {ended.state_message}", file=sys.stderr)
        return 1
    if status != success:
        print(f"mchub: {hostname}: {status}: {ended.state_message or ended.state_name}", file=sys.stderr)
        return 1
    print(f"{hostname}: {status}" + (f": {ended.state_message}" if ended.state_message else ""))
    return 0


def _progress_printer(client: "SyncPrefectClient", hostname: str, *, approve: bool) -> Callable[[RunView], None]:
    from mchub.orchestration import runs

    shown = ""

    def show(run: RunView) -> None:
        nonlocal shown
        line = f"{hostname}: {run_status(run)}" + (f"  {run.progress}" if run.progress else "")
        if line != shown:  # a change of state within one status (Scheduled → Pending) says nothing new
            print(f"{datetime.now():%H:%M:%S} {line}")
            shown = line
        if not run.awaiting_approval:
            return
        print(runs.plan_markdown(run, client=client) or "(the run has published no plan)")
        if approve:
            runs.approve(hostname, comment="approved with --approve", client=client)
            print(f"{hostname}: plan approved (--approve)")
        else:
            print(
                f"waiting for approval: `mchub approve {hostname}` or `mchub reject {hostname}`, "
                f"or answer in Prefect's dashboard: {_dashboard(run.id)}"
            )

    return show


def _dashboard(run_id: UUID) -> str:
    return f"{get_settings().prefect_api_url.rstrip('/').removesuffix('/api')}/runs/flow-run/{run_id}"


def _level_name(level: int) -> str:
    return logging.getLevelName(level)
