"""What MC Hub tells people about their clusters, and whom it tells.

A notice goes out when a plan waits for approval, when a cluster is ready, when one of its
runs fails, when its expiration nears and when it is destroyed. It goes to the cluster's owner
by mail, and to the channels of the cluster's project (settings.project_notifications): a
Slack-compatible webhook and mail addresses. The texts are plain: the same words go into a
mail (the subject as its subject, the body as its text) and a chat message (the body, which
begins with the subject), and nothing in them is read as markup.
"""

import re
from typing import Literal

from pydantic import BaseModel

from mchub.access.rights import Ownership
from mchub.settings import MAIL_ADDRESS, ProjectNotifications
from mchub.spec.plain_text import visible_lines
from mchub.status import AUDIT_EVENT_PREFIX

NoticeKind = Literal["awaiting-approval", "ready", "failed", "expiry-reminder", "destroyed"]

DETAIL_CHARACTERS = 4000
"""How much of what the event said a notice quotes: a failed run's message can be long."""
# How Prefect words a run that raised: the person wants the error's own words.
_PREFECTS_PREAMBLE = re.compile(r"^Flow run encountered an exception: \w+: ")

_SUBJECTS: dict[NoticeKind, str] = {
    "awaiting-approval": "{hostname}: a plan waits for approval",
    "ready": "{hostname} is ready",
    "failed": "{hostname}: a run failed",
    "expiry-reminder": "{hostname} expires soon",
    "destroyed": "{hostname} was destroyed",
}

_NEXT_STEPS: dict[NoticeKind, str] = {
    "awaiting-approval": "Read the plan, then approve or reject it, on the cluster's page:",
    "ready": "Its connection details are on its page:",
    "failed": "What happened, and Try again, are on the cluster's page:",
    "expiry-reminder": "To keep it longer, extend its expiration date on its page:",
    "destroyed": "Its logs stay readable on its page:",
}


def cluster_event(kind: NoticeKind) -> str:
    """The name of the Prefect event the flows emit for `kind`, about the cluster: the plan
    waiting and the expiry reminder (Prefect's own run events tell the others)."""
    return f"{AUDIT_EVENT_PREFIX}{kind}"


class Notice(BaseModel):
    """One thing to tell about one cluster."""

    hostname: str
    kind: NoticeKind
    detail: str = ""
    """What the event said: the plan's changes, the run's failure, the reminder."""
    page_url: str

    def subject(self) -> str:
        return _SUBJECTS[self.kind].format(hostname=self.hostname)

    def body(self) -> str:
        detail = _PREFECTS_PREAMBLE.sub("", visible_lines(self.detail))[:DETAIL_CHARACTERS].strip()
        parts = [self.subject() + "."] + ([detail] if detail else []) + [f"{_NEXT_STEPS[self.kind]}\n{self.page_url}"]
        return "\n\n".join(parts) + "\n"


class Recipients(BaseModel):
    """Who hears of a cluster: mail addresses, and the project whose webhook is posted to."""

    emails: list[str] = []
    webhook_project: str | None = None

    def __bool__(self) -> bool:
        return bool(self.emails or self.webhook_project)


def recipients(ownership: Ownership | None, projects: dict[str, ProjectNotifications]) -> Recipients:
    """The owner of the cluster owned as `ownership` says (by mail, if their address is one) and
    the channels of its project. A cluster that records no owner has nobody to tell."""
    if ownership is None:
        return Recipients()
    channels = projects.get(ownership.project, ProjectNotifications())
    owner = [ownership.owner.email] if MAIL_ADDRESS.fullmatch(ownership.owner.email) else []
    return Recipients(
        emails=list(dict.fromkeys(owner + channels.emails)),
        webhook_project=ownership.project if channels.webhook_url is not None else None,
    )
