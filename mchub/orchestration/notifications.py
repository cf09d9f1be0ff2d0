"""Prefect's side of the notifications (mchub.cluster.notices): the blocks that hold the mail
server and the projects' webhooks, and one automation per kind of notice.

    a cluster's event ──▶ automation "mchub: notify <kind>" ──▶ run of notify-cluster-event
                                                                  ├▶ mail (block mchub-mail)
                                                                  └▶ webhook (block mchub-webhook-<project>)

The events are the flows' own (`mchub.cluster.awaiting-approval`, `.expiry-reminder`) and
Prefect's (a build run completed: the cluster is ready; a build or destroy run failed or
crashed, whoever ended it: the run, the prober, the server's approval timeout; a destroy run
completed). `mchub deploy` writes the blocks from the settings (MCHUB_SMTP_URL,
MCHUB_PROJECT_NOTIFICATIONS) and the automations, at every `mchub up`: the settings are the
source; a block changed in Prefect's dashboard lasts until the next start. With no channel set,
there is no automation, so no run is started for nothing.
"""

from urllib.parse import unquote, urlsplit

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import SyncPrefectClient
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from prefect_email import EmailServerCredentials

from mchub.cluster.notices import NoticeKind, cluster_event
from mchub.orchestration.audit import cluster_resource
from mchub.settings import Settings
from mchub.status import BUILD_FLOW, DESTROY_FLOW, HOSTNAME_LABEL

MAIL_BLOCK = "mchub-mail"
NOTIFY_DEPLOYMENT = "notify-cluster-event/notify"
AUTOMATION_PREFIX = "mchub: notify "

_SMTP_TYPES = {"smtps": "SSL", "smtp+starttls": "STARTTLS", "smtp": "INSECURE"}


def webhook_block(project: str) -> str:
    return f"mchub-webhook-{project}"


def mail_server(smtp_url: str) -> EmailServerCredentials:
    """The block for the mail server at `smtp_url` (settings.smtp_url)."""
    url = urlsplit(smtp_url)
    return EmailServerCredentials(
        smtp_server=url.hostname or "",
        smtp_type=_SMTP_TYPES[url.scheme],
        smtp_port=url.port,
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password or ""),
    )


def project_webhook(url: str) -> CustomWebhookNotificationBlock:
    """A Slack-compatible incoming webhook: POST {"text": ...}. The URL is one of the block's
    secrets (a webhook URL is its own credential), so Prefect's dashboard does not show it."""
    return CustomWebhookNotificationBlock(
        name="MC Hub",
        url="{{webhook_url}}",
        json_data={"text": "{{body}}"},
        secrets={"webhook_url": url},
    )


def _flow_run_trigger(flows: list[str], states: list[str]) -> EventTrigger:
    return EventTrigger(
        expect={f"prefect.flow-run.{state}" for state in states},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": flows},
        posture=Posture.Reactive,
        threshold=1,
    )


def _cluster_event_trigger(kind: NoticeKind) -> EventTrigger:
    return EventTrigger(
        expect={cluster_event(kind)},
        match={"prefect.resource.id": cluster_resource("*")},
        posture=Posture.Reactive,
        threshold=1,
    )


_FROM_FLOW_RUN = {"hostname": f"{{{{ flow_run.labels['{HOSTNAME_LABEL}'] }}}}", "detail": "{{ flow_run.state.message }}"}
_FROM_CLUSTER_EVENT = {"hostname": "{{ event.resource['prefect.resource.name'] }}", "detail": "{{ event.payload.message }}"}

# What starts each notice, and where its notify run reads the cluster and what to say.
NOTICE_TRIGGERS: dict[NoticeKind, tuple[EventTrigger, dict[str, str]]] = {
    "awaiting-approval": (_cluster_event_trigger("awaiting-approval"), _FROM_CLUSTER_EVENT),
    "ready": (_flow_run_trigger([BUILD_FLOW], ["Completed"]), _FROM_FLOW_RUN),
    "failed": (_flow_run_trigger([BUILD_FLOW, DESTROY_FLOW], ["Failed", "Crashed"]), _FROM_FLOW_RUN),
    "expiry-reminder": (_cluster_event_trigger("expiry-reminder"), _FROM_CLUSTER_EVENT),
    "destroyed": (_flow_run_trigger([DESTROY_FLOW], ["Completed"]), _FROM_FLOW_RUN),
}


def apply_notifications(settings: Settings, client: SyncPrefectClient) -> list[str]:
    """Write the blocks and the automations the settings call for, remove those they no longer
    do, and say which channels are set up."""
    configured = []
    if settings.smtp_url is not None:
        mail_server(settings.smtp_url.get_secret_value()).save(MAIL_BLOCK, overwrite=True)
        configured.append(f"mail through {urlsplit(settings.smtp_url.get_secret_value()).hostname}")
    else:
        try:
            client.delete_block_document(client.read_block_document_by_name(MAIL_BLOCK, "email-server-credentials").id)
        except ObjectNotFound:
            pass
    webhooks = {
        webhook_block(project): channels.webhook_url.get_secret_value()
        for project, channels in settings.project_notifications.items() if channels.webhook_url is not None
    }
    for name, url in webhooks.items():
        project_webhook(url).save(name, overwrite=True)
        configured.append(f"webhook {name}")
    for block in client.read_block_documents_by_type("custom-webhook", include_secrets=False):
        if block.name and block.name.startswith(webhook_block("")) and block.name not in webhooks:
            client.delete_block_document(block.id)

    for automation in client.read_automations():
        if automation.name.startswith(AUTOMATION_PREFIX):
            client.delete_automation(automation.id)
    if configured:
        deployment = client.read_deployment_by_name(NOTIFY_DEPLOYMENT)
        for kind, (trigger, parameters) in NOTICE_TRIGGERS.items():
            client.create_automation(AutomationCore(
                name=f"{AUTOMATION_PREFIX}{kind}",
                description=f"Tell a cluster's owner and project: {kind.replace('-', ' ')} (mchub.cluster.notices).",
                trigger=trigger,
                actions=[RunDeployment(
                    source="selected", deployment_id=deployment.id, parameters={"kind": kind, **parameters}
                )],
            ))
    return configured
