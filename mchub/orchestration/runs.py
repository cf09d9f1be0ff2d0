"""MC Hub's client of Prefect: start cluster runs, read their status, answer their approvals.

The CLI and the web front end act on clusters only through the deployments in prefect.yaml;
this module is where they reach Prefect's API (at settings.prefect_api_url), sending the
hub's credential (mchub.orchestration.prefect_auth). Every function takes an optional open client, so a
caller making several calls (a page, a waiting command) reuses one connection; without one,
a client is opened for the call.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterId,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, Log
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort, LogSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling
from pydantic import BaseModel

from mchub.access.people import Person, operator
from mchub.access.rights import check_act, default_project
from mchub.access.signed import answer_act, signed
from mchub.cluster import drift, expiration, lifecycle, shared_store
from mchub.cluster.workspace import open_existing, ownership_of
from mchub.errors import MCHubError
from mchub.orchestration import audit, prefect_auth, worker_wakeup
from mchub.settings import get_settings
from mchub.spec.model import ClusterSpec
from mchub.status import (
    ANSWER_LABEL,
    ANSWERED_BY_LABEL,
    BUILD_FLOW,
    CANCEL_LABEL,
    CLUSTER_FLOWS,
    DESTROY_FLOW,
    FINAL_STATES,
    HOSTNAME_LABEL,
    PHASE_LABEL,
    PROGRESS_LABEL,
    RunView,
    Status,
    answer_label,
    artifact_key,
    cluster_status,
    cluster_tag,
    hostname_of_tags,
)

# Prefect's server returns at most this many objects per request (PREFECT_SERVER_API_DEFAULT_LIMIT).
PAGE_SIZE = 200
POLL_SECONDS = 1.0
# How long a request file may wait for the run its submission is creating (seconds at most,
# even with Prefect's client retrying) before it counts as abandoned.
REQUEST_GRACE_SECONDS = 600.0
# A suspended run saves the form of its answer right after pausing; an answer waits this long for it.
ANSWERABLE_WITHIN_SECONDS = 30.0
ANSWERABLE_POLL_SECONDS = 0.2

T = TypeVar("T")


class RunsError(MCHubError):
    """What was asked of Prefect cannot be done; the message says why and what to do."""


class PrefectUnreachable(RunsError):
    """Prefect's API does not answer."""


class PrefectCredentialError(RunsError):
    """Prefect's API credential cannot be read, or the server refused it."""


class ClusterBusy(RunsError):
    """Another run is acting on the cluster; the message names it."""


class NotAwaitingApproval(RunsError):
    """An approval or rejection for a cluster that has no plan waiting for one."""


class NothingToCancel(RunsError):
    """A cancel for a cluster that no run is acting on."""


def connect(api_url: str | None = None, httpx_settings: dict[str, Any] | None = None) -> SyncPrefectClient:
    """A client of Prefect's API (default: settings.prefect_api_url) with the hub's credential,
    to use as a context manager."""
    # Without a credential the server answers 401, which session() explains.
    return SyncPrefectClient(
        api_url or get_settings().prefect_api_url, auth_string=credential(), httpx_settings=httpx_settings
    )


def credential() -> str | None:
    """The secret Prefect's API requires (mchub.orchestration.prefect_auth); None when there is none yet."""
    try:
        return prefect_auth.auth_string(get_settings())
    except prefect_auth.CredentialError as error:
        raise PrefectCredentialError(str(error)) from None


@contextmanager
def session(client: SyncPrefectClient | None) -> Iterator[SyncPrefectClient]:
    """`client`, or a new one closed afterwards; Prefect's API not answering is PrefectUnreachable."""
    url = str(client.api_url).rstrip("/") if client else get_settings().prefect_api_url
    try:
        if client is not None:
            yield client
            return
        with connect() as opened:
            yield opened
    except httpx.TransportError as error:
        raise PrefectUnreachable(
            f"Prefect's API at {url} does not answer ({type(error).__name__}): start MC Hub with "
            "`mchub up`, or set MCHUB_PREFECT_API_URL to the API of the Prefect server it uses"
        ) from error
    except httpx.HTTPStatusError as error:
        if error.response.status_code == 401:
            raise PrefectCredentialError(
                f"Prefect's API at {url} refused MC Hub's credential (HTTP 401): it is taken from "
                f"{prefect_auth.where_it_is(get_settings())}; run this where `mchub up` runs (the same "
                "MCHUB_HOME, as the same user), or set MCHUB_PREFECT_AUTH_STRING to the server's secret"
            ) from None
        if error.response.status_code < 500:
            raise
        # Prefect's client has already retried: the server stayed too busy (with SQLite,
        # "database is locked") or broke; nothing was started.
        server_log = get_settings().home / "logs" / "prefect-server.log"
        raise RunsError(
            f"Prefect's API at {url} failed on {error.request.method} {error.request.url.path} "
            f"(HTTP {error.response.status_code} {error.response.reason_phrase}): it is overloaded or broken; "
            f"try again in a minute, and if it goes on, see {server_log}"
        ) from error


# --- reading runs ---------------------------------------------------------------------


def runs_of(hostname: str, *, client: SyncPrefectClient | None = None) -> list[RunView]:
    """The runs that acted on `hostname`, newest first."""
    with session(client) as c:
        flow_runs = all_pages(
            lambda offset: c.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[cluster_tag(hostname)])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=PAGE_SIZE,
                offset=offset,
            )
        )
        if not flow_runs:
            return []
        names = _names_of_flows(c, {r.flow_id for r in flow_runs})
    return _newest_first(_view(run, names[run.flow_id]) for run in flow_runs if run.flow_id in names)


def statuses(*, client: SyncPrefectClient | None = None) -> dict[str, Status]:
    """The status of every cluster that has runs (not_found ones left out), by hostname.

    Two requests whatever the number of clusters (the cluster flows' ids, then their runs),
    one more per PAGE_SIZE runs of history."""
    with session(client) as c:
        names = _flow_names(c, FlowFilter(name=FlowFilterName(any_=list(CLUSTER_FLOWS))))
        if not names:
            return {}
        flow_runs = all_pages(
            lambda offset: c.read_flow_runs(
                flow_filter=FlowFilter(id=FlowFilterId(any_=list(names))),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=PAGE_SIZE,
                offset=offset,
            )
        )
    by_hostname: dict[str, list[RunView]] = {}
    for run in flow_runs:
        if hostname_of_tags(run.tags):
            view = _view(run, names[run.flow_id])
            by_hostname.setdefault(view.hostname, []).append(view)
    found = {hostname: cluster_status(runs, drift.last_check_of(hostname)) for hostname, runs in sorted(by_hostname.items())}
    return {hostname: status for hostname, status in found.items() if status != Status.NOT_FOUND}


def read_run(run_id: UUID, *, client: SyncPrefectClient | None = None) -> RunView:
    with session(client) as c:
        run = c.read_flow_run(run_id)
        return _view(run, _name_of_flow(c, run.flow_id))


def plan_markdown(run: RunView, *, client: SyncPrefectClient | None = None) -> str | None:
    """The plan summary the run published (markdown), None before it has one."""
    with session(client) as c:
        artifacts = c.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[artifact_key("plan", run.hostname)]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(artifacts[0].data) if artifacts else None


def run_logs(run_id: UUID, *, client: SyncPrefectClient | None = None) -> list[Log]:
    """The log lines a run sent to Prefect, oldest first."""
    with session(client) as c:
        return all_pages(
            lambda offset: c.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                sort=LogSort.TIMESTAMP_ASC,
                limit=PAGE_SIZE,
                offset=offset,
            )
        )


def wait(
    run_id: UUID,
    on_change: Callable[[RunView], None] | None = None,
    *,
    poll_seconds: float = POLL_SECONDS,
    client: SyncPrefectClient | None = None,
) -> RunView:
    """Follow a run until it ends (waiting for approval included); `on_change` gets the run
    each time its state, phase or progress changes. Returns the ended run."""
    with session(client) as c:
        run = c.read_flow_run(run_id)
        flow_name = _name_of_flow(c, run.flow_id)
        shown: tuple[object, ...] | None = None
        while True:
            view = _view(run, flow_name)
            seen = (view.state_type, view.state_name, view.phase_label, view.progress)
            if seen != shown and on_change is not None:
                on_change(view)
            shown = seen
            if view.final:
                return view
            time.sleep(poll_seconds)
            run = c.read_flow_run(run_id)


# --- acting on clusters ---------------------------------------------------------------


def submit_build(
    request_file: Path,
    hostname: str,
    new: bool,
    *,
    person: Person | None = None,
    project: str | None = None,
    client: SyncPrefectClient | None = None,
) -> UUID:
    """Start a build-cluster run for the spec in `request_file` (from
    mchub.cluster.lifecycle.new_cluster_request), asked by `person` (default: the operator, who
    runs this on the hub's machine), a new cluster in `project` (default: the first the person
    may create in); ClusterBusy while another run acts on `hostname`. The flow checks the
    person's right to it."""
    person = person or operator()
    parameters = {
        "request_file": str(Path(request_file).resolve()), "hostname": hostname, "new": new,
        "person": signed(person, hostname, "build"),
        "project": (project or default_project(person)) if new else "",
    }
    # The request file is unique per submission: a double click submits the same run once.
    return _submit(BUILD_FLOW, hostname, parameters, f"build:{Path(request_file).name}", client)


def submit_spec(
    spec: ClusterSpec,
    *,
    new: bool,
    person: Person | None = None,
    project: str | None = None,
    client: SyncPrefectClient | None = None,
) -> UUID:
    """Write `spec` as a request (mchub.cluster.lifecycle.new_cluster_request, which refuses a bad
    one) and start a build-cluster run for it (submit_build). A refused submission takes its
    request away: it holds the guest password, and no run will ever read it."""
    request = lifecycle.new_cluster_request(spec, new=new)
    try:
        return submit_build(request, spec.hostname, new, person=person, project=project, client=client)
    except BaseException:
        lifecycle.discard_request(request)
        raise


def submit_repair(hostname: str, *, person: Person | None = None, client: SyncPrefectClient | None = None) -> UUID:
    """Start a build-cluster run of the cluster's spec, for `person` (default: the operator):
    the page's Repair (its plan puts back what drifted, mchub.cluster.drift) and Try again
    (after a failed or cancelled run); the plan waits for an approval as any other."""
    spec = open_existing(get_settings().clusters_dir, hostname).spec()
    return submit_spec(spec, new=False, person=person, client=client)


def discard_abandoned_requests(
    *, grace_seconds: float = REQUEST_GRACE_SECONDS, client: SyncPrefectClient | None = None
) -> list[Path]:
    """Remove the request files no run will ever read, and return them: each holds a guest
    password. A build run removes its request when it starts, so one stays behind when its
    run ended without starting (cancelled while scheduled or pending, crashed before its
    flow ran) or was never created (the submitter died). Kept: a request that an unfinished
    build run names, and one younger than `grace_seconds`, whose run may be being created."""
    folder = get_settings().clusters_dir / lifecycle.REQUESTS
    # Dated before the runs are read: a request written after that read is young, so kept.
    written = {path.resolve(): when for path in folder.glob("*.yaml") if (when := _modified(path)) is not None}
    if not written:
        return []
    with session(client) as c:
        unfinished = all_pages(
            lambda offset: c.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[BUILD_FLOW])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=sorted(FINAL_STATES)))
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=PAGE_SIZE,
                offset=offset,
            )
        )
    # By name: with a shared store, a run names the request where its submitter wrote it.
    named = {lifecycle.request_here(Path(str(run.parameters.get("request_file")))).resolve() for run in unfinished}
    cutoff = time.time() - grace_seconds
    abandoned = [path for path, when in written.items() if path not in named and when < cutoff]
    for path in abandoned:
        lifecycle.discard_request(path)
    shared_store.push()
    return abandoned


def submit_destroy(
    hostname: str, auto_approve: bool = False, *, person: Person | None = None, client: SyncPrefectClient | None = None
) -> UUID:
    """Start a destroy-cluster run asked by `person` (default: the operator); refuses a cluster
    that has no folder, and ClusterBusy. The flow checks the person's right to it."""
    folder = get_settings().clusters_dir / hostname
    if not folder.is_dir():
        raise RunsError(
            f"{hostname}: there is no cluster folder {folder}, so nothing to destroy; "
            "`mchub list` shows the clusters there are"
        )
    parameters = {"hostname": hostname, "auto_approve": auto_approve,
                  "person": signed(person or operator(), hostname, "destroy")}
    return _submit(DESTROY_FLOW, hostname, parameters, None, client)


def approve(
    hostname: str, comment: str = "", *, person: Person | None = None, client: SyncPrefectClient | None = None
) -> RunView:
    """Approve, as `person` (default: the operator), the plan `hostname`'s run waits for;
    returns that run. The flow checks the person's right to answer it."""
    return _answer(hostname, approve=True, person=person or operator(), comment=comment, client=client)


def reject(
    hostname: str, comment: str = "", *, person: Person | None = None, client: SyncPrefectClient | None = None
) -> RunView:
    """Reject, as `person` (default: the operator), the plan `hostname`'s run waits for (the
    run ends cancelled, with `comment`)."""
    return _answer(hostname, approve=False, person=person or operator(), comment=comment, client=client)


def cancel(hostname: str, person: Person, *, client: SyncPrefectClient | None = None) -> RunView:
    """`person` cancels the run acting on `hostname` (AccessDenied unless they may act on it);
    returns that run. A run holding no process (waiting for approval, or not started) ends
    cancelled at once. A working run is asked to stop: its worker ends its engine, which
    interrupts Terraform as Ctrl-C does (Terraform saves its state) before it ends; `wait`
    follows it to its end."""
    check_act(person, ownership_of(get_settings().clusters_dir, hostname), hostname, "cancel")
    with session(client) as c:
        history = runs_of(hostname, client=c)
        if not history or not history[0].busy:
            now = f"its latest run is {history[0].describe()}" if history else "it has no runs"
            raise NothingToCancel(f"{hostname} has no run to cancel: {now}")
        acting = history[0]
        who = person.label()
        message = f"cancelled by {who}"
        c.update_flow_run_labels(acting.id, {CANCEL_LABEL: who})
        # A suspended or scheduled run has no process to stop: nothing would act on Cancelling.
        idle = acting.state_type in ("PAUSED", "SCHEDULED")
        c.set_flow_run_state(acting.id, Cancelled(message=message) if idle else Cancelling(message=message), force=True)
        # No flow carries a cancel out, so it is recorded here, where it is done.
        audit.post(c, "cancelled", hostname, person.ref, detail=acting.describe())
    return acting


def extend(
    hostname: str, until: date, person: Person, *, field: str = "expiration_date", client: SyncPrefectClient | None = None
) -> None:
    """`person` moves `hostname`'s expiration date to `until` (mchub.cluster.expiration.extend),
    no Terraform run; AccessDenied unless they may act on it; ClusterBusy while a run acts on
    it: a change waiting for approval would put its own date back when applied."""
    shared_store.pull()
    check_act(person, ownership_of(get_settings().clusters_dir, hostname), hostname, "extend")
    with session(client) as c:
        refuse_if_busy(runs_of(hostname, client=c), hostname)
        workspace = open_existing(get_settings().clusters_dir, hostname)
        expiration.extend(
            workspace, until, today=datetime.now(UTC).date(), max_days=get_settings().max_lifetime_days, field=field
        )
        shared_store.push()
        audit.post(c, "modified", hostname, person.ref, detail=f"expiration date moved to {until.isoformat()}")


def refuse_if_busy(runs: list[RunView], hostname: str) -> None:
    """ClusterBusy naming the run that holds `hostname`, when its newest run is unfinished."""
    if runs and runs[0].busy:
        holder = runs[0]
        what_to_do = (
            f"approve or reject its plan (`mchub approve {hostname}` / `mchub reject {hostname}`)"
            if holder.awaiting_approval
            else f"wait for it to finish, or cancel it (`mchub cancel {hostname}`)"
        )
        raise ClusterBusy(f"{hostname} is busy: {holder.describe()} is acting on it; {what_to_do}, then try again")


def _submit(
    flow_name: str, hostname: str, parameters: dict[str, Any], idempotency_key: str | None, client: SyncPrefectClient | None
) -> UUID:
    with session(client) as c:
        refuse_if_busy(runs_of(hostname, client=c), hostname)
        name = f"{flow_name}/{flow_name}"
        try:
            deployment = c.read_deployment_by_name(name)
        except ObjectNotFound:
            raise RunsError(
                f"deployment {name} is not on the Prefect server at {c.api_url}: start MC Hub with "
                "`mchub up`, or apply prefect.yaml with `mchub deploy`"
            ) from None
        run = c.create_flow_run_from_deployment(
            deployment.id,
            parameters=parameters,
            tags=[cluster_tag(hostname)],
            labels={HOSTNAME_LABEL: hostname},
            idempotency_key=idempotency_key,
        )
    worker_wakeup.wake_worker(get_settings())
    return run.id


def _answer(hostname: str, *, approve: bool, person: Person, comment: str, client: SyncPrefectClient | None) -> RunView:
    with session(client) as c:
        runs = runs_of(hostname, client=c)
        if not runs or not runs[0].awaiting_approval:
            now = f"its latest run is {runs[0].describe()}" if runs else "it has no runs"
            raise NotAwaitingApproval(f"{hostname} has no plan waiting for approval: {now}")
        waiting = runs[0]
        pause_key = _wait_until_answerable(c, waiting, hostname)
        # The same fields as flows.approval.Approval: the server checks them against its schema.
        # The person is signed for this plan alone (its pause key): the flow refuses it for any other.
        answer = {"approve": approve, "comment": comment, "person": signed(person, hostname, answer_act(pause_key))}
        result = c.resume_flow_run(waiting.id, run_input=answer)
        if result.status != SetStateStatus.ACCEPT:
            reason = getattr(result.details, "reason", None) or result.status.value
            raise RunsError(f"{hostname}: Prefect did not resume {waiting.describe()}: {reason}")
        # The resumed run starts again from the top, in a new process from the worker.
        worker_wakeup.wake_worker(get_settings())
        # Shown at once as building (or as unchanged); the flow labels itself so too once it
        # reads the answer, which covers answers given in Prefect's dashboard. Only the
        # answer: a phase written here could land after the resumed flow's own.
        c.update_flow_run_labels(waiting.id, {ANSWER_LABEL: answer_label(approve)})
    return waiting


# --- helpers --------------------------------------------------------------------------


def _wait_until_answerable(client: SyncPrefectClient, waiting: RunView, hostname: str) -> str:
    """Wait until the suspended run has saved the form of its answer; returns the key it is
    paused under.

    A run suspends first and saves its input schema just after; Prefect's server refuses an
    answer given in between ("Run input schema not found"), which a busy server can stretch
    to seconds. The answer waits for the schema instead of failing in front of a person.
    """
    deadline = time.monotonic() + ANSWERABLE_WITHIN_SECONDS
    while True:
        run = client.read_flow_run(waiting.id)
        details = run.state.state_details if run.state else None
        keyset = details.run_input_keyset if details else None
        pause_key = (details.pause_key if details else None) or ""
        if not keyset:
            return pause_key
        try:
            client.read_flow_run_input(waiting.id, keyset["schema"])
            return pause_key
        except httpx.HTTPStatusError as error:
            if error.response.status_code != httpx.codes.NOT_FOUND:
                raise
        if time.monotonic() >= deadline:
            raise RunsError(
                f"{hostname}: {waiting.describe()} is suspended but has not saved the form of its answer "
                f"within {ANSWERABLE_WITHIN_SECONDS:.0f} s (its engine may have died): see `mchub logs {hostname}`"
            )
        time.sleep(ANSWERABLE_POLL_SECONDS)



def all_pages(read: Callable[[int], list[T]]) -> list[T]:
    """Every object of a Prefect query, `read(offset)` returning one page of PAGE_SIZE at most."""
    found: list[T] = []
    while True:
        page = read(len(found))
        found += page
        if len(page) < PAGE_SIZE:
            return found


def _modified(path: Path) -> float | None:
    """When `path` was last written; None once it is gone (its run removed it meanwhile)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _flow_names(client: SyncPrefectClient, flow_filter: FlowFilter) -> dict[UUID, str]:
    return {flow.id: flow.name for flow in client.read_flows(flow_filter=flow_filter, limit=PAGE_SIZE)}


# A flow keeps its name, and its id (a UUID) names no other flow on any server: a name read
# once serves every later read of a run's status, which the pages repeat every second.
_known_flow_names: dict[UUID, str] = {}


def _names_of_flows(client: SyncPrefectClient, flow_ids: set[UUID]) -> dict[UUID, str]:
    """The names of the flows `flow_ids` that exist, asking the server only for those not seen before."""
    unknown = flow_ids - _known_flow_names.keys()
    if unknown:
        _known_flow_names.update(_flow_names(client, FlowFilter(id=FlowFilterId(any_=list(unknown)))))
    return {flow_id: _known_flow_names[flow_id] for flow_id in flow_ids if flow_id in _known_flow_names}


def _name_of_flow(client: SyncPrefectClient, flow_id: UUID) -> str:
    return _names_of_flows(client, {flow_id})[flow_id]


def _newest_first(views: Iterator[RunView]) -> list[RunView]:
    return sorted(views, key=lambda v: v.created, reverse=True)


def _view(run: FlowRun, flow_name: str) -> RunView:
    state = run.state
    labels = run.labels or {}
    return RunView(
        id=run.id,
        name=run.name,
        flow_name=flow_name,
        state_type=state.type.value if state else "SCHEDULED",
        state_name=state.name if state else "Scheduled",
        state_message=state.message if state else None,
        phase_label=_label(labels, PHASE_LABEL),
        progress=_label(labels, PROGRESS_LABEL),
        answer=_label(labels, ANSWER_LABEL),
        cancelled_by=_label(labels, CANCEL_LABEL),
        answered_by=_label(labels, ANSWERED_BY_LABEL),
        created=run.created or run.expected_start_time,
        hostname=hostname_of_tags(run.tags) or str(labels.get(HOSTNAME_LABEL, "")),
    )


def _label(labels: dict[str, Any], key: str) -> str | None:
    value = labels.get(key)
    return None if value is None else str(value)
