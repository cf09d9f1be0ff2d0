"""When a cluster has expired: the hourly cull destroys it, and only an expired cluster may be
destroyed without a person approving the plan."""

from datetime import UTC, date, datetime

from mchub.spec.model import ClusterSpec


def expired(spec: ClusterSpec, today: date | None = None) -> bool:
    """Past its expiration date (from the day after it, in UTC); never for a cluster without one."""
    today = today if today is not None else datetime.now(UTC).date()
    return spec.expiration_date is not None and spec.expiration_date < today
