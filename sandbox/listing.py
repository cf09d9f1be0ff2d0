"""Filters and pages of list requests, shared by every service.

Clients find a resource by name by listing with `?name=...`, and page with `limit` and
`marker`; every list endpoint of the sandbox answers both the way OpenStack does.
"""

import re
from collections.abc import Collection
from typing import Any

from starlette.datastructures import URL, QueryParams

from sandbox.faults import OpenStackError, Service

PAGING_PARAMS = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort", "fields", "page_reverse"})


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        # Not a valid regular expression: taken as the plain text it most likely is.
        return pattern in text


def _matches(item: dict[str, Any], key: str, wanted: list[str], regex: bool) -> bool:
    actual = item[key]
    if regex:
        return any(_search(pattern, _as_text(actual)) for pattern in wanted)
    if isinstance(actual, bool):
        return _as_text(actual) in (w.lower() for w in wanted)
    return _as_text(actual) in wanted


def select(items: list[dict[str, Any]], query: QueryParams, regex_keys: Collection[str] = ()) -> list[dict[str, Any]]:
    """The items whose fields equal every filter of `query` (a repeated key or `in:` means any of them).

    Filters on keys the items do not have are ignored, as most OpenStack services do.
    """
    filters: dict[str, list[str]] = {}
    for key, value in query.multi_items():
        if key not in PAGING_PARAMS:
            # Glance's `in:a,b` operator: any of the listed values.
            filters.setdefault(key, []).extend(value[3:].split(",") if value.startswith("in:") else [value])
    if not items:
        return items
    known = {key: wanted for key, wanted in filters.items() if key in items[0]}
    return [
        item for item in items if all(_matches(item, key, wanted, key in regex_keys) for key, wanted in known.items())
    ]


def paginate(
    service: Service, items: list[dict[str, Any]], query: QueryParams, url: URL
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `items` after `marker`, and the URL of the next page when there is one."""
    start = 0
    marker = query.get("marker")
    if marker:
        index = next((i for i, item in enumerate(items) if item.get("id") == marker), None)
        if index is None:
            raise OpenStackError(service, 400, f"marker [{marker}] not found")
        start = index + 1
    limit_text = query.get("limit")
    if not limit_text:
        return items[start:], None
    try:
        limit = int(limit_text)
    except ValueError:
        raise OpenStackError(service, 400, f"limit must be an integer, not {limit_text!r}") from None
    if limit < 0:
        raise OpenStackError(service, 400, f"limit must be 0 or more, not {limit}")
    page = items[start : start + limit]
    if start + limit >= len(items) or not page:
        return page, None
    return page, str(url.include_query_params(marker=page[-1]["id"]))
