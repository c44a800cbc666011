"""The mail queue, locally: the queue and its dead-letter queue as infra/template.json
makes them (on moto's SQS), and what Lambda's event source does for the send-mail
function: take messages off the queue, hand them as SQS records to the very function
the deployed send-mail runs (chalicelib.mail.deliver), delete those sent and leave
the others to be offered again.

`make run` drains it in a background thread and again before the outbox is read; the
tests drain it when they read the outbox (tests/conftest.py), so mail a request queued
is there when a test or a person looks, by the same path as deployed."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from chalicelib.mail import Sender, deliver

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.json"
POLL_S = 1.0  # `make run`: how often the background thread looks (a read of the outbox drains at once)

log = logging.getLogger(__name__)


def queue_properties() -> dict:
    """infra/'s properties of the mail queue: the redrive policy and timings to copy."""
    resources = json.loads(TEMPLATE.read_text(encoding="utf-8"))["Resources"]
    return resources["MailQueue"]["Properties"]


def create_queues(sqs: Any, name: str) -> tuple[str, str]:
    """The mail queue `name` and its dead-letter queue: (queue URL, dead-letter URL)."""
    props = queue_properties()
    dead_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"]}
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(props["VisibilityTimeout"]),
        "RedrivePolicy": json.dumps(redrive),
    })["QueueUrl"]
    return url, dead_url


def max_receives() -> int:
    return int(queue_properties()["RedrivePolicy"]["maxReceiveCount"])


def lambda_record(message: dict) -> dict:
    """An SQS message as ReceiveMessage gives it, as Lambda's event source passes it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
    }


class QueueDrain:
    """Lambda's SQS event source for the send-mail function, in this process."""

    def __init__(self, sqs: Any, queue_url: str, mailer: Sender, batch_size: int = 10) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.mailer = mailer
        self.batch_size = batch_size
        # One drain at a time: a reader of the outbox waits for a batch in flight.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> int:
        """Deliver every message visible now; how many were sent."""
        sent = 0
        with self._lock:
            while True:
                got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                               AttributeNames=["ApproximateReceiveCount"])
                messages = got.get("Messages", [])
                if not messages:
                    return sent
                failed = set(deliver([lambda_record(m) for m in messages], self.mailer))
                done = [m for m in messages if m["MessageId"] not in failed]
                if done:
                    self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
                sent += len(done)

    def start(self) -> QueueDrain:
        self._thread = threading.Thread(target=self._run, name="mail-queue", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.drain()
            except Exception as exc:  # noqa: BLE001  (keep polling: a hiccup, or moto stopping)
                if self._stop.is_set():
                    return
                log.warning("mail queue not drained", extra={"error": type(exc).__name__})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
