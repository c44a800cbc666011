"""The ledger service on moto's DynamoDB, where DynamoDB itself is the point:
concurrency, lost responses, transactions losing a race, tampering with the table. The
ledger's rules (§11 end to end, exactly-once requests, tenancy, cancels, void,
transfer, history, claims) run on the in-memory store in tests/unit/test_ledger_rules.py.
Every test using the `ledger` fixture ends with the invariants checked."""

from __future__ import annotations

import threading
from datetime import date

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.ledger import errors
from chalicelib.ledger.domain import Actor, Source
from chalicelib.ledger.errors import LedgerError

IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
OTHER_IDM, OTHER_NUMBER = "fedcba9876543210", "JW999999999999999"
OPERATOR = Actor("operator", "arn:aws:iam::123456789012:user/ops")
JOB = Actor("job", "rebate")
TILL = Actor("terminal", "T-1", merchant="M-1")
OTHER_SHOP = Actor("terminal", "T-9", merchant="M-9")


@pytest.fixture
def card(unchecked_ledger, clock):
    ledger = unchecked_ledger
    clock.set(date(2022, 10, 24))
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi", birth_date="1950-01-02")
    ledger.grant(IDM, 5000, request_id="import:initial", actor=OPERATOR, source=Source.INITIAL)
    return IDM


def seq(ledger, idm=IDM):
    return ledger.card(idm).seq


def test_twenty_concurrent_spends_of_1000_from_5000_let_exactly_five_through(ledger, card):
    outcomes: list[object] = []
    start = threading.Barrier(20)

    def pay(i: int) -> None:
        start.wait()
        try:
            outcomes.append(ledger.spend(card, 1000, request_id=f"pay-{i}", actor=TILL))
        except LedgerError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, (errors.InsufficientPoints, errors.LedgerBusy))]
    assert len(succeeded) == 5 and len(refused) == 15
    assert sorted(o["balance"] for o in succeeded) == [0, 1000, 2000, 3000, 4000]
    assert ledger.balance(card).balance == 0
    assert ledger.verify(card).ok and seq(ledger) == 6


class LostResponse(Exception):
    pass


def test_a_lost_response_then_a_retry_has_one_effect(ledger, card):
    events = ledger.store.connection.client.meta.events
    lost = []

    def drop_once(http_response, parsed, model, **_):
        if model.name == "TransactWriteItems" and not lost:
            lost.append(parsed)
            raise LostResponse("the connection dropped after DynamoDB committed")

    events.register("after-call.dynamodb.TransactWriteItems", drop_once)
    try:
        with pytest.raises(LostResponse):
            ledger.spend(card, 700, request_id="pay-lost", actor=TILL)
    finally:
        events.unregister("after-call.dynamodb.TransactWriteItems", drop_once)
    assert lost, "the write went through before the response was lost"
    retried = ledger.spend(card, 700, request_id="pay-lost", actor=TILL)
    assert (retried["spent"], retried["balance"]) == (700, 4300)
    assert ledger.balance(card).balance == 4300 and seq(ledger) == 2


def test_a_tampered_entry_is_reported_with_its_card_and_entry(unchecked_ledger, card):
    ledger = unchecked_ledger
    for i in range(3):
        ledger.spend(card, 100, request_id=f"pay-{i}", actor=TILL)
    assert ledger.verify(card).ok
    table = boto3.resource("dynamodb").Table("test-table")
    key = {"pk": f"CARD#{card}", "sk": "ENTRY#0000000003"}
    body = table.get_item(Key=key)["Item"]["body"]
    table.update_item(Key=key, UpdateExpression="SET body = :b",
                      ExpressionAttributeValues={":b": body.replace('"spent":100', '"spent":10')})
    report = ledger.verify(card)
    assert (report.ok, report.idm, report.bad_seq) == (False, card, 3)
    assert "hash" in report.problem


def test_a_deleted_entry_is_reported(unchecked_ledger, card):
    ledger = unchecked_ledger
    ledger.spend(card, 100, request_id="pay-1", actor=TILL)
    ledger.spend(card, 100, request_id="pay-2", actor=TILL)
    table = boto3.resource("dynamodb").Table("test-table")
    table.delete_item(Key={"pk": f"CARD#{card}", "sk": "ENTRY#0000000002"})
    report = ledger.verify(card)
    assert (report.ok, report.bad_seq) == (False, 2)
    assert "missing" in report.problem


def test_a_transaction_that_loses_a_race_in_dynamodb_is_tried_again(ledger, card):
    """DynamoDB cancels a transaction with TransactionConflict when another one is changing
    the same item; moto never does, so the answer is put in front of the call here."""
    events = ledger.store.connection.client.meta.events
    raced = []

    def conflict_once(model, **_):
        if model.name == "TransactWriteItems" and not raced:
            raced.append(True)
            parsed = {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}, {"Code": "None"}],
                "ResponseMetadata": {},
            }
            return AWSResponse("https://dynamodb.invalid/", 400, {}, None), parsed
        return None

    events.register("before-call.dynamodb.TransactWriteItems", conflict_once)
    try:
        paid = ledger.spend(card, 700, request_id="pay-raced", actor=TILL)
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", conflict_once)
    assert raced and paid["balance"] == 4300
    assert ledger.balance(card).balance == 4300 and seq(ledger) == 2

