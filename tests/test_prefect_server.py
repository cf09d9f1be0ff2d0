"""mchub.orchestration.prefect_server: Prefect's server with every SQLite write transaction IMMEDIATE, so
that writes arriving together wait their turn instead of being refused with a 503.

Requests here are plain httpx (no retries), as Prefect's clients send them before retrying."""

from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import httpx
from prefect import flow
from prefect.states import Completed

from tests.harness import LiveStack


@flow(name="label-probe", persist_result=False)
def label_probe() -> None:
    """Never run: its runs are only records to label."""


def test_writes_sent_together_all_succeed_at_the_first_try(live_stack: LiveStack) -> None:
    with live_stack.client() as client:
        run_ids: list[UUID] = [client.create_flow_run(label_probe, state=Completed()).id for _ in range(12)]

    auth = live_stack.http_auth()

    def label(run_id: UUID) -> int:
        # Updating labels reads the run's labels, then writes them: the kind of transaction
        # that DEFERRED fails at once when another write commits in between.
        response = httpx.patch(
            f"{live_stack.api_url}/flow_runs/{run_id}/labels", json={"probe": uuid4().hex}, auth=auth
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = [code for _ in range(5) for code in pool.map(label, run_ids)]
    assert codes.count(204) == len(codes), f"refused: {sorted(set(codes) - {204})}, {len(codes) - codes.count(204)} times"

