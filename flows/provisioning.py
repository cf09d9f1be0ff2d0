"""The last phase of a build: wait until the cluster's JupyterHub and FreeIPA both answer.

Both are probed at once, each by a retrying task, until one shared deadline counted from
the END of the apply, not from the cluster's creation: a modification made days later gets
the same time as a new cluster.
"""

from datetime import datetime, timedelta

from prefect.futures import wait

from mchub.settings import get_settings
from tasks.probe import probe_service


class ProvisioningTimeout(Exception):
    """A service did not answer 200 in time; the message has the last answer of each."""


def wait_for_services(hostname: str, service_urls: dict[str, str], apply_ended: datetime) -> dict[str, str]:
    """The 200 answer of every service, or ProvisioningTimeout with the last answer of those
    that never gave one within settings.provisioning_timeout_seconds of `apply_ended`."""
    timeout = get_settings().provisioning_timeout_seconds
    deadline = apply_ended + timedelta(seconds=timeout)
    futures = {service: probe_service.submit(service, url, deadline) for service, url in service_urls.items()}
    wait(list(futures.values()))
    answers: dict[str, str] = {}
    missing: list[str] = []
    for service, future in futures.items():
        if future.state.is_completed():
            answers[service] = future.result()
        else:
            missing.append(str(future.state.result(raise_on_failure=False)))
    if missing:
        raise ProvisioningTimeout(
            f"{hostname} was not up within {timeout:g} s of the end of the apply; last answers: "
            + "; ".join(missing)
        )
    return answers
