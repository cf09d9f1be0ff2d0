"""`mchub up`: start every part of the product as child processes, stop them all together.

The parts, in order: the sandbox cloud; Prefect's server (SQLite under <home>/prefect, or
the PostgreSQL database of MCHUB_DATABASE_URL); the work pool and the deployments of
prefect.yaml; the reconciliation of runs a dead worker left unfinished; the warm engines
that start each flow run (mchub.orchestration.warm_engines); the worker that runs the flows;
the prober that waits for provisioning clusters' services (flows/provisioning.py); the
sandbox's identity provider, unless another is configured (mchub.orchestration.identity); the
web pages (Streamlit). Every child gets the same environment: the MCHUB_* settings of this
process (paths made absolute) and Prefect's settings, so the flows and the pages see the same clusters
folder, clouds.yaml and API, and send the same credential to Prefect's API (see
mchub.orchestration.prefect_auth). Only Prefect's server gets the settings that make it require that
credential, refuse other origins and check CSRF tokens.

The test and benchmark harness (tests/harness.py) starts the same Prefect parts (prefect_parts) with `Stack`.
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from mchub.access import signed
from mchub.cluster import shared_store
from mchub.errors import MCHubError
from mchub.orchestration import identity, prefect_auth, warm_engines
from mchub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
"""The project's root: prefect.yaml, and the folders the flows import from."""
WORK_POOL = "mchub"
SANDBOX_CLOUD = "sandbox"
# Runs submitted or resumed through MC Hub wake the worker at once (worker_wakeup); the poll
# finds the others (schedules, automations' notices, the dashboard, another machine's), and
# each poll costs the worker and the server CPU: at 1 s, about 5 % of a core for an idle hub.
WORKER_QUERY_SECONDS = 5
STOP_SECONDS = 4.0
"""How long the parts have in all to stop by themselves; then they are killed, so that
everything is gone within 5 s of Ctrl-C or a service manager's SIGTERM. Killing is safe:
Prefect's database, SQLite or PostgreSQL, keeps a write whole or not at all, and a run's engine and Terraform die
with the worker."""
CALLED_STOP_SECONDS = 1.5
"""Of STOP_SECONDS, what Prefect's server and the cloud have at least, after the others."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MCHUB = (sys.executable, "-m", "mchub.cli")
# What a run's engine imports, so that forks do not spend their time importing: Prefect's
# engine, MC Hub's flows, and what Prefect imports only once a flow runs.
ENGINE_PRELOAD = (
    "prefect.engine", "prefect.flow_engine", "prefect.task_engine",
    "prefect.utilities.visualization", "anyio._backends._asyncio",
    "flows.build", "flows.destroy", "flows.cull",
)


class StartError(MCHubError):
    """A part of the product did not come up; the message names it and its log."""


@dataclass(frozen=True)
class Service:
    """A long-running part, ready once `ready(started_at)` is true."""

    name: str
    argv: list[str]
    url: str
    ready: Callable[[datetime], bool]
    start_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    """Environment of this part only, over the stack's."""
    called_while_stopping: bool = False
    """The other parts call it while they stop (a worker reports its runs' ends to Prefect's
    server): it is asked to stop once they have."""


@dataclass(frozen=True)
class Step:
    """A command that must finish successfully before the parts after it start."""

    name: str
    argv: list[str]
    timeout: float = 120.0


Part = Service | Step


def stack_parts(settings: Settings) -> list[Part]:
    """Every part `mchub up` starts, in start order; the sandbox cloud only when clusters are
    built on it (MCHUB_CLOUD=sandbox, the default)."""
    pages = page_parts(settings)
    if settings.cloud != SANDBOX_CLOUD:
        return [*prefect_parts(settings), *pages]
    sandbox_url = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
    sandbox = Service(
        name="sandbox cloud",
        argv=[sys.executable, "-m", "mchub.cli", "sandbox"],
        url=sandbox_url,
        ready=_answers_200(f"{sandbox_url}/sandbox/health"),
        called_while_stopping=True,
    )
    return [sandbox, *prefect_parts(settings), *pages]


def page_parts(settings: Settings) -> list[Part]:
    """The sandbox's identity provider (unless another is configured), and the web pages."""
    provider = identity.sandbox_provider_url(settings)
    signing_in = [
        Service(
            name="identity provider",
            argv=identity.provider_argv(settings),
            url=provider,
            ready=_answers_200(settings.identity_metadata_url),
        )
    ] if identity.sandbox_provider(settings) else []
    return [*signing_in, web_pages(settings)]


# Streamlit's options that decide who reaches the pages and what they show, given on its
# command line: .streamlit/config.toml (the look, the runner) is read only from the folder
# Streamlit starts in, and without it Streamlit listens on every address and shows tracebacks.
PAGE_HOSTS = ("127.0.0.1", "localhost")
STREAMLIT_SAFETY = {
    "server.address": "127.0.0.1",
    "server.headless": "true",
    "server.enableCORS": "true",
    "server.enableXsrfProtection": "true",
    "server.enableStaticServing": "false",
    "server.enableAgentApi": "false",
    "server.runOnSave": "false",
    "client.showErrorDetails": "none",
    "client.showErrorLinks": "false",
    "client.toolbarMode": "minimal",
    "global.developmentMode": "false",
    "browser.gatherUsageStats": "false",
}


def web_pages(settings: Settings) -> Service:
    """The Streamlit front end, on 127.0.0.1 only, whatever folder it starts from; its look is
    in .streamlit/config.toml."""
    url = f"http://127.0.0.1:{settings.ui_port}"
    options = [word for name, value in STREAMLIT_SAFETY.items() for word in (f"--{name}", value)]
    # A web page elsewhere that renames itself to 127.0.0.1 (DNS rebinding) gets no websocket.
    hosts = [*PAGE_HOSTS, *([urlsplit(settings.public_url).hostname] if settings.public_url else [])]
    options += [word for host in hosts for word in ("--server.allowedHosts", host)]
    return Service(
        name="web pages",
        argv=[
            sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"),
            "--server.port", str(settings.ui_port), *options,
            # People sign in with the provider this file names (mchub.orchestration.identity).
            "--secrets.files", str(identity.write_secrets(settings).resolve()),
        ],
        # Where people open them: sign-in cookies are for that origin, not for 127.0.0.1.
        url=f"{identity.pages_url(settings)}/create-cluster",
        ready=_answers_200(f"{url}/_stcore/health"),
    )


def prefect_parts(settings: Settings) -> list[Part]:
    """Prefect's server, the deployments, the reconciliation of dead runs, the warm engines,
    the worker and the prober."""
    api = settings.prefect_api_url.rstrip("/")
    where = urlsplit(api)
    if where.hostname not in LOOPBACK or not where.port or not where.path.endswith("/api"):
        raise StartError(
            f"MCHUB_PREFECT_API_URL={settings.prefect_api_url!r}: `mchub up` starts Prefect's server on "
            "this machine, so give a loopback address with a port, like http://127.0.0.1:4200/api"
        )
    secret = credential(settings)
    signed.hub_key(settings)  # made now, for the workers of other machines to be given a copy
    return [
        Service(
            name="prefect server",
            # Prefect's server with its SQLite writes queued rather than refused (see the module).
            argv=[sys.executable, "-m", "mchub.orchestration.prefect_server", "--host", where.hostname, "--port", str(where.port)],
            url=api.removesuffix("/api"),
            ready=_answers_200(f"{api}/health"),  # the one request it answers without the credential
            start_timeout=120.0,
            called_while_stopping=True,
            env={
                **database_env(settings),
                "PREFECT_SERVER_API_AUTH_STRING": secret,
                # The dashboard calls the API from the server's own origin; no other is answered.
                "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": ",".join(own_origins(where.hostname, where.port)),
                "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
            },
        ),
        Step(name="deployments", argv=[*MCHUB, "deploy"]),
        *worker_parts(settings, secret),
        # One process for every cluster whose services are awaited (flows/provisioning.py);
        # it keeps nothing, so it is ready as soon as it runs.
        Service(
            name="prober",
            argv=[sys.executable, "-m", "flows.provisioning"],
            url="probes every provisioning cluster",
            ready=lambda started_at: True,
            # Its probe tasks belong to no flow run: their own logs stay in its log file (each
            # answer goes to the build run's log by itself).
            env={"PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"},
        ),
    ]


def worker_parts(settings: Settings, secret: str) -> list[Part]:
    """What runs the clusters' runs on a machine: the reconciliation of the runs its worker
    left running when it died, the warm engines, and the worker."""
    api = settings.prefect_api_url.rstrip("/")
    engines = warm_engines.socket_path(settings)
    name = worker_name(settings)
    return [
        Step(name="reconciliation", argv=[*MCHUB, "reconcile", "--worker", name]),
        Service(
            name="warm engines",
            argv=[sys.executable, "-m", "mchub.orchestration.warm_engines", str(engines), warm_engines.ENGINE, *ENGINE_PRELOAD],
            url=str(engines),
            ready=lambda started_at: engines.is_socket(),
        ),
        Service(
            name="prefect worker",
            argv=[
                sys.executable, "-m", "mchub.orchestration.worker", "--pool", WORK_POOL, "--name", name,
                # Capped because every run starting at once on a small machine swamps the
                # server's SQLite database and runs fail with "database is locked".
                *(["--limit", str(settings.max_concurrent_runs)] if settings.max_concurrent_runs else []),
            ],
            url=f"pool {WORK_POOL!r}, worker {name!r}",
            ready=_worker_heartbeat(api, name, prefect_auth.PrefectAuth(api, secret)),
        ),
    ]


def worker_stack_parts(settings: Settings) -> list[Part]:
    """Every part `mchub worker` starts: a worker of the hub whose Prefect server runs elsewhere
    (MCHUB_PREFECT_API_URL), with the credential copied from there."""
    secret = prefect_auth.auth_string(settings)
    # Both made by the first `mchub up`: the worker's credential, and the key it checks who
    # asked for each run with. Made anew here, they would be refused or refuse every run.
    missing = [prefect_auth.AUTH_FILE] if secret is None else []
    if not signed.key_file(settings).exists():
        missing.append(signed.KEY_FILE)
    if missing:
        names = " and ".join(missing)
        raise StartError(
            f"{names} missing in {settings.home}: copy {'them' if len(missing) > 1 else 'it'} from the MCHUB_HOME of "
            "the machine that runs `mchub up` (mode 0600; MCHUB_PREFECT_AUTH_STRING may give prefect-auth instead)"
        )
    if settings.shared_store_url is None:
        raise StartError(
            "MCHUB_SHARED_STORE_URL is not set: a worker on another machine needs the store where every "
            "machine finds the clusters' folders and Terraform states; set it as on the machine of `mchub up`"
        )
    return worker_parts(settings, secret)


def database_env(settings: Settings) -> dict[str, str]:
    """Prefect's setting of its database: PostgreSQL's URL when one is given, else its own SQLite default."""
    if settings.database_url is None:
        return {}
    return {"PREFECT_SERVER_DATABASE_CONNECTION_URL": settings.database_url.get_secret_value()}


def own_origins(host: str, port: int) -> list[str]:
    """The origins a browser opens Prefect's dashboard from: the server's, under both of its
    loopback names when it has two (the dashboard calls the API at 127.0.0.1 even when opened
    at localhost)."""
    names = ["127.0.0.1", "localhost"] if host in ("127.0.0.1", "localhost") else [host]
    return [f"http://{f'[{name}]' if ':' in name else name}:{port}" for name in names]


def credential(settings: Settings) -> str:
    """The secret of Prefect's API (mchub.orchestration.prefect_auth), generated on the first start."""
    try:
        return prefect_auth.ensure_auth_string(settings)
    except (prefect_auth.CredentialError, OSError) as error:
        raise StartError(str(error)) from error


def worker_name(settings: Settings) -> str:
    """This machine's worker (MCHUB_WORKER_NAME, else mchub-<host name>): runs are reconciled
    only by the machine whose worker ran them."""
    return settings.worker_name or f"mchub-{socket.gethostname()}"


def prefect_home(settings: Settings) -> Path:
    """PREFECT_HOME of every part and command: in MC Hub's home, not ~/.prefect (Prefect's
    SQLite database is there)."""
    return (settings.home / "prefect").resolve()


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of every part: this one, with `settings` as MCHUB_* variables and
    Prefect's settings for a project-local server."""
    env = dict(os.environ)
    for name in Settings.model_fields:
        key = f"MCHUB_{name.upper()}"
        value = getattr(settings, name)
        if value is None:
            env.pop(key, None)
        elif isinstance(value, Path):
            env[key] = str(value.resolve())
        elif isinstance(value, dict):
            env[key] = json.dumps(_revealed(value))
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        else:
            env[key] = str(value)
    env.update(prefect_auth.client_env(settings, credential(settings)))
    env.update(
        PREFECT_HOME=str(prefect_home(settings)),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS=str(WORKER_QUERY_SECONDS),
        # The worker's flow runs import `flows` and `tasks` from the project's root.
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def _revealed(value: Any) -> Any:
    """A JSON setting's value as its variable holds it, its secrets in the clear: the parts
    read it back from their environment (pydantic's own JSON masks them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: _revealed(field) for name, field in value}
    if isinstance(value, dict):
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    return value


@dataclass
class Stack:
    """Parts started in order as child processes (logs in `log_dir`), stopped together."""

    env: dict[str, str]
    log_dir: Path
    running: list[tuple[Service, subprocess.Popen]] = field(default_factory=list)

    def start(self, part: Part) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{part.name.replace(' ', '-')}.log"
        with open(log_path, "ab") as log:
            if isinstance(part, Step):
                self._run(part, log, log_path)
                return
            # In a process group of its own: a Ctrl-C in the terminal reaches `mchub up` alone,
            # which stops the parts in their order.
            process = subprocess.Popen(
                part.argv, cwd=ROOT, env={**self.env, **part.env},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, process_group=0,
            )
        self.running.append((part, process))
        _wait_ready(part, process, log_path)

    def stopped(self) -> list[str]:
        """The names of the services that have exited."""
        return [service.name for service, process in self.running if process.poll() is not None]

    def stop(self, grace: float = STOP_SECONDS) -> None:
        """Stop every part within `grace` seconds: first, together, those that call the others
        as they stop, then the others, together. A part still running at its turn's deadline
        is killed."""
        deadline = time.monotonic() + grace
        callers = [running for running in self.running if not running[0].called_while_stopping]
        called = [running for running in self.running if running[0].called_while_stopping]
        _stop_together(callers, deadline - CALLED_STOP_SECONDS)
        _stop_together(called, deadline)
        self.running.clear()

    def _run(self, step: Step, log: IO[bytes], log_path: Path) -> None:
        try:
            done = subprocess.run(
                step.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, timeout=step.timeout
            )
        except subprocess.TimeoutExpired:
            raise StartError(f"{step.name} did not finish within {step.timeout:g} s; see {log_path}") from None
        if done.returncode != 0:
            raise StartError(f"{step.name} failed with exit code {done.returncode}; see {log_path}")


def _stop_together(parts: list[tuple[Service, subprocess.Popen]], deadline: float) -> None:
    """Ask every part to stop at once, as Ctrl-C does; kill those still running at `deadline`."""
    for _, process in parts:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for service, process in reversed(parts):
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"mchub: {service.name} did not stop in time; killing it", file=sys.stderr)
            process.kill()
            process.wait()


def _answers_200(url: str) -> Callable[[datetime], bool]:
    def ready(started_at: datetime) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    return ready


def _worker_heartbeat(api: str, name: str, auth: httpx.Auth) -> Callable[[datetime], bool]:
    """Ready once the worker has told the server it polls the pool (a heartbeat since its start)."""

    def ready(started_at: datetime) -> bool:
        try:
            response = httpx.post(f"{api}/work_pools/{WORK_POOL}/workers/filter", json={}, timeout=2.0, auth=auth)
        except httpx.TransportError:
            return False
        if response.status_code != 200:
            return False
        return any(
            worker["name"] == name
            and worker.get("last_heartbeat_time")
            and datetime.fromisoformat(worker["last_heartbeat_time"]) >= started_at
            for worker in response.json()
        )

    return ready


def _wait_ready(service: Service, process: subprocess.Popen, log_path: Path) -> None:
    # Whole seconds: the server stores heartbeat times that may be rounded below our clock.
    started_at = datetime.now(UTC).replace(microsecond=0)
    deadline = time.monotonic() + service.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"{service.name} exited with code {process.returncode}: {_last_line(log_path)}; see {log_path}")
        if service.ready(started_at):
            return
        time.sleep(0.2)
    raise StartError(f"{service.name} was not ready within {service.start_timeout:g} s; see {log_path}")


def _last_line(log_path: Path) -> str:
    """What a part that ended said last: its error, for the person who started it."""
    lines = log_path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "it printed nothing"


def up(settings: Settings, *, worker_only: bool = False) -> int:
    """Start every part (`mchub up`'s, or with `worker_only` `mchub worker`'s), print where each
    is, and stop them all on Ctrl-C or when one dies."""
    _stop_on_signals()
    _print_lines_at_once()
    try:
        if (store := shared_store.shared_store()) is not None and store.ensure():
            print(f"  created the shared store's database: {store}")
    except shared_store.StoreError as error:
        raise StartError(str(error)) from error
    parts = (worker_stack_parts if worker_only else stack_parts)(settings)
    stack = Stack(env=child_env(settings), log_dir=settings.home / "logs")
    width = max(len(part.name) for part in parts)
    try:
        for part in parts:
            started = time.monotonic()
            stack.start(part)
            where = part.url if isinstance(part, Service) else "done"
            print(f"  {part.name:<{width}}  {where}  ({time.monotonic() - started:.1f} s)")
        if worker_only:
            print(f"MC Hub's worker {worker_name(settings)} is up (logs in {stack.log_dir}); Ctrl-C stops it.")
        else:
            print(f"  Prefect's dashboard and API ask for the secret in {prefect_auth.where_it_is(settings)}")
            for line in identity.sign_in_lines(settings):
                print(line)
            print(f"MC Hub is up (logs in {stack.log_dir}); Ctrl-C stops everything.")
        while not stack.stopped():
            time.sleep(0.5)
        print(f"mchub: {', '.join(stack.stopped())} stopped; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        # A second Ctrl-C would leave the parts not yet waited for running; stopping is bounded.
        _ignore_signals()
        stack.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    # Ctrl-C and a service manager's SIGTERM both stop everything; a shell that started us in
    # the background may have set SIGINT to be ignored, so install the handler explicitly.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _print_lines_at_once() -> None:
    # A log file, a pipe or a service manager's journal gets each status line when it is
    # printed, not when 8 KB have gathered or the process ends (stderr is line-buffered anyway).
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
