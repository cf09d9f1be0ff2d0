"""Is a cluster's web service up? One GET per attempt; Prefect retries until the deadline.

Success is HTTP 200. Anything else (a 503 while Puppet is still configuring, no answer at
all) fails the attempt with the answer in the message, and the task is retried on a delay
schedule until the provisioning deadline has passed; then it fails with that last answer.
"""

from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import get_run_logger

from tasks.uncached import uncached_task

# Seconds between attempts; the last one repeats. Quick at first (the sandbox and a
# modified cluster answer within seconds), then sparing (a new cluster takes minutes).
RETRY_DELAYS = [1, 2, 5, 10, 15, 30]
# Enough attempts to fill any deadline: the deadline, not this count, ends the probing.
MAX_RETRIES = 10_000
MAX_REQUEST_SECONDS = 10.0
_ANSWER_CHARS = 200


class ServiceNotReady(Exception):
    """The service did not answer 200 (yet); the message is its answer."""


class ServiceDeadlinePassed(ServiceNotReady):
    """The service did not answer 200 before the provisioning deadline; the message is its last answer."""


def _until_deadline(task: Any, task_run: Any, state: Any) -> bool:
    return not isinstance(state.result(raise_on_failure=False), ServiceDeadlinePassed)


@uncached_task(retries=MAX_RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_until_deadline)
def probe_service(service: str, url: str, deadline: datetime) -> str:
    """Wait (by retries) until `url` answers 200; returns its answer."""
    remaining = (deadline - datetime.now(UTC)).total_seconds()
    try:
        response = httpx.get(url, timeout=min(MAX_REQUEST_SECONDS, max(1.0, remaining)), follow_redirects=True)
    except httpx.HTTPError as error:
        answer = f"no answer ({type(error).__name__}: {error or 'no detail'})"
    else:
        text = " ".join(response.text.split())[:_ANSWER_CHARS]
        answer = f"HTTP {response.status_code}" + (f" {text!r}" if text else "")
        if response.status_code == 200:
            get_run_logger().info("%s is up at %s: %s", service, url, answer)
            return answer
    message = f"{service} at {url}: {answer}"
    if datetime.now(UTC) >= deadline:
        raise ServiceDeadlinePassed(message)
    raise ServiceNotReady(message)
