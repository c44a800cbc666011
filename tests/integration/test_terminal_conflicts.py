"""E-money payment and charge records, and their cancels, send their transaction again
when DynamoDB cancels it for a conflict with another one (TransactionConflict), as the
ledger does: bounded, after a random pause; only when every try lost does the terminal
get 503 (`busy`), with nothing written. moto never reports a conflict, so the answer is
put in front of the call (as in test_ledger_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.ledger.domain import Actor, Source
from chalicelib.terminals import store as terminal_store
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
IDM = "0123456789abcdef"


@pytest.fixture
def tills(api, terminal_service, ledger):
    ledger.open_card(idm=IDM, card_number="JW123456789012345", issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    return register_demo(terminal_service, api)


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """The pauses between tries, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(terminal_store, "sleep", slept.append)
    return slept


class Conflicts:
    """The next `n` TransactWriteItems are cancelled for a conflict; every call is counted."""

    def __init__(self, client) -> None:
        self.events = client.meta.events
        self.left = 0
        self.calls: list[str] = []

    def __call__(self, model, **_):
        self.calls.append(model.name)
        if model.name == "TransactWriteItems" and self.left:
            self.left -= 1
            parsed = {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}],
                "ResponseMetadata": {},
            }
            return AWSResponse("https://dynamodb.invalid/", 400, {}, None), parsed
        return None

    def next(self, n: int) -> Conflicts:
        self.left, self.calls[:] = n, []
        return self


@pytest.fixture
def conflicts(ledger):
    hook = Conflicts(ledger.store.connection.client)
    hook.events.register("before-call.dynamodb", hook, unique_id="terminal-conflicts")
    yield hook
    hook.events.unregister("before-call.dynamodb", unique_id="terminal-conflicts")


def table_items(ledger) -> list[dict]:
    return ledger.store.connection.client.scan(TableName=ledger.store.table.name)["Items"]


def record(kind: str, n: int) -> tuple[str, str, dict]:
    now = datetime.now(UTC).isoformat()
    if kind == "payment":
        return "store", "/emoney-payments", {"request_id": f"e{n}", "idm": IDM, "amount": 500, "paid_at": now,
                                             "card_seq": n}
    return "charger", "/charges", {"request_id": f"g{n}", "idm": IDM, "amount": 1000, "kind": "cash",
                                   "charged_at": now, "card_seq": n}


def month() -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")


@pytest.mark.parametrize("kind", ["payment", "charge"])
def test_a_record_whose_transaction_lost_a_race_is_sent_again(tills, conflicts, pauses, terminal_service, kind):
    who, path, body = record(kind, 1)
    tills[who].post(V1 + path, record(kind, 100)[2])  # warm: terminals, merchants, issuer cached
    conflicts.next(3)
    status, answer = tills[who].post(V1 + path, body)
    assert status == 200 and answer["duplicate"] is False, answer
    assert conflicts.calls.count("TransactWriteItems") == 4  # three lost, the fourth written
    assert len(pauses) == 3
    assert all(0 <= p <= terminal_store.CONFLICT_PAUSE * (i + 1) for i, p in enumerate(pauses))
    txn, _ = terminal_service.store.get_txn(IDM, 1)
    assert (txn.amount, txn.cancelled) == (int(body["amount"]), False)
    if kind == "payment":
        assert terminal_service.rebates.accrual("niimi", month(), IDM).yen == 2 * 500  # each record once
    assert tills[who].post(V1 + path, body)[1]["duplicate"] is True  # a resend finds it recorded


def test_a_cancel_whose_transaction_lost_a_race_is_sent_again(tills, conflicts, pauses, terminal_service):
    who, path, body = record("payment", 1)
    assert tills[who].post(V1 + path, body)[0] == 200
    conflicts.next(2)
    status, answer = tills[who].post(f"{V1}/emoney-payments/cancel", {"request_id": "x1", "idm": IDM, "card_seq": 1})
    assert status == 200 and answer["cancelled"] == 500, answer
    assert conflicts.calls.count("TransactWriteItems") == 3 and len(pauses) == 2
    assert terminal_service.store.get_txn(IDM, 1)[0].cancelled
    assert terminal_service.rebates.accrual("niimi", month(), IDM).yen == 0


def test_an_awaiting_record_under_reconciliation_is_sent_again(tills, conflicts, pauses, ledger, terminal_service):
    from chalicelib.reconciliation.store import ReconciliationStore

    ledger.change_issuer("niimi", reconciliation=True)
    who, path, body = record("payment", 1)
    conflicts.next(1)
    assert tills[who].post(V1 + path, body)[0] == 200
    assert conflicts.calls.count("TransactWriteItems") == 2
    assert len(list(ReconciliationStore().awaiting_records("niimi", month()))) == 1


@pytest.mark.parametrize("kind", ["payment", "charge"])
def test_when_every_try_lost_the_terminal_gets_busy_and_nothing_is_written(tills, conflicts, pauses, ledger, kind):
    who, path, body = record(kind, 1)
    before = table_items(ledger)
    conflicts.next(terminal_store.CONFLICT_ATTEMPTS)
    status, answer = tills[who].post(V1 + path, body)
    assert (status, answer["code"]) == (503, "busy"), answer
    assert conflicts.calls.count("TransactWriteItems") == terminal_store.CONFLICT_ATTEMPTS  # bounded
    assert len(pauses) == terminal_store.CONFLICT_ATTEMPTS - 1
    after = [item for item in table_items(ledger) if not item["pk"]["S"].startswith(("TERMINAL#", "MERCHANT"))]
    assert after == [item for item in before if not item["pk"]["S"].startswith(("TERMINAL#", "MERCHANT"))]
    status, answer = tills[who].post(V1 + path, body)  # the terminal sends it again: recorded once
    assert status == 200 and answer["duplicate"] is False, answer
