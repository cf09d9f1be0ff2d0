"""notify-cluster-event: tell a cluster's owner and project what happened to it.

Started by Prefect's automations (mchub.orchestration.notifications), one run per event: a
plan waits for approval, the cluster is ready, a run failed, its expiration nears, it was
destroyed. Whom to tell comes from the cluster's own records (its owner) and the settings (its
project's channels), never from the event: a run started with made-up parameters can only
tell a real cluster's people about it.
"""

from prefect import flow, get_run_logger

from mchub.cluster.notices import Notice, NoticeKind, recipients
from mchub.cluster import shared_store
from mchub.cluster.workspace import ownership_of
from mchub.orchestration.identity import pages_url
from mchub.settings import get_settings
from tasks.notify_steps import post_to_webhook, send_mail


@flow(name="notify-cluster-event", persist_result=False)
def notify_cluster_event(hostname: str, kind: NoticeKind, detail: str = "") -> None:
    settings = get_settings()
    notice = Notice(
        hostname=hostname, kind=kind, detail=detail, page_url=f"{pages_url(settings)}/cluster?hostname={hostname}"
    )
    shared_store.pull()  # the owner of a cluster made on another machine
    to = recipients(ownership_of(settings.clusters_dir, hostname), settings.project_notifications)
    if to.emails and settings.smtp_url is not None:
        send_mail(notice, to.emails)
    if to.webhook_project is not None:
        post_to_webhook(notice, to.webhook_project)
    if not to:
        get_run_logger().info("%s records no owner nor project channel: nobody to tell %r", hostname, notice.subject())
