"""Sending a notice (mchub.cluster.notices) through the channels `mchub deploy` set up as
Prefect blocks (mchub.orchestration.notifications). A channel that does not answer fails its
task, which Prefect retries a few times, each attempt in the run's log."""

from email.message import EmailMessage

from prefect import get_run_logger
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect_email import EmailServerCredentials

from mchub.cluster.notices import Notice
from mchub.orchestration.notifications import MAIL_BLOCK, webhook_block
from mchub.settings import get_settings
from tasks.uncached import uncached_task

RETRIES = 3
RETRY_DELAY_SECONDS = 20


@uncached_task(retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS)
def send_mail(notice: Notice, addresses: list[str]) -> None:
    message = EmailMessage()
    message["From"] = get_settings().mail_from
    message["To"] = ", ".join(addresses)
    message["Subject"] = notice.subject()
    message.set_content(notice.body())
    with EmailServerCredentials.load(MAIL_BLOCK).get_server() as server:
        server.send_message(message)
    get_run_logger().info("mailed %r to %s", notice.subject(), ", ".join(addresses))


@uncached_task(retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS)
def post_to_webhook(notice: Notice, project: str) -> None:
    CustomWebhookNotificationBlock.load(webhook_block(project)).notify(notice.body(), notice.subject())
    get_run_logger().info("posted %r to %s's webhook", notice.subject(), project)
