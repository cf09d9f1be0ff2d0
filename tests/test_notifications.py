"""Notifications: a cluster's owner and project hear, by mail and by a Slack-compatible
webhook, that a plan waits for approval, the cluster is ready, a run failed, its expiration
nears and it was destroyed. The live test runs a stack of its own whose automations send
through a real SMTP server and a real HTTP server on loopback, and reads what they received."""

import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from mchub.access.people import Person, PersonRef, Role
from mchub.access.rights import Ownership
from mchub.cluster import lifecycle
from mchub.cluster.notices import Notice, recipients
from mchub.orchestration import notifications, runs
from mchub.orchestration.stack import ROOT
from mchub.settings import ProjectNotifications, Settings
from sandbox.launcher import SandboxCloud
from tests.harness import LiveStack, acting_on, prefect_part
from tests.receivers import Received, smtp_server, webhook_server
from tests.test_flows import cluster_spec, ended, expire, paused, run_cull

ALICE = Person(subject="alice", name="Alice Martin", email="alice@example.org", projects={"physics": Role.MEMBER})
BOB = Person(subject="bob", name="Bob Chen", email="bob@example.org", projects={"physics": Role.MEMBER})
PHYSICS_ADMINS = "physics-admins@example.org"
HUB = "hub@example.org"


def owned_by(email: str, project: str = "physics") -> Ownership:
    return Ownership(owner=PersonRef(subject="s", name="Someone", email=email), project=project)


# --- whom and what: no stack -------------------------------------------------------------


def test_the_owner_and_the_projects_channels_hear_of_a_cluster() -> None:
    channels = {"physics": ProjectNotifications(webhook_url="https://chat.example.org/hook", emails=[PHYSICS_ADMINS])}
    to = recipients(owned_by("alice@example.org"), channels)
    assert to.emails == ["alice@example.org", PHYSICS_ADMINS]
    assert to.webhook_project == "physics"
    # Another project's channels are not told; a project without channels tells the owner only.
    assert recipients(owned_by("carol@example.org", "chemistry"), channels).model_dump() == {
        "emails": ["carol@example.org"], "webhook_project": None
    }
    # An owner who is also on the project's list gets one mail.
    assert recipients(owned_by(PHYSICS_ADMINS), channels).emails == [PHYSICS_ADMINS]


def test_nobody_is_told_of_a_cluster_without_owner_and_a_made_up_address_is_not_mailed() -> None:
    assert not recipients(None, {"physics": ProjectNotifications(emails=[PHYSICS_ADMINS])})
    # An identity provider's email claim goes into a mail header: only a plain address does.
    assert recipients(owned_by("eve@example.org\r\nBcc: all@example.org"), {}).emails == []
    assert recipients(owned_by(""), {}).emails == []


def test_a_notice_says_what_happened_and_where_to_act_in_plain_text() -> None:
    page = "https://hub.example.org/cluster?hostname=c1.sandbox.mchub.dev"
    waiting = Notice(hostname="c1.sandbox.mchub.dev", kind="awaiting-approval", detail="Plan: 10 to add.", page_url=page)
    assert waiting.subject() == "c1.sandbox.mchub.dev: a plan waits for approval"
    assert waiting.body() == (
        "c1.sandbox.mchub.dev: a plan waits for approval.\n\nPlan: 10 to add.\n\n"
        f"Read the plan, then approve or reject it, on the cluster's page:\n{page}\n"
    )
    # What a failed run said is quoted without the characters that would rewrite a terminal or
    # a chat, and at a bounded length.
    failed = Notice(hostname="c1.sandbox.mchub.dev", kind="failed", detail="\x1b[2Jboom\u202e\r\n" + "x" * 10_000,
                    page_url=page)
    assert "\x1b" not in failed.body() and "\u202e" not in failed.body() and "\r" not in failed.body()
    assert "[2Jboom\n" in failed.body() and len(failed.body()) < 4300


def test_notification_settings_name_the_variable_and_the_form_to_use() -> None:
    for bad, field in [
        ({"smtp_url": "https://mail.example.org"}, "smtp_url"),
        ({"smtp_url": "smtp://"}, "smtp_url"),
        ({"mail_from": "hub@example.org\nBcc: x@example.org"}, "mail_from"),
        ({"project_notifications": {"physics": {"webhook_url": "file:///etc/passwd"}}}, "webhook_url"),
        ({"project_notifications": {"physics": {"emails": ["not an address"]}}}, "emails"),
        ({"project_notifications": {"Physics Dept": {"emails": [PHYSICS_ADMINS]}}}, "project_notifications"),
        ({"project_notifications": {"physics": {"webhook": "https://chat.example.org"}}}, "webhook"),
    ]:
        with pytest.raises(ValidationError) as refused:
            Settings(**bad)
        assert field in str(refused.value)


def test_the_mail_server_block_reads_the_url_credentials_included() -> None:
    server = notifications.mail_server("smtps://hub%40example.org:p%40ss@mail.example.org")
    assert (server.smtp_server, server.smtp_type.name, server.smtp_port) == ("mail.example.org", "SSL", None)
    assert (server.username, server.password.get_secret_value()) == ("hub@example.org", "p@ss")
    relay = notifications.mail_server("smtp://127.0.0.1:2525")
    assert (relay.smtp_type.name, relay.smtp_port, relay.username) == ("INSECURE", 2525, None)
    assert notifications.mail_server("smtp+starttls://u:p@mail.example.org:587").smtp_type.name == "STARTTLS"


def test_the_project_webhook_posts_slack_compatible_json() -> None:
    with webhook_server() as (url, bodies):
        notifications.project_webhook(url).notify("the body {{webhook_url}}", "the subject")
        [posted] = bodies.items
    # {"text": ...} is what Slack's (and Mattermost's, and Rocket.Chat's) incoming webhooks take;
    # text the notice quotes is not a template: it cannot pull the block's secret out.
    assert posted == {"text": "the body {{webhook_url}}"}


# --- through Prefect's automations: a stack of its own -------------------------------------


@pytest.fixture(scope="module")
def channels() -> Iterator[tuple[str, Received[EmailMessage], str, Received[dict[str, Any]]]]:
    with smtp_server() as (smtp_url, mailbox), webhook_server() as (hook_url, posts):
        yield smtp_url, mailbox, hook_url, posts


@pytest.fixture(scope="module")
def notifying_stack(
    sandbox_cloud: SandboxCloud, tmp_path_factory: pytest.TempPathFactory, channels: Any
) -> Iterator[LiveStack]:
    smtp_url, _, hook_url, _ = channels
    notifying = {
        "smtp_url": smtp_url,
        "mail_from": HUB,
        "project_notifications": {"physics": {"webhook_url": hook_url, "emails": [PHYSICS_ADMINS]}},
    }
    with prefect_part(tmp_path_factory.mktemp("notifying"), sandbox_cloud, **notifying) as stack, acting_on(stack):
        yield stack


def mail(mailbox: Received[EmailMessage], subject: str) -> EmailMessage:
    return mailbox.wait_for(lambda message: message["Subject"] == subject, f"mail {subject!r}")


def text_of(message: EmailMessage) -> str:
    """A mail's text as its reader sees it (SMTP carries its lines ended by CRLF)."""
    return str(message.get_content()).replace("\r\n", "\n")


def post(posts: Received[dict[str, Any]], subject: str) -> str:
    return str(posts.wait_for(lambda body: body["text"].startswith(f"{subject}."), f"webhook post {subject!r}")["text"])


def test_a_clusters_owner_and_project_hear_of_each_step_of_its_life(notifying_stack: LiveStack, channels: Any) -> None:
    _, mailbox, _, posts = channels
    spec = cluster_spec()
    host = spec.hostname
    page = f"{notifying_stack.ui_url}/cluster?hostname={host}"

    build = runs.submit_build(lifecycle.new_cluster_request(spec, new=True), host, True, person=ALICE, project="physics")
    paused(build)
    waiting = mail(mailbox, f"{host}: a plan waits for approval")
    assert waiting["From"] == HUB
    assert set(waiting["To"].addresses[i].addr_spec for i in range(2)) == {ALICE.email, PHYSICS_ADMINS}
    text = text_of(waiting)
    assert "Plan: " in text and " to add, 0 to change, 0 to destroy." in text and page in text
    assert "Read the plan, then approve or reject it" in post(posts, f"{host}: a plan waits for approval")

    runs.approve(host, person=ALICE)
    built = ended(build)
    assert built.state_type == "COMPLETED", built.state_message
    ready = mail(mailbox, f"{host} is ready")
    assert "is up: " in text_of(ready) and page in text_of(ready)
    post(posts, f"{host} is ready")
    # The run passed its approval step again when resumed: still one mail about its plan.
    assert len(mailbox.matching(lambda message: message["Subject"] == f"{host}: a plan waits for approval")) == 1

    # Someone without the right tries to destroy it: the run fails, and the owner hears why.
    refused = runs.submit_destroy(host, person=BOB)
    assert ended(refused).state_type == "FAILED"
    failed = mail(mailbox, f"{host}: a run failed")
    assert f"a run failed.\n\nBob Chen may not destroy {host}: it belongs to Alice Martin" in text_of(failed)

    expire(host, notifying_stack.clusters_dir)
    run_cull(notifying_stack)
    reminder = mail(mailbox, f"{host} expires soon")
    assert f"{host} expires at" in text_of(reminder) and "extend its expiration date" in text_of(reminder)

    destroy = runs.submit_destroy(host, person=ALICE)
    paused(destroy)
    runs.approve(host, person=ALICE)
    assert ended(destroy).state_type == "COMPLETED"
    destroyed = mail(mailbox, f"{host} was destroyed")
    assert "Its logs stay readable on its page" in text_of(destroyed)
    post(posts, f"{host} was destroyed")


def test_without_channels_in_the_settings_the_automations_and_blocks_go(notifying_stack: LiveStack) -> None:
    quiet = {key: value for key, value in notifying_stack.env.items()
             if key not in ("MCHUB_SMTP_URL", "MCHUB_PROJECT_NOTIFICATIONS")}
    done = subprocess.run([sys.executable, "-m", "mchub.cli", "deploy"], cwd=ROOT, env=quiet, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "notifications: none" in done.stdout
    with notifying_stack.client() as client:
        assert [a.name for a in client.read_automations() if a.name.startswith(notifications.AUTOMATION_PREFIX)] == []
        assert [b.name for b in client.read_block_documents_by_type("custom-webhook")] == []
        assert [b.name for b in client.read_block_documents_by_type("email-server-credentials")] == []
