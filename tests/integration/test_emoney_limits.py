"""No minting through e-money records (issue 12 item 1, §6.2, §7): one record is at most
20,000 yen; an issuer's daily limits cap what one terminal and one card may have
recorded per JST day, inside the record's own transaction; a refusal writes nothing
(not even the nonce), answers a 4xx with its own code and is counted for the alarm."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from chalicelib.ledger.domain import Actor, Source
from chalicelib.terminals.domain import Accrual
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def tills(api, terminal_service, ledger):
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    return register_demo(terminal_service, api)


def table_items(ledger) -> list[dict]:
    return ledger.store.connection.client.scan(TableName=ledger.store.table.name)["Items"]


def payment(n: int, amount: int, idm: str = IDM, at: datetime | None = None) -> dict:
    return {"request_id": f"e{n}", "idm": idm, "amount": amount,
            "paid_at": (at or datetime.now(UTC)).isoformat(), "card_seq": n}


def charge(n: int, amount: int, idm: str = IDM) -> dict:
    return {"request_id": f"g{n}", "idm": idm, "amount": amount, "kind": "cash",
            "charged_at": datetime.now(UTC).isoformat(), "card_seq": 1000 + n}


# -- one record is at most 20,000 yen -----------------------------------------------------


@pytest.mark.parametrize("amount", [20_001, 10_000_000])
def test_an_emoney_payment_over_20000_yen_is_refused_and_nothing_is_written(tills, terminal_service, ledger, amount):
    before = table_items(ledger)
    status, body = tills["store"].post(f"{V1}/emoney-payments", payment(1, amount))
    assert (status, body["code"]) == (400, "amount_over_limit")
    assert "20000" in body["message"]
    assert table_items(ledger) == before  # no record, no accrual, not even the nonce
    assert terminal_service.store.get_txn(IDM, 1) is None


def test_a_charge_over_20000_yen_is_refused_too(tills, terminal_service, ledger):
    before = table_items(ledger)
    status, body = tills["charger"].post(f"{V1}/charges", charge(1, 20_001))
    assert (status, body["code"]) == (400, "amount_over_limit")
    assert table_items(ledger) == before


def test_exactly_20000_yen_is_recorded(tills, terminal_service):
    assert tills["store"].post(f"{V1}/emoney-payments", payment(1, 20_000))[0] == 200
    assert tills["charger"].post(f"{V1}/charges", charge(1, 20_000))[0] == 200
    month = datetime.now(UTC).astimezone(JST).strftime("%Y-%m")
    assert terminal_service.store.accrual("niimi", month, IDM) == Accrual(IDM, month, 20_000, 20_000 * 100, 1)


def test_the_service_refuses_an_amount_over_the_cap_whatever_the_caller(tills, terminal_service):
    """The schema refuses it at the route; the service holds the rule too (jobs, tools)."""
    from chalicelib.table import Claim
    from chalicelib.terminals.errors import AmountOverLimit
    from chalicelib.terminals.service import Caller

    terminal = terminal_service.store.get_terminal("T-STORE")
    caller = Caller(terminal, Claim("NONCE#T-STORE#direct", "NONCE", error=RuntimeError, on_replay=True))
    with pytest.raises(AmountOverLimit):
        terminal_service.emoney_payment(caller, request_id="d1", idm=IDM, amount=20_001,
                                        paid_at=datetime.now(UTC), card_seq=7)


def test_the_openapi_schema_says_the_cap():
    from chalicelib.schemas import document

    schemas = document()["components"]["schemas"]
    for name in ("EmoneyPaymentRequest", "ChargeRequest"):
        ref = schemas[name]["properties"]["amount"]["$ref"].rsplit("/", 1)[1]
        assert schemas[ref]["maximum"] == 20_000
