"""MyPage's mail leaves the request path through SQS (issue 12, item 4: timing must not
tell who is registered). A request that mails does the same AWS work for a registered
and an unknown address, counted with botocore's event hooks: one SendMessage, no SES.
The send-mail function (app.py) hands the queue's messages to SES; one that fails is
reported back for SQS to offer again, and after the redrive policy's receives it rests in
the dead-letter queue, which has an alarm (test_stack_template.py)."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from localdev.mail_queue import lambda_record, max_receives
from tests.conftest import SENDER
from tests.integration.test_mypage_api import EMAIL, Browser, cards, sign_up  # noqa: F401 (cards: a fixture)

UNKNOWN = "someone@example.jp"
REGION = "ap-northeast-1"


@pytest.fixture
def aws_calls(api, cards, outbox, mypage_service):  # noqa: F811
    """Every AWS call the MyPage service makes, as "service.Operation": its table's client
    and its mailer's client. EMAIL is registered first, so everything is warm."""
    sign_up(api, outbox)
    calls: list[str] = []

    def count(model, **_):
        calls.append(f"{model.service_model.service_name}.{model.name}")

    clients = [mypage_service.store.connection.client, mypage_service.mailer.client]
    clients = list({id(c): c for c in clients}.values())  # the worker's clients: unregister after
    for client in clients:
        client.meta.events.register("before-call.*.*", count, unique_id="aws-calls")
    yield calls
    for client in clients:
        client.meta.events.unregister("before-call.*.*", unique_id="aws-calls")


@pytest.mark.parametrize("path", ["/signup/start", "/password-reset/start"])
def test_a_registered_and_an_unknown_address_cost_the_same_aws_calls(api, aws_calls, path):
    made = {}
    for email in (EMAIL, UNKNOWN):
        aws_calls.clear()
        assert Browser(api).call("POST", path, {"email": email}) == (202, {"status": "sent"})
        made[email] = list(aws_calls)
    assert made[EMAIL] == made[UNKNOWN], made
    # The mail is only queued while the resident waits: one SendMessage, SES not called.
    assert made[EMAIL].count("sqs.SendMessage") == 1, made
    assert not [c for c in made[EMAIL] if c.startswith("ses.")], made


def received(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name=REGION)
    out = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
    return out.get("Messages", [])


def invoke_send_mail(messages: list[dict]) -> dict:
    """app.py's send-mail function, given the messages as Lambda's SQS event source would."""
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        return client.lambda_.invoke("send-mail", {"Records": [lambda_record(m) for m in messages]}).payload


def test_the_send_mail_function_delivers_what_the_requests_queued(api, cards, outbox):  # noqa: F811
    sign_up(api, outbox)
    for email in (EMAIL, UNKNOWN):
        Browser(api).call("POST", "/signup/start", {"email": email})
        Browser(api).call("POST", "/password-reset/start", {"email": email})
    before = len(outbox.sent())
    messages = received(outbox.queue_url)
    assert len(messages) == 4  # queued, none sent yet
    assert len(outbox.sent()) == before

    assert invoke_send_mail(messages) == {"batchItemFailures": []}
    mails = {(m.destinations["ToAddresses"][0], m.subject): m.body for m in outbox.sent()[before:]}
    assert len(mails) == 4
    assert "登録済み" in mails[(EMAIL, "にーみんポイント マイページ登録について")]
    assert "確認コード" in mails[(UNKNOWN, "にーみんポイント マイページ 確認コード")]
    assert "確認コード" in mails[(EMAIL, "にーみんポイント パスワード再設定コード")]
    not_registered = mails[(UNKNOWN, "にーみんポイント パスワード再設定について")]
    assert "登録されていません" in not_registered and "確認コード" not in not_registered
    assert received(outbox.queue_url) == []  # what was sent is not offered again


def test_a_mail_ses_refuses_is_offered_again_then_rests_in_the_dead_letter_queue(
    api, cards, outbox, caplog  # noqa: F811
):
    sign_up(api, outbox)
    Browser(api).call("POST", "/signup/start", {"email": UNKNOWN})
    Browser(api).call("POST", "/password-reset/start", {"email": EMAIL})
    # SES stops taking mail from the sender (say, its identity lost verification).
    boto3.client("ses", region_name=REGION).delete_identity(Identity=SENDER)
    boto3.client("sqs", region_name=REGION).set_queue_attributes(
        QueueUrl=outbox.queue_url, Attributes={"VisibilityTimeout": "0"})  # offered again at once
    caplog.set_level(logging.DEBUG)

    for attempt in range(max_receives()):
        messages = received(outbox.queue_url)
        assert len(messages) == 2, attempt
        failures = invoke_send_mail(messages)["batchItemFailures"]
        assert sorted(f["itemIdentifier"] for f in failures) == sorted(m["MessageId"] for m in messages)
    assert received(outbox.queue_url) == []  # past the redrive policy's receives
    assert len(received(outbox.dead_letter_url)) == 2

    logs = "\n".join(r.getMessage() + " " + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "mail not sent" in logs
    for personal in (EMAIL, UNKNOWN, "hanako", "someone"):
        assert personal not in logs, personal


def test_one_failure_in_a_batch_does_not_resend_or_stop_the_others():
    from chalicelib.mail import deliver, queued_mail

    class Refusing:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, to: str, subject: str, body: str) -> None:
            if to == "bounce@example.jp":
                raise RuntimeError("refused")
            self.sent.append(to)

    records = [
        {"messageId": "a", "body": queued_mail("a@example.jp", "件名", "本文")},
        {"messageId": "b", "body": queued_mail("bounce@example.jp", "件名", "本文")},
        {"messageId": "c", "body": "not a queued mail"},
        {"messageId": "d", "body": queued_mail("d@example.jp", "件名", "本文")},
    ]
    mailer = Refusing()
    assert deliver(records, mailer) == ["b", "c"]
    assert mailer.sent == ["a@example.jp", "d@example.jp"]


def test_a_reset_code_reaches_the_outbox_only_through_the_queue(api, cards, outbox):  # noqa: F811
    sign_up(api, outbox)
    before = len(outbox.sent())
    assert Browser(api).call("POST", "/password-reset/start", {"email": EMAIL})[0] == 202
    assert len(outbox.sent()) == before  # the request queued it; SES has nothing yet
    assert len(outbox.messages()) == before + 1  # drained through the send-mail code
    assert "確認コード" in outbox.last_to(EMAIL).body
