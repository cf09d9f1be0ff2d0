"""Changes to a cluster spec's data, for the tests that feed the hub one bad field at a time."""

from collections.abc import Callable
from typing import Any


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set `value` at the dotted `path` (instances.node.count) of the spec data."""
    *parents, last = path.split(".")

    def change(data: dict[str, Any]) -> None:
        for key in parents:
            data = data[key]
        data[last] = value

    return change
