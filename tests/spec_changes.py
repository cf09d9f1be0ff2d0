"""Changes to a cluster spec's data, for the tests that feed the hub one bad field at a time."""

from collections.abc import Callable
from typing import Any

Change = Callable[[dict[str, Any]], None]


def setting(path: str, value: Any) -> Change:
    """Set `value` at the dotted `path` (instances.node.count) of the spec data."""

    def change(data: dict[str, Any]) -> None:
        parent, last = _holder(data, path)
        parent[last] = value

    return change


def dropping(path: str) -> Change:
    """Remove the field at the dotted `path` of the spec data."""

    def change(data: dict[str, Any]) -> None:
        parent, last = _holder(data, path)
        del parent[last]

    return change


def _holder(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The mapping that holds the field at the dotted `path`, and the field's name in it."""
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    return data, last
