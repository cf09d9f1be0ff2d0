"""A person signed by the hub, for the flows to trust.

The pages and the CLI hand each run (a flow parameter) and each answer to a plan (the
approval's input) a `Mandate`: the person, the cluster and what they do, signed with the
hub's key (HMAC-SHA256, `<MCHUB_HOME>/identity-key`, 0600, made on first use). A flow
acts only on a mandate whose signature holds and which names its own cluster and action, and
then checks the person's rights itself (mchub.access.rights): anyone who can reach Prefect's
API can start a run or resume one, but cannot sign a mandate, nor reuse one for another
cluster, another action or another plan.
"""

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from mchub.access.people import Person
from mchub.access.rights import AccessDenied
from mchub.private_file import write_private
from mchub.settings import Settings, get_settings

KEY_FILE = "identity-key"
KEY_BYTES = 32


class Mandate(BaseModel):
    """`person` does `act` ("build", "destroy", "answer:<the plan's pause key>") to `hostname`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person: Person
    hostname: str
    act: str


def key_file(settings: Settings) -> Path:
    return settings.home / KEY_FILE


def hub_key(settings: Settings | None = None) -> bytes:
    """The hub's signing key, made (0600) the first time."""
    settings = settings or get_settings()
    path = key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        write_private(made, secrets.token_urlsafe(KEY_BYTES))
        # A link appears whole or not at all, and never over another part's key made meanwhile.
        with contextlib.suppress(FileExistsError):
            os.link(made, path)
        made.unlink()
    return path.read_bytes()


def sign(mandate: Mandate, key: bytes | None = None) -> str:
    body = base64.urlsafe_b64encode(mandate.model_dump_json().encode()).decode()
    return f"{body}.{_mac(body, key or hub_key())}"


def signed(person: Person, hostname: str, act: str) -> str:
    """`person` doing `act` to `hostname`, signed with the hub's key."""
    return sign(Mandate(person=person, hostname=hostname, act=act))


def verified(token: str, hostname: str, act: str, key: bytes | None = None) -> Person:
    """The person of a signed mandate for `act` on `hostname`; AccessDenied for anything else:
    no mandate, a signature that does not hold, or a mandate for another cluster or action."""
    if not token:
        raise AccessDenied(f"{act} {hostname}: refused, no person signed by the hub asked for it")
    body, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(body, key or hub_key())):
        raise AccessDenied(f"{act} {hostname}: refused, the person who asked for it is not signed by this hub")
    try:
        mandate = Mandate.model_validate_json(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, ValidationError):
        raise AccessDenied(f"{act} {hostname}: refused, the signed person cannot be read") from None
    if (mandate.hostname, mandate.act) != (hostname, act):
        raise AccessDenied(
            f"{act} {hostname}: refused, {mandate.person.name} was signed to {mandate.act} {mandate.hostname}"
        )
    return mandate.person


def answer_act(pause_key: str) -> str:
    """The act of answering the plan a run waits for under `pause_key` (Prefect's pause key)."""
    return f"answer:{pause_key}"


def _mac(body: str, key: bytes) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
