"""Where a sandbox cluster's web services answer: one URL per service, built from its hostname.

Pure so that anything (the CLI, the Terraform module's outputs, tests) can print the URLs
without a running sandbox.
"""

SERVICES = ("jupyterhub", "freeipa")
"""The services the hub waits for."""
PAGES = (*SERVICES, "mokey")
"""Everything a cluster serves, Mokey (its account portal) included."""


def service_urls(sandbox_url: str, hostname: str) -> dict[str, str]:
    """{"jupyterhub": url, "freeipa": url} of cluster `hostname` (cluster_name.domain)."""
    base = sandbox_url.rstrip("/")
    return {service: f"{base}/sandbox/clusters/{hostname}/{service}" for service in SERVICES}
