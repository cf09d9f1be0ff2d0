"""Is a cluster's web service up? One GET per attempt; Prefect retries until the deadline.

Success is HTTP 200. Anything else (a 503 while Puppet is still configuring, no answer at
all) fails the attempt with the answer in the message, and the task is retried on a delay
schedule until the provisioning deadline has passed; then it fails with that last answer.
The prober (flows/provisioning.py) runs it for a suspended build run: each answer also goes
to that run's log, where the cluster's page and Prefect's dashboard read it.
"""

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import LogCreate

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


async def _until_deadline(task: Any, task_run: Any, state: Any) -> bool:
    return not isinstance(await state.aresult(raise_on_failure=False), ServiceDeadlinePassed)


@uncached_task(
    task_run_name="probe-{service}", retries=MAX_RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_until_deadline
)
async def probe_service(run_id: UUID, service: str, url: str, deadline: datetime) -> str:
    """Wait (by retries) until `url` answers 200; returns its answer."""
    remaining = (deadline - datetime.now(UTC)).total_seconds()
    async with httpx.AsyncClient(timeout=min(MAX_REQUEST_SECONDS, max(1.0, remaining)), follow_redirects=True) as http:
        try:
            response = await http.get(url)
        except httpx.HTTPError as error:
            answer = f"no answer ({type(error).__name__}: {error or 'no detail'})"
        else:
            text = " ".join(response.text.split())[:_ANSWER_CHARS]
            answer = f"HTTP {response.status_code}" + (f" {text!r}" if text else "")
            if response.status_code == 200:
                await _tell_run(run_id, logging.INFO, f"{service} is up at {url}: {answer}")
                return answer
    message = f"{service} at {url}: {answer}"
    await _tell_run(run_id, logging.WARNING, message)
    if datetime.now(UTC) >= deadline:
        raise ServiceDeadlinePassed(message)
    raise ServiceNotReady(message)


async def _tell_run(run_id: UUID, level: int, message: str) -> None:
    async with get_client() as client:
        await client.create_logs(
            [LogCreate(name="mchub.probe", level=level, message=message, timestamp=datetime.now(UTC), flow_run_id=run_id)]
        )
