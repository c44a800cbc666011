"""Every terminal operation costs at most two DynamoDB round trips once caches are warm
(DESIGN.md budget), counted with botocore's event hooks on the one shared client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.ledger.domain import Actor, Source
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
IDM = "0123456789abcdef"


@pytest.fixture
def counted(api, terminal_service, ledger):
    ledger.open_card(idm=IDM, card_number="JW123456789012345", issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    calls: list[str] = []
    events = ledger.store.connection.client.meta.events  # the worker's client: unregister after
    events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="round-trips")
    yield register_demo(terminal_service, api), calls
    events.unregister("before-call.dynamodb", unique_id="round-trips")


def operations(n: int) -> list[tuple[str, str, dict]]:
    now = datetime.now(UTC).isoformat()
    return [
        ("store", "/balance", {"idm": IDM}),
        ("store", "/point-payments", {"request_id": f"p{n}", "idm": IDM, "amount": 10, "allow_shortfall": True}),
        ("store", "/point-payments/cancel", {"request_id": f"c{n}", "idm": IDM, "payment_request_id": f"p{n}"}),
        ("store", "/emoney-payments", {"request_id": f"e{n}", "idm": IDM, "amount": 500, "paid_at": now,
                                       "card_seq": n}),
        ("store", "/emoney-payments/cancel", {"request_id": f"x{n}", "idm": IDM, "card_seq": n}),
        ("charger", "/charges", {"request_id": f"g{n}", "idm": IDM, "amount": 1000, "kind": "cash",
                                 "charged_at": now, "card_seq": 1000 + n}),
        ("event", "/checkins", {"request_id": f"k{n}", "idm": IDM}),
    ]


def test_every_terminal_operation_takes_at_most_two_round_trips_warm(counted):
    tills, calls = counted
    for who, path, body in operations(1):  # warm: terminals, merchants, events, issuer cached
        tills[who].post(V1 + path, body)
    for who, path, body in operations(2):
        calls.clear()
        status, answer = tills[who].post(V1 + path, body)
        assert status in (200, 409), (path, answer)  # the second check-in is refused: once per event
        assert 1 <= len(calls) <= 2, (path, calls)



def test_under_reconciliation_records_and_cancels_still_take_two_round_trips(counted, ledger):
    """An awaiting record (the pending sums, the awaiting list) goes in the same one transaction."""
    from chalicelib.reconciliation.store import ReconciliationStore

    ledger.change_issuer("niimi", reconciliation=True)
    tills, calls = counted
    awaiting = ReconciliationStore().awaiting_records
    month = ledger.today("niimi").strftime("%Y-%m")
    for n in (1, 2):
        record, cancel = operations(n)[3:5]
        for (who, path, body), listed in ((record, 1), (cancel, 0)):
            calls.clear()
            status, answer = tills[who].post(V1 + path, body)
            assert status == 200, (path, answer)
            if n == 2:
                assert 1 <= len(calls) <= 2, (path, calls)
            assert len(list(awaiting("niimi", month))) == listed
