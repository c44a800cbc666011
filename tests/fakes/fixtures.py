"""Fixtures that put the in-memory stores under the services, for a test module about
rules rather than DynamoDB. A module opts in by binding them under the names
tests/conftest.py gives the moto-backed ones (a fixture is found by its name in the
module), e.g.

    from tests.fakes import fixtures as fakes

    unchecked_ledger = fakes.unchecked_ledger
    terminal_service = fakes.terminal_service
    mypage_service = fakes.mypage_service

tests/conftest.py's `ledger` (invariants checked at the end) and `api` then run on the
fakes; its `store` (the moto table) stays as it is for a test that wants DynamoDB. The
ledger is built without the reports' aggregates (the fake takes no other context's
writes); mail still goes through moto's SQS and SES (`outbox`), so `api` still needs
`aws`, but no table is created for the services.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.ledger.service import Ledger
from tests.fakes.ledger import FakeCardStore, with_test_issuers
from tests.fakes.mypage import FakeMyPageStore
from tests.fakes.terminals import FakeTerminalStore, NoRebates


@pytest.fixture
def unchecked_ledger(clock) -> Ledger:
    """The ledger on a FakeCardStore (`ledger.store`) with the test issuers."""
    return Ledger(with_test_issuers(FakeCardStore()), clock=clock)


@pytest.fixture
def terminal_service(ledger, clock):
    """Its directory and transaction reads on the fake; recording a transaction is not
    faked (see tests/fakes/terminals.py)."""
    from chalicelib.terminals.service import TerminalService

    clock.now = datetime.now(timezone.utc)  # signatures carry the real time
    return TerminalService(ledger, FakeTerminalStore(), clock=clock, rebates=NoRebates())


@pytest.fixture
def mypage_service(terminal_service, outbox):
    """MyPage on a FakeMyPageStore (`mypage_service.store`); its mail queued on moto's SQS."""
    import boto3

    from chalicelib.mail import QueuedMailer
    from chalicelib.mypage.service import MyPage

    mailer = QueuedMailer(outbox.queue_url, client=boto3.client("sqs", region_name="ap-northeast-1"))
    return MyPage(terminal_service.ledger, FakeMyPageStore(), mailer, b"test-secret",
                  merchants=lambda issuer: terminal_service.merchants(issuer))
