"""A cluster's expiry on its page: when it expires, the reminders sent before the cull, and a
one-click Extend that changes only the date (no Terraform run).

The rules (when reminders go out, how far a date may be moved) are mchub.cluster.expiration's.
"""

from datetime import UTC, datetime, timedelta

import streamlit as st

from mchub.access.people import Person
from mchub.cluster.expiration import (
    expires_at,
    latest_date,
    proposed_extension,
    reminder_schedule,
    time_left,
)
from mchub.cluster.workspace import Workspace
from mchub.errors import MCHubError
from mchub.orchestration import runs
from mchub.settings import get_settings
from mchub.spec.model import SpecError
from ui.text import literal


def expiry_section(ws: Workspace, busy: bool, person: Person) -> None:
    try:
        spec = ws.spec()
    except SpecError:
        return  # the page's status says what is wrong with the cluster
    settings = get_settings()
    now = datetime.now(UTC)
    expires = expires_at(spec)
    created = ws.created_at().date()
    with st.container(border=True, key="expiry"):
        st.markdown("**Expiry**")
        if expires is None:
            st.markdown("The cluster has no expiration date: it is never destroyed by the cull.")
        elif expires > now:
            st.markdown(f"Expires at the end of **{spec.expiration_date}** (UTC), in about {time_left(expires, now)}; "
                        "it is then destroyed, never before its last reminder went out.")
        else:
            st.markdown(f"Expired at the end of **{spec.expiration_date}** (UTC): the hourly cull destroys it "
                        "once its last reminder has gone out.")
        for reminder in reminder_schedule(ws, settings.expiry_reminder_hours):
            if reminder.sent_at is not None:
                st.markdown(f":material/notifications_active: Reminder {reminder.lead} before: "
                            f"sent {reminder.sent_at:%Y-%m-%d %H:%M} UTC")
            elif reminder.due_at <= now:
                st.caption(f"Reminder {reminder.lead} before: skipped, a nearer one was due")
            else:
                st.caption(f"Reminder {reminder.lead} before: due {reminder.due_at:%Y-%m-%d %H:%M} UTC")
        today = now.date()
        proposed = proposed_extension(spec.expiration_date, created=created, today=today,
                                      days=settings.cluster_lifetime_days, max_days=settings.max_lifetime_days)
        latest = latest_date(created, settings.max_lifetime_days)
        pick, extend = st.columns([2, 1], vertical_alignment="bottom")
        # Keyed by the current date: once extended, it proposes again from the new one.
        until = pick.date_input("New expiration date", value=proposed, min_value=today + timedelta(days=1),
                                max_value=latest, key=f"extend-until-{ws.hostname}-{spec.expiration_date}",
                                help=f"At most {latest} (the maximum lifetime)" if latest else None)
        why = "A run is acting on the cluster; wait for it to end." if busy else "Changes the date only: no Terraform run."
        if extend.button("Extend", icon=":material/event_upcoming:", key=f"extend-{ws.hostname}", disabled=busy,
                         help=why):
            try:
                runs.extend(ws.hostname, until, person)
            except MCHubError as error:
                st.error(literal(str(error)))
                return
            st.rerun()
