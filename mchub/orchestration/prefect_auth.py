"""The credential of Prefect's API: the one secret its server requires and every part of the
hub sends.

Loopback is no boundary (every local user and every web page in a browser reach 127.0.0.1),
so `mchub up` runs Prefect's server with its own API authentication: every request but the
health check needs HTTP Basic with this secret. It is MCHUB_PREFECT_AUTH_STRING when set,
else the content of `<MCHUB_HOME>/prefect-auth`, which the first `mchub up` generates (0600).
Prefect's clients take it as their auth string; plain httpx calls use `PrefectAuth`, which
also brings the CSRF token Prefect's server asks of every write.
"""

import base64
import os
import secrets
import threading
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx

from mchub.errors import MCHubError
from mchub.settings import MIN_AUTH_STRING_LENGTH, Settings

AUTH_FILE = "prefect-auth"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CredentialError(MCHubError):
    """The credential cannot be read or made; the message says why and what to do."""


def auth_file(settings: Settings) -> Path:
    return settings.home / AUTH_FILE


def where_it_is(settings: Settings) -> str:
    """Where the hub takes the credential from, for messages."""
    if settings.prefect_auth_string is not None:
        return "MCHUB_PREFECT_AUTH_STRING"
    path = auth_file(settings).absolute()
    return str(path) if path.exists() else f"{path} (which does not exist)"


def auth_string(settings: Settings) -> str | None:
    """The credential: MCHUB_PREFECT_AUTH_STRING, else the content of <home>/prefect-auth;
    None when neither exists. CredentialError when the file cannot be trusted or read."""
    if settings.prefect_auth_string is not None:
        return settings.prefect_auth_string.get_secret_value()
    path = auth_file(settings)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CredentialError(
            f"Prefect's API credential {path} cannot be read ({error.strerror}): run this as the user "
            "who runs `mchub up`, or set MCHUB_PREFECT_AUTH_STRING to the secret"
        ) from None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as file:
        mode = os.fstat(file.fileno()).st_mode & 0o777
        secret = file.read().strip()
    if mode & 0o077:
        raise CredentialError(
            f"Prefect's API credential {path} can be read by other users (mode {mode:04o}), so it may be "
            "known: remove it and start `mchub up` again, which makes a new one readable by you only"
        )
    if len(secret) < MIN_AUTH_STRING_LENGTH or not secret.isprintable():
        raise CredentialError(
            f"Prefect's API credential {path} holds no usable secret (at least {MIN_AUTH_STRING_LENGTH} "
            "printable characters): remove it and start `mchub up` again to make a new one"
        )
    return secret


def ensure_auth_string(settings: Settings) -> str:
    """The credential, generating <home>/prefect-auth (0600) when there is none yet."""
    found = auth_string(settings)
    if found is not None:
        return found
    path = auth_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then linked into place: a second `mchub up` starting at
    # the same moment reads either no file or the complete one, and keeps the first secret.
    partial = path.with_name(f".{path.name}.{uuid4().hex}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
    finally:
        partial.unlink(missing_ok=True)
    made = auth_string(settings)
    if made is None:
        raise CredentialError(f"{path} was removed as it was made; start `mchub up` again")
    return made


def basic_authorization(secret: str) -> str:
    """The Authorization header Prefect's server checks (HTTP Basic of the bare secret)."""
    return "Basic " + base64.b64encode(secret.encode()).decode()


def client_env(settings: Settings, secret: str | None) -> dict[str, str]:
    """What a process needs in its environment to be a Prefect client of the hub's server (the
    worker, a flow run's engine, `prefect deploy`)."""
    return {"PREFECT_API_URL": settings.prefect_api_url, **({"PREFECT_API_AUTH_STRING": secret} if secret else {})}


class PrefectAuth(httpx.Auth):
    """httpx authentication for plain calls to Prefect's API (sync clients, any thread): the
    credential on every request, and on writes the CSRF token Prefect's server requires,
    fetched once per token lifetime. Prefect's own clients do both by themselves."""

    requires_response_body = True

    def __init__(self, api_url: str, secret: str | None) -> None:
        self._api = api_url.rstrip("/")
        self._authorization = basic_authorization(secret) if secret else None
        self._client_id = str(uuid4())
        self._token: str | None = None
        self._expires = datetime.min.replace(tzinfo=UTC)
        self._csrf_disabled = False
        self._lock = threading.Lock()  # one token per client id: two threads must not both fetch

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._authorise(request)
        if request.method in _WRITES and not self._csrf_disabled:
            with self._lock:
                if self._token is None or datetime.now(UTC) >= self._expires:
                    fetch = httpx.Request("GET", f"{self._api}/csrf-token", params={"client": self._client_id})
                    self._authorise(fetch)
                    self._keep_token((yield fetch))
                if self._token is not None:
                    request.headers["Prefect-Csrf-Token"] = self._token
                    request.headers["Prefect-Csrf-Client"] = self._client_id
        yield request

    def _authorise(self, request: httpx.Request) -> None:
        if self._authorization:
            request.headers["Authorization"] = self._authorization

    def _keep_token(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            answer = response.json()
            self._token = answer["token"]
            self._expires = datetime.fromisoformat(answer["expiration"])
        elif response.status_code == 422 and "CSRF protection is disabled" in response.text:
            self._csrf_disabled = True
        # Anything else (a refused credential): the request goes without, and its answer says why.
