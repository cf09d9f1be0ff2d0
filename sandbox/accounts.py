"""The sandbox's one Keystone user, project and application credential.

These are well-known test credentials of a local simulator, not secrets of a real cloud;
clouds.yaml carries them to openstacksdk and the `openstack` CLI.
"""

from sandbox.catalog import stable_id

DOMAIN_ID = "default"
DOMAIN_NAME = "Default"

USER_NAME = "mchub"
USER_ID = stable_id("user", USER_NAME).replace("-", "")
PASSWORD = "sandbox-password"

PROJECT_NAME = "sandbox-project"
PROJECT_ID = stable_id("project", PROJECT_NAME).replace("-", "")

APP_CRED_ID = "sandbox-appcred"
APP_CRED_NAME = "sandbox-appcred"
APP_CRED_SECRET = "sandbox-secret"

ROLES = ("member", "reader")

# Public images and the external network belong to the cloud's admin project.
ADMIN_PROJECT_ID = stable_id("project", "admin").replace("-", "")


def is_default_domain(domain_id: str | None, domain_name: str | None) -> bool:
    """Whether a Keystone domain reference (by id or by name) names the Default domain."""
    # Keystone compares domain names case-insensitively (its SQL collation does).
    return domain_id == DOMAIN_ID or (domain_name or "").lower() == DOMAIN_NAME.lower()
