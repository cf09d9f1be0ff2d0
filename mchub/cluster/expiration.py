"""When a cluster expires, the reminders that go out before, and how far its life may reach.

A cluster's `expiration_date` is the last day it lives: it expires when the next day starts
(UTC). Reminders go out ahead of that moment (settings.expiry_reminder_hours: by default 7
days, 1 day and 1 hour before), each once per expiration: the cluster's folder records which
went out (`reminders.json`), for the expiration they were about, so a new date starts them over.
When several are due at once (a date set close, or the hub down for a while) only the nearest
goes out. The hourly cull destroys a cluster only once it has expired and its last reminder went
out at least that reminder's lead before: nobody loses a cluster unwarned.

An admin may cap a cluster's life (settings.max_lifetime_days, from the day it was created):
a new date past that is refused, as is no date at all.
"""

from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel

from mchub.cluster.workspace import Workspace
from mchub.private_file import write_private
from mchub.spec.model import ClusterSpec, FieldProblem, SpecError


class Reminders(BaseModel):
    """The reminders that went out for one expiration moment: lead in hours → when it went out."""

    expires_at: datetime
    sent: dict[float, datetime] = {}


class Reminder(BaseModel):
    """A reminder to send: the cluster expires at `expires_at`, `lead_hours` from the moment it is due."""

    hostname: str
    expires_at: datetime
    lead_hours: float

    @property
    def lead(self) -> str:
        return lead_text(self.lead_hours)

    def message(self) -> str:
        return (
            f"{self.hostname} expires at {self.expires_at:%Y-%m-%d %H:%M} UTC (in about {self.lead}) and will "
            f"then be destroyed; extend it on its page or with `mchub extend {self.hostname} --until YYYY-MM-DD`"
        )


def expires_at(spec: ClusterSpec) -> datetime | None:
    """The moment the cluster expires: the start of the day after its expiration date (UTC)."""
    if spec.expiration_date is None:
        return None
    return datetime.combine(spec.expiration_date + timedelta(days=1), time(), tzinfo=UTC)


def expired(spec: ClusterSpec, today: date | None = None) -> bool:
    """Past its expiration date (from the day after it, in UTC); never for a cluster without one."""
    today = today if today is not None else datetime.now(UTC).date()
    return spec.expiration_date is not None and spec.expiration_date < today


def lead_text(hours: float) -> str:
    """"7 days", "1 day", "1 hour", "90 minutes"."""
    if hours >= 24 and (hours / 24).is_integer():
        count, unit = int(hours / 24), "day"
    elif hours >= 1 and float(hours).is_integer():
        count, unit = int(hours), "hour"
    else:
        count, unit = round(hours * 60), "minute"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def time_left(expires: datetime, now: datetime) -> str:
    """Roughly how long until `expires`: "14 days", "5 hours", "20 minutes"."""
    hours = max((expires - now) / timedelta(hours=1), 0)
    if hours >= 48:
        return lead_text(24 * round(hours / 24))
    if hours >= 2:
        return lead_text(round(hours))
    return lead_text(max(1, round(hours * 60)) / 60)


def reminders_of(ws: Workspace, expires: datetime) -> dict[float, datetime]:
    """The reminders that went out for the expiration moment `expires` (lead hours → when)."""
    try:
        record = Reminders.model_validate_json(ws.reminders_file.read_text())
    except FileNotFoundError:
        return {}
    return dict(record.sent) if record.expires_at == expires else {}


def due_reminder(ws: Workspace, leads: list[float], now: datetime) -> Reminder | None:
    """The reminder to send now, None when none is due: the nearest lead whose time has come,
    unless it, or a nearer one, went out already for this expiration."""
    spec = ws.spec()
    expires = expires_at(spec)
    if expires is None:
        return None
    come = [lead for lead in leads if now >= expires - timedelta(hours=lead)]
    if not come:
        return None
    nearest = min(come)
    if any(lead <= nearest for lead in reminders_of(ws, expires)):
        return None
    return Reminder(hostname=spec.hostname, expires_at=expires, lead_hours=nearest)


class ScheduledReminder(BaseModel):
    """One reminder of a cluster's expiration, for its page: when it is due, and when it went out."""

    lead_hours: float
    due_at: datetime
    sent_at: datetime | None

    @property
    def lead(self) -> str:
        return lead_text(self.lead_hours)


def reminder_schedule(ws: Workspace, leads: list[float]) -> list[ScheduledReminder]:
    """Every reminder of the cluster's current expiration, the earliest first; [] without one."""
    expires = expires_at(ws.spec())
    if expires is None:
        return []
    sent = reminders_of(ws, expires)
    return [
        ScheduledReminder(lead_hours=lead, due_at=expires - timedelta(hours=lead), sent_at=sent.get(lead))
        for lead in sorted(leads, reverse=True)
    ]


def record_sent(ws: Workspace, reminder: Reminder, now: datetime) -> None:
    """Record that `reminder` went out, so it never goes out twice for this expiration."""
    sent = reminders_of(ws, reminder.expires_at)
    sent[reminder.lead_hours] = now
    write_private(ws.reminders_file, Reminders(expires_at=reminder.expires_at, sent=sent).model_dump_json(indent=2))


def may_cull(ws: Workspace, leads: list[float], now: datetime) -> bool:
    """Expired, and warned: its nearest reminder went out at least that long ago (without
    reminders configured, expired is enough)."""
    spec = ws.spec()
    expires = expires_at(spec)
    if expires is None or now < expires:
        return False
    if not leads:
        return True
    last = min(leads)
    sent = reminders_of(ws, expires).get(last)
    return sent is not None and now >= sent + timedelta(hours=last)


def latest_date(created: date, max_days: int | None) -> date | None:
    """The last expiration date a cluster created on `created` may have, None without a cap."""
    return None if max_days is None else created + timedelta(days=max_days)


def check_lifetime(day: date | None, *, created: date, max_days: int | None, field: str = "expiration_date") -> None:
    """SpecError naming `field` and the fix when `day` is past the maximum lifetime of a cluster
    created on `created`, or is none while a maximum is set."""
    latest = latest_date(created, max_days)
    if latest is None or (day is not None and day <= latest):
        return
    cap = f"the maximum lifetime is {max_days} days (MCHUB_MAX_LIFETIME_DAYS) from {created.isoformat()}"
    wrong = "a date is needed" if day is None else f"{day.isoformat()} is too late"
    raise SpecError([FieldProblem(field=field, message=f"{wrong}: {cap}; choose {latest.isoformat()} at the latest")])


def check_expiration(
    day: date, *, created: date, today: date, max_days: int | None, field: str = "expiration_date"
) -> None:
    """SpecError naming `field` and the fix when `day` cannot be a cluster's new expiration
    date: not in the future, or past the maximum lifetime."""
    if day <= today:
        raise SpecError([FieldProblem(field=field, message=f"{day.isoformat()} is not in the future; choose "
                                                             f"a date after {today.isoformat()}")])
    check_lifetime(day, created=created, max_days=max_days, field=field)


def proposed_extension(current: date | None, *, created: date, today: date, days: int, max_days: int | None) -> date:
    """The date the Extend button proposes: `days` after the later of today and the current
    date, within the maximum lifetime."""
    proposed = max(current or today, today) + timedelta(days=days)
    latest = latest_date(created, max_days)
    return min(proposed, latest) if latest is not None else proposed


def extend(ws: Workspace, until: date, *, today: date, max_days: int | None, field: str = "expiration_date") -> None:
    """Set the cluster's expiration date to `until`, checked (check_expiration), without
    touching anything Terraform reads: the date is not part of its configuration."""
    check_expiration(until, created=ws.created_at().date(), today=today, max_days=max_days, field=field)
    ws.set_expiration(until)
