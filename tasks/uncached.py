"""The task decorator every MC Hub step uses."""

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

F = TypeVar("F", bound=Callable[..., Any])


def uncached_task(**options: Any) -> Callable[[F], Any]:
    """`@task` that is never cached and never persists its result: steps act on the cloud
    (a cached "done" would skip real work) and their values can hold the guest password or
    cloud credentials, which must not reach Prefect's result storage."""

    def decorate(fn: F) -> Any:
        return task(fn, cache_policy=NO_CACHE, persist_result=False, **options)

    return decorate
