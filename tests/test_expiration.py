"""Expiry: the reminders before a cluster expires (each once, the nearest when several are
due), the cull waiting for the last one, extending the date, and the maximum lifetime."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mchub.cluster import lifecycle
from mchub.cluster.expiration import (
    check_expiration,
    due_reminder,
    expires_at,
    extend,
    lead_text,
    may_cull,
    proposed_extension,
    record_sent,
    reminders_of,
    time_left,
)
from mchub.cluster.workspace import Workspace, create
from mchub.settings import Settings, get_settings
from mchub.spec.model import SpecError, dump_spec
from tests.test_spec import default_spec

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH test@mchub"
LEADS = [168.0, 24.0, 1.0]
LAST_DAY = date(2026, 12, 10)
EXPIRES = datetime(2026, 12, 11, tzinfo=UTC)  # the cluster lives through its last day


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    spec = default_spec([PUBLIC_KEY], name="hpc1", domain="example.org")
    workspace = create(tmp_path / "clusters", spec)
    # A stored spec: its date is checked when it is set, not each time it is read.
    dump_spec(spec.model_copy(update={"expiration_date": LAST_DAY}), workspace.spec_file)
    return workspace


def at(hours_before: float) -> datetime:
    return EXPIRES - timedelta(hours=hours_before)


def test_a_cluster_expires_when_the_day_after_its_date_starts(ws: Workspace) -> None:
    assert expires_at(ws.spec()) == EXPIRES


def test_each_reminder_goes_out_once_in_turn_and_the_cull_waits_for_the_last(ws: Workspace) -> None:
    assert due_reminder(ws, LEADS, at(200)) is None  # more than 7 days before: nothing yet
    sent = []
    for hours_before in (167, 100, 23, 5, 0.5, 0.2, -0.1):
        now = at(hours_before)
        assert not may_cull(ws, LEADS, now)
        reminder = due_reminder(ws, LEADS, now)
        if reminder is not None:
            record_sent(ws, reminder, now)
            sent.append(reminder.lead)
    assert sent == ["7 days", "1 day", "1 hour"]
    # Expired: destroyed once the last reminder's hour has passed since it went out.
    assert not may_cull(ws, LEADS, at(0.5) + timedelta(minutes=59))
    assert may_cull(ws, LEADS, at(0.5) + timedelta(hours=1))
    reminder = due_reminder(ws, LEADS, at(-5))
    assert reminder is None


def test_when_several_are_due_at_once_only_the_nearest_goes_out(ws: Workspace) -> None:
    """A date set close to today, or a hub that was down: no burst of stale reminders."""
    reminder = due_reminder(ws, LEADS, at(0.5))
    assert reminder is not None and reminder.lead_hours == 1.0
    assert "hpc1.example.org expires at 2026-12-11 00:00 UTC (in about 1 hour)" in reminder.message()
    assert "mchub extend hpc1.example.org --until" in reminder.message()
    record_sent(ws, reminder, at(0.5))
    assert due_reminder(ws, LEADS, at(0.1)) is None


def test_an_expired_cluster_never_warned_is_warned_first_then_culled(ws: Workspace) -> None:
    late = EXPIRES + timedelta(days=3)  # the hub was down over the expiry
    assert not may_cull(ws, LEADS, late)
    reminder = due_reminder(ws, LEADS, late)
    assert reminder is not None and reminder.lead_hours == 1.0
    record_sent(ws, reminder, late)
    assert not may_cull(ws, LEADS, late + timedelta(minutes=30))
    assert may_cull(ws, LEADS, late + timedelta(hours=1))


def test_without_reminders_the_cull_goes_by_the_date_alone(ws: Workspace) -> None:
    assert not may_cull(ws, [], at(0.1))
    assert may_cull(ws, [], EXPIRES)
    assert due_reminder(ws, [], EXPIRES) is None


def test_a_cluster_without_a_date_is_never_reminded_nor_culled(ws: Workspace) -> None:
    dump_spec(ws.spec().model_copy(update={"expiration_date": None}), ws.spec_file)
    assert due_reminder(ws, LEADS, at(-1000)) is None
    assert not may_cull(ws, LEADS, at(-1000))


def test_extending_starts_the_reminders_over_and_touches_nothing_terraform_reads(ws: Workspace) -> None:
    record_sent(ws, due_reminder(ws, LEADS, at(20)), at(20))
    ws.main_tf.write_text("{}")
    before = ws.main_tf.stat().st_mtime_ns
    extend(ws, LAST_DAY + timedelta(days=14), today=LAST_DAY - timedelta(days=1), max_days=None)
    assert ws.spec().expiration_date == LAST_DAY + timedelta(days=14)
    assert ws.main_tf.stat().st_mtime_ns == before
    later = EXPIRES + timedelta(days=14)
    assert reminders_of(ws, later) == {}
    reminder = due_reminder(ws, LEADS, later - timedelta(days=6))
    assert reminder is not None and reminder.lead == "7 days"


def test_an_extension_is_in_the_future_and_within_the_maximum_lifetime(ws: Workspace) -> None:
    created = ws.created_at().date()
    today = created + timedelta(days=10)
    with pytest.raises(SpecError) as past:
        extend(ws, today, today=today, max_days=None, field="--until")
    assert str(past.value) == (
        f"--until: {today.isoformat()} is not in the future; choose a date after {today.isoformat()}"
    )
    with pytest.raises(SpecError) as late:
        extend(ws, created + timedelta(days=31), today=today, max_days=30, field="--until")
    latest = (created + timedelta(days=30)).isoformat()
    assert str(late.value) == (
        f"--until: {(created + timedelta(days=31)).isoformat()} is too late: the maximum lifetime is 30 days "
        f"(MCHUB_MAX_LIFETIME_DAYS) from {created.isoformat()}; choose {latest} at the latest"
    )
    assert ws.spec().expiration_date == LAST_DAY  # refused: unchanged
    extend(ws, created + timedelta(days=30), today=today, max_days=30)
    assert ws.spec().expiration_date == created + timedelta(days=30)


def test_the_extend_button_proposes_the_usual_lifetime_within_the_maximum() -> None:
    today, created = date(2026, 12, 1), date(2026, 11, 20)
    assert proposed_extension(date(2026, 12, 5), created=created, today=today, days=14, max_days=None) == date(2026, 12, 19)
    assert proposed_extension(None, created=created, today=today, days=14, max_days=None) == date(2026, 12, 15)
    assert proposed_extension(date(2026, 12, 5), created=created, today=today, days=14, max_days=20) == date(2026, 12, 10)


def test_a_new_cluster_without_a_date_or_past_the_maximum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCHUB_MAX_LIFETIME_DAYS", "30")
    get_settings.cache_clear()
    try:
        today = datetime.now(UTC).date()
        spec = default_spec([PUBLIC_KEY], name="hpc2", domain="example.org")
        with pytest.raises(SpecError, match=r"expiration_date: a date is needed: the maximum lifetime is 30 days"):
            lifecycle.new_cluster_request(spec, clusters_dir=tmp_path)
        too_late = spec.model_copy(update={"expiration_date": today + timedelta(days=31)})
        with pytest.raises(SpecError, match=rf"choose {(today + timedelta(days=30)).isoformat()} at the latest"):
            lifecycle.new_cluster_request(too_late, clusters_dir=tmp_path)
        assert not (tmp_path / lifecycle.REQUESTS).exists()  # refused before anything is written
        ok = spec.model_copy(update={"expiration_date": today + timedelta(days=30)})
        assert lifecycle.new_cluster_request(ok, clusters_dir=tmp_path).exists()
    finally:
        get_settings.cache_clear()


def test_reminder_hours_are_read_as_json_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().expiry_reminder_hours == LEADS
    monkeypatch.setenv("MCHUB_EXPIRY_REMINDER_HOURS", "[2, 48]")
    assert Settings().expiry_reminder_hours == [48.0, 2.0]
    monkeypatch.setenv("MCHUB_EXPIRY_REMINDER_HOURS", "[0]")
    with pytest.raises(ValueError, match="above 0"):
        Settings()
    assert [lead_text(h) for h in (168, 24, 36, 1, 0.5)] == ["7 days", "1 day", "36 hours", "1 hour", "30 minutes"]
    assert [time_left(EXPIRES, at(h)) for h in (348, 30, 0.34, -2)] == ["14 days", "30 hours", "20 minutes", "1 minute"]


def test_a_date_within_the_maximum_is_accepted() -> None:
    check_expiration(date(2026, 12, 2), created=date(2026, 12, 1), today=date(2026, 12, 1), max_days=1)
