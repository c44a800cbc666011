"""E-mail through SES. The one place that sends mail; callers pass plain text.

MyPage's mail (codes, notes, notices) does not reach SES while the resident waits: its
`QueuedMailer` puts one message on the mail queue (SQS) whatever the address, so a
registered address and an unknown one cost the same work and the same time. The
send-mail function (app.py, on that queue) hands each message to `Mailer` through
`deliver`; a message SES does not take is reported back, SQS offers it again, and after
the redrive policy's receives it rests in the dead-letter queue (infra/template.json)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .observability import logger


class Sender(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass
class Mailer:
    sender: str
    client: Any = None  # a botocore SES client (aws_clients); built on first use when None
    region: str = "ap-northeast-1"
    endpoint: str | None = None

    def send(self, to: str, subject: str, body: str) -> None:
        if self.client is None:
            from .aws_clients import client

            self.client = client("ses", region=self.region, endpoint=self.endpoint)
        self.client.send_email(
            Source=self.sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
            },
        )


def queued_mail(to: str, subject: str, body: str) -> str:
    """A queue message's body: the mail, as JSON."""
    return json.dumps({"to": to, "subject": subject, "body": body}, ensure_ascii=False)


@dataclass
class QueuedMailer:
    """`Mailer`'s interface, but one SQS SendMessage per mail: the request never waits for
    SES, and the call is the same whichever mail it is."""

    queue_url: str | None  # None: looked up by `queue_name` on first use (`make run`)
    queue_name: str = ""
    client: Any = None  # a botocore SQS client (aws_clients); built on first use when None
    region: str = "ap-northeast-1"
    endpoint: str | None = None

    def send(self, to: str, subject: str, body: str) -> None:
        client = self._client()
        if self.queue_url is None:
            self.queue_url = client.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        client.send_message(QueueUrl=self.queue_url, MessageBody=queued_mail(to, subject, body))

    def _client(self) -> Any:
        if self.client is None:
            from .aws_clients import client

            self.client = client("sqs", region=self.region, endpoint=self.endpoint)
        return self.client


def deliver(records: Iterable[dict], mailer: Sender) -> list[str]:
    """Send each queued mail (SQS records, as Lambda passes them); the message ids of those
    not sent, for SQS to offer again (a partial batch failure). One failure does not stop
    the rest, and a sent mail is not reported, so it is not sent twice."""
    failed = []
    for record in records:
        try:
            mail = json.loads(record["body"])
            mailer.send(mail["to"], mail["subject"], mail["body"])
        except Exception as exc:  # noqa: BLE001  (any failure: SQS retries it, then the dead-letter queue)
            failed.append(record["messageId"])
            # The error's text can hold the address: log its type and the message id only.
            receives = record.get("attributes", {}).get("ApproximateReceiveCount")
            logger().warning("mail not sent", extra={"message_id": record["messageId"], "receives": receives,
                                                     "error": type(exc).__name__})
    return failed
