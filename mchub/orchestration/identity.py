"""Signing in: the sandbox's identity provider, and the configuration of the pages' sign-in.

People sign in to the pages through OpenID Connect with Streamlit's own `st.login`, which
reads its provider from the `[auth]` section of a secrets file: `mchub up` writes it
(`<MCHUB_HOME>/streamlit-secrets.toml`, 0600) from the MCHUB_OIDC_* settings and hands it to
Streamlit. When no provider is configured, `mchub up` starts the sandbox's own, a maintained
mock OpenID provider (the `oidc-provider-mock` package) with the demo accounts below, whose
groups the default MCHUB_OIDC_GROUPS maps to projects and roles.
"""

import hashlib
import hmac
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from mchub.access.signed import hub_key
from mchub.private_file import write_private
from mchub.settings import Settings

SECRETS_FILE = "streamlit-secrets.toml"


@dataclass(frozen=True)
class DemoAccount:
    subject: str
    name: str
    groups: tuple[str, ...]
    what: str
    """What the account is, as `mchub up` prints it."""

    def claims(self) -> dict[str, object]:
        return {"sub": self.subject, "name": self.name, "email": f"{self.subject}@example.org",
                "groups": list(self.groups)}


DEMO_ACCOUNTS = (
    DemoAccount("alice", "Alice Martin", ("physics",), "member of physics"),
    DemoAccount("bob", "Bob Chen", ("physics",), "member of physics"),
    DemoAccount("carol", "Carol Diaz", ("chemistry",), "member of chemistry"),
    DemoAccount("pat", "Pat Singh", ("physics-admins",), "admin of project physics"),
    DemoAccount("ada", "Ada Lovelace", ("mchub-admins",), "hub admin"),
)


def sandbox_provider(settings: Settings) -> bool:
    """Whether the hub signs people in with the sandbox's provider (no other is configured)."""
    return settings.oidc_server_metadata_url is None


def sandbox_provider_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.sandbox_identity_port}"


def provider_argv(settings: Settings) -> list[str]:
    """The sandbox's identity provider on loopback, with the demo accounts."""
    accounts = [word for account in DEMO_ACCOUNTS for word in ("--user-claims", json.dumps(account.claims()))]
    return [
        sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1",
        "--port", str(settings.sandbox_identity_port), *accounts,
    ]


def pages_url(settings: Settings) -> str:
    """Where people open the pages (their public address behind a reverse proxy, else
    localhost): the sign-in's redirect and cookies are for this origin."""
    return settings.public_url or f"http://localhost:{settings.ui_port}"


def write_secrets(settings: Settings) -> Path:
    """The `[auth]` section Streamlit's sign-in reads, written 0600 under MCHUB_HOME."""
    # Derived from the hub's key: stable across restarts (people stay signed in), never stored apart.
    cookie_secret = hmac.new(hub_key(settings), b"streamlit auth cookie", hashlib.sha256).hexdigest()
    values = {
        "redirect_uri": f"{pages_url(settings)}/oauth2callback",
        "cookie_secret": cookie_secret,
        "client_id": settings.oidc_client_id,
        "client_secret": settings.oidc_client_secret.get_secret_value(),
        "server_metadata_url": settings.identity_metadata_url,
    }
    # JSON strings are TOML basic strings.
    text = "[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    path = settings.home / SECRETS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, text)
    return path


def sign_in_lines(settings: Settings) -> list[str]:
    """How to sign in, as `mchub up` prints it."""
    if not sandbox_provider(settings):
        return [f"  People sign in at {pages_url(settings)} with {settings.identity_metadata_url}"]
    return [
        f"  Sign in at {pages_url(settings)}: the sandbox's identity provider offers these demo accounts "
        "(pick one, no password):",
        *(f"    {account.subject:<6} {account.name}, {account.what}" for account in DEMO_ACCOUNTS),
    ]
