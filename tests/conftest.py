"""Shared fixtures: moto for AWS (never the network), a settable clock, and a ledger
whose invariants are checked after every test that uses it."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from localdev.fake_aws import use_fake_aws

use_fake_aws(in_process=True)  # before anything builds an AWS client
# Plain local keys: chalice's test Client puts the stage's CHIIKI_SECRET_ID in the
# environment, and a test must not depend on whether its settings were read before that.
os.environ.setdefault("CHIIKI_SECRET_KEY", "tests-only-not-a-secret")
# The table the models are bound to: chalicelib/table.py reads it from the settings once.
os.environ["CHIIKI_TABLE"] = "test-table"

from moto import mock_aws  # noqa: E402

from chalicelib import observability  # noqa: E402
from chalicelib.ledger.domain import Issuer  # noqa: E402
from chalicelib.ledger.service import Ledger  # noqa: E402
from chalicelib.ledger.store import CardStore  # noqa: E402
from chalicelib.reports.store import ledger_aggregates  # noqa: E402
from chalicelib.table import Table  # noqa: E402
from localdev.moto_serial import serialize_dynamodb  # noqa: E402
from tests.ledger_checks import assert_ledger_sound  # noqa: E402

JST = ZoneInfo("Asia/Tokyo")
TABLE = os.environ["CHIIKI_TABLE"]


class Clock:
    """A clock the test moves by hand. Set it to a JST business date or an instant."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: date | datetime) -> None:
        if not isinstance(when, datetime):
            when = datetime.combine(when, time(10, 0), JST)
        self.now = when.astimezone(timezone.utc)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    c = Clock(datetime(2022, 10, 24, 1, 0, tzinfo=timezone.utc))
    return c


class WorkerAws:
    """One moto mock, one created table and one set of botocore clients per xdist worker
    (building them is most of a test's setup). Each test still starts from nothing: its
    `aws` fixture resets every moto backend with moto's own reset and puts the worker's
    table back with no items, so no test sees another's items, mail, queues or files."""

    REGION = "ap-northeast-1"

    def __init__(self) -> None:
        from moto.core.config import default_user_config

        serialize_dynamodb()
        # boto3's default session (its endpoint data loaded once) survives between tests:
        # every test runs with the same fake credentials (localdev.fake_aws).
        core = {**default_user_config["core"], "reset_boto3_session": False}
        self.mock = mock_aws(config={"core": core})
        self.table: Table | None = None
        self._moto_table = None
        self._clients: dict[str, object] = {}

    def start(self) -> None:
        """Mock AWS for one test, every backend empty but for the table, itself empty."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        self.mock.start()  # moto's reset: every backend, and its registry of responses
        if self._moto_table is not None:
            self._moto_table.items.clear()
            dynamodb_backends[DEFAULT_ACCOUNT_ID][self.REGION].tables[TABLE] = self._moto_table

    def stop(self) -> None:
        self.mock.stop(remove_data=False)  # the next test's start resets it

    def bound_table(self) -> Table:
        """The worker's table (the one the models are bound to), created on first use."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        if self.table is None:
            self.table = Table(TABLE, self.REGION)
            self.table.create()
            self._moto_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.REGION].tables[TABLE]
        return self.table

    def items(self) -> dict:
        """A copy of every item of the worker's table (moto's own objects)."""
        import copy

        return copy.deepcopy(dict(self._moto_table.items))

    def put_items(self, items: dict) -> None:
        """Put back the items `items()` copied, as they were (a copy of them: the table's
        own stay the test's)."""
        import copy

        self._moto_table.items.update(copy.deepcopy(items))

    def client(self, service: str):
        """A botocore client for `service`, built once per worker (moto answers it in every test)."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, region_name=self.REGION)
        return self._clients[service]


@pytest.fixture(scope="session")
def worker_aws() -> WorkerAws:
    return WorkerAws()


@pytest.fixture
def aws(worker_aws):
    worker_aws.start()
    try:
        yield worker_aws
    finally:
        worker_aws.stop()


@pytest.fixture
def store(aws) -> CardStore:
    s = CardStore(aws.bound_table())
    s.put_issuer(Issuer("niimi"))
    s.put_issuer(Issuer("okayama", point_name="おかやまポイント"))
    return s


@pytest.fixture
def unchecked_ledger(store, clock) -> Ledger:
    return Ledger(store, clock=clock, extra_writes=ledger_aggregates)  # the reports' aggregates, as services.py


@pytest.fixture
def ledger(unchecked_ledger) -> Ledger:
    """A ledger whose every card must be sound when the test ends."""
    yield unchecked_ledger
    assert_ledger_sound(unchecked_ledger)


@pytest.fixture
def terminal_service(ledger, store, clock):
    from chalicelib.rebates.service import Rebates
    from chalicelib.terminals.service import TerminalService
    from chalicelib.terminals.store import TerminalStore

    clock.now = datetime.now(timezone.utc)  # signatures carry the real time
    return TerminalService(ledger, TerminalStore(store.table), clock=clock, rebates=Rebates.on_table(store.table))


SENDER = "noreply@points.example.jp"


class Outbox:
    """The mail moto's SES has accepted, newest last. MyPage's requests only queue their
    mail (moto's SQS): reading the outbox first drains the queue through the send-mail
    function's code, as Lambda's event source would (localdev/mail_queue.py)."""

    def __init__(self, drain=None, dead_letter_url: str | None = None) -> None:
        self.drain = drain
        self.queue_url = drain.queue_url if drain is not None else None
        self.dead_letter_url = dead_letter_url

    def sent(self) -> list:
        """What SES has accepted so far, without draining the queue."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID]["ap-northeast-1"].sent_messages)

    def messages(self) -> list:
        if self.drain is not None:
            self.drain.drain()
        return self.sent()

    def last_to(self, address: str):
        found = [m for m in self.messages() if address in m.destinations["ToAddresses"]]
        return found[-1] if found else None

    def code_for(self, address: str) -> str:
        import re

        message = self.last_to(address)
        assert message is not None, "no mail to that address"
        return re.search(r"確認コード: (\d{4})", message.body).group(1)


@pytest.fixture
def outbox(aws) -> Outbox:
    from chalicelib.mail import Mailer
    from chalicelib.settings import Settings
    from localdev.mail_queue import QueueDrain, create_queues

    ses = aws.client("ses")
    ses.verify_email_identity(EmailAddress=SENDER)
    sqs = aws.client("sqs")
    queue_url, dead_letter_url = create_queues(sqs, Settings.mail_queue)
    return Outbox(QueueDrain(sqs, queue_url, Mailer(sender=SENDER, client=ses)), dead_letter_url)


@pytest.fixture
def mypage_service(terminal_service, outbox, aws):
    from chalicelib.mail import QueuedMailer
    from chalicelib.mypage.service import MyPage
    from chalicelib.mypage.store import MyPageStore

    ledger = terminal_service.ledger
    mailer = QueuedMailer(outbox.queue_url, client=aws.client("sqs"))
    return MyPage(ledger, MyPageStore(ledger.store.table), mailer, b"test-secret",
                  merchants=terminal_service.directory)  # as services.py


@pytest.fixture
def api(terminal_service, mypage_service, outbox, monkeypatch):
    """The Chalice app in-process, its services bound to the moto table and the test clock."""
    from chalice.test import Client

    from app import app
    from chalicelib import services

    monkeypatch.setattr(services, "ledger", lambda: terminal_service.ledger)
    monkeypatch.setattr(services, "terminals", lambda: terminal_service)
    monkeypatch.setattr(services, "mypage", lambda: mypage_service)
    monkeypatch.setattr(services, "mailer", lambda: outbox.drain.mailer)  # the send-mail function's SES
    with Client(app) as client:
        yield client


LIBRARY_PASSWORD_HASHER = None  # argon2's own PasswordHasher, once cheap_password_hashes has stood in for it


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes():
    """argon2id at its cheapest cost in this process (MyPage hashes with the library's
    defaults, about 0.2 s a hash: most of a MyPage test's time). Hashing and verifying
    work the same, only faster; `make run`, the browser and e2e tests, in their own
    processes, keep the defaults."""
    import argon2

    global LIBRARY_PASSWORD_HASHER
    LIBRARY_PASSWORD_HASHER = argon2.PasswordHasher  # what MyPage builds outside the tests

    class CheapPasswordHasher(argon2.PasswordHasher):
        def __init__(self, time_cost: int = 1, memory_cost: int = 8, parallelism: int = 1, **kwargs) -> None:
            super().__init__(time_cost, memory_cost, parallelism, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argon2, "PasswordHasher", CheapPasswordHasher)
        yield


LOG_LEVEL = observability.logger().log_level  # the app logger's level, before any test or benchmark


@pytest.fixture(autouse=True)
def logs_to_the_current_stdout():
    """The app's JSON log handler writes to the stdout it found when first built; a test
    that built it under `capsys` would leave it writing to a closed stream for every later
    test (pytest swaps stdout per test; Lambda never does). Its level is put back too: a
    benchmark module loaded in-process (tests/test_bench.py) quiets it for its own runs."""
    log = observability.logger()
    handler = log.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.stream = sys.stdout
    yield
    log.setLevel(LOG_LEVEL)  # a benchmark loaded in-process quiets the logger for its own runs


@pytest.fixture
def log_lines():
    """Every line the Powertools logger writes during the test, parsed."""
    buffer = io.StringIO()
    log = observability.logger()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(log.registered_formatter)
    log.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    finally:
        log.removeHandler(handler)


@pytest.fixture
def dynamodb_key_limits(monkeypatch):
    """DynamoDB refuses a key over its size limit (2,048 bytes hash, 1,024 range) on a read
    with a ValidationException; moto checks only writes. This makes moto check reads too."""
    from moto.dynamodb.exceptions import HashKeyTooLong, RangeKeyTooLong
    from moto.dynamodb.limits import HASH_KEY_MAX_LENGTH, RANGE_KEY_MAX_LENGTH
    from moto.dynamodb.models.table import Table

    def checked(original):
        def call(self, hash_key, *args, **kwargs):
            range_key = args[0] if args else kwargs.get("range_key")
            if hash_key is not None and hash_key.size() > HASH_KEY_MAX_LENGTH:
                raise HashKeyTooLong
            if getattr(range_key, "size", None) and range_key.size() > RANGE_KEY_MAX_LENGTH:
                raise RangeKeyTooLong
            return original(self, hash_key, *args, **kwargs)

        return call

    monkeypatch.setattr(Table, "get_item", checked(Table.get_item))
    monkeypatch.setattr(Table, "query", checked(Table.query))
