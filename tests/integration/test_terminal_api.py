"""The signed terminal API through chalice.test.Client on moto: every refusal of a
signature, tenancy, merchants, modes, and the records the rebate and campaign jobs use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.ledger.domain import Actor, Source
from chalicelib.rebates.domain import Accrual
from chalicelib.terminals.domain import TerminalStatus
from tests.terminals import SignedTerminal, new_key, register_demo

V1 = "/api/terminal/v1"
IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
OKA_IDM = "00000000000000aa"
JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def tills(api, terminal_service, ledger):
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    ledger.open_card(idm=OKA_IDM, card_number="JW000000000000002", issuer_id="okayama")
    return register_demo(terminal_service, api)


def seq(ledger, idm=IDM):
    return ledger.card(idm).seq


def pay(till, request_id, amount, shortfall=False, idm=IDM):
    return till.post(f"{V1}/point-payments",
                     {"request_id": request_id, "idm": idm, "amount": amount, "allow_shortfall": shortfall})


# -- the operations ---------------------------------------------------------------------


def test_balance_shows_every_lot_with_its_expiry(tills):
    status, body = tills["store"].post(f"{V1}/balance", {"idm": IDM})
    assert status == 200
    assert body["balance"] == 5000
    assert [lot["points"] for lot in body["lots"]] == [5000]
    assert body["lots"][0]["expires_on"] > body["as_of"]


def test_point_payment_with_and_without_shortfall(tills, ledger):
    assert pay(tills["store"], "p1", 4000) == (200, {"requested": 4000, "spent": 4000, "shortfall": 0, "balance": 1000})
    status, body = pay(tills["store"], "p2", 1500)
    assert (status, body["code"], body["balance"]) == (409, "insufficient_points", 1000)
    assert pay(tills["store"], "p3", 1500, shortfall=True) == (
        200, {"requested": 1500, "spent": 1000, "shortfall": 500, "balance": 0})


def test_a_retry_with_the_same_request_id_has_one_effect(tills, ledger):
    first = pay(tills["store"], "p1", 1200)
    assert pay(tills["store"], "p1", 1200) == first  # signed anew: a new nonce, the same request
    assert seq(ledger) == 2
    status, body = pay(tills["store"], "p1", 1300)
    assert (status, body["code"]) == (409, "request_id_reused")


def test_point_payment_cancel_only_by_its_merchant_and_once(tills, ledger):
    pay(tills["store"], "p1", 1000)
    cancel = {"request_id": "c1", "idm": IDM, "payment_request_id": "p1"}
    status, body = tills["store2"].post(f"{V1}/point-payments/cancel", cancel)
    assert (status, body["code"]) == (404, "spend_not_found")
    assert tills["store"].post(f"{V1}/point-payments/cancel", cancel) == (
        200, {"cancelled": 1000, "expired": 0, "balance": 5000})
    status, body = tills["store"].post(f"{V1}/point-payments/cancel", {**cancel, "request_id": "c2"})
    assert (status, body["code"]) == (409, "already_cancelled")
    assert ledger.balance(IDM).balance == 5000


def test_a_card_of_another_issuer_is_refused_and_nothing_is_written(tills, ledger):
    before = seq(ledger)
    for path, body in [
        (f"{V1}/balance", {"idm": IDM}),
        (f"{V1}/point-payments", {"request_id": "x1", "idm": IDM, "amount": 100}),
        (f"{V1}/emoney-payments", {"request_id": "x2", "idm": IDM, "amount": 100,
                                   "paid_at": datetime.now(UTC).isoformat(), "card_seq": 7}),
    ]:
        status, answer = tills["okayama"].post(path, body)
        assert (status, answer["code"]) == (403, "wrong_issuer")
    assert seq(ledger) == before
    assert tills["store"].post(f"{V1}/balance", {"idm": OKA_IDM})[0] == 403
    nonces = ledger.store.table.connection.client.scan(
        TableName=ledger.store.table.name,
        FilterExpression="begins_with(pk, :n)",
        ExpressionAttributeValues={":n": {"S": "NONCE#T-OKA"}},
    )
    assert nonces["Count"] == 0


def test_each_mode_does_only_its_operations(tills):
    status, body = pay(tills["event"], "p1", 100)
    assert (status, body["code"]) == (403, "operation_not_allowed")
    status, body = tills["store"].post(f"{V1}/checkins", {"request_id": "k1", "idm": IDM})
    assert (status, body["code"]) == (403, "operation_not_allowed")
    assert tills["charger"].post(f"{V1}/balance", {"idm": IDM})[0] == 200


def test_emoney_payments_are_recorded_once_per_card_sequence_number(tills, terminal_service):
    paid_at = datetime(2026, 10, 31, 23, 59, 59, tzinfo=JST)  # belongs to October
    terminal_service.clock.now = paid_at.astimezone(UTC) + timedelta(minutes=1)
    record = {"request_id": "e1", "idm": IDM, "amount": 12345, "paid_at": paid_at.isoformat(), "card_seq": 41}
    till = tills["store"]
    status, body = till.post_at(f"{V1}/emoney-payments", record, terminal_service.clock.now)
    assert (status, body) == (200, {"recorded": "emoney_payment", "card_seq": 41, "amount": 12345,
                                    "month": "2026-10", "duplicate": False})
    # a resend from the offline queue (a new request id) is the same payment
    again = {**record, "request_id": "e1-resend"}
    status, body = till.post_at(f"{V1}/emoney-payments", again, terminal_service.clock.now)
    assert (status, body["duplicate"]) == (200, True)
    # another payment claiming the same sequence number is refused
    other = {**record, "request_id": "e2", "amount": 999}
    status, body = till.post_at(f"{V1}/emoney-payments", other, terminal_service.clock.now)
    assert (status, body["code"]) == (409, "record_conflict")
    accrual = terminal_service.rebates.accrual("niimi", "2026-10", IDM)
    assert (accrual.yen, accrual.weighted, accrual.payments) == (12345, 12345 * 100, 1)


def test_merchant_rebate_rate_and_emoney_cancel(tills, terminal_service):
    now = datetime.now(UTC)
    month = now.astimezone(JST).strftime("%Y-%m")
    record = {"request_id": "e1", "idm": IDM, "amount": 1000, "paid_at": now.isoformat(), "card_seq": 5}
    assert tills["store2"].post(f"{V1}/emoney-payments", record)[0] == 200
    assert terminal_service.rebates.accrual("niimi", month, IDM) == Accrual(IDM, month, 1000, 200_000, 1)
    cancel = {"request_id": "ec1", "idm": IDM, "card_seq": 5}
    status, body = tills["store"].post(f"{V1}/emoney-payments/cancel", cancel)
    assert (status, body["code"]) == (404, "not_found")  # not this merchant's payment
    assert tills["store2"].post(f"{V1}/emoney-payments/cancel", cancel) == (
        200, {"cancelled": 1000, "month": month, "card_seq": 5})
    assert tills["store2"].post(f"{V1}/emoney-payments/cancel", cancel)[0] == 200  # a retry: same answer
    status, body = tills["store2"].post(f"{V1}/emoney-payments/cancel", {**cancel, "request_id": "ec2"})
    assert (status, body["code"]) == (409, "already_cancelled")
    assert terminal_service.rebates.accrual("niimi", month, IDM) == Accrual(IDM, month, 0, 0, 0)


def test_charges_are_recorded_with_their_kind(tills, terminal_service):
    now = datetime.now(UTC)
    charge = {"request_id": "g1", "idm": IDM, "amount": 20000, "kind": "gas-station", "charged_at": now.isoformat(),
              "card_seq": 9}
    status, body = tills["charger"].post(f"{V1}/charges", charge)
    assert (status, body["recorded"], body["duplicate"]) == (200, "charge", False)
    txn, _ = terminal_service.store.get_txn(IDM, 9)
    assert (txn.kind.value, txn.charge_kind, txn.amount, txn.merchant_id) == ("charge", "gas-station", 20000, None)
    status, body = tills["store"].post(f"{V1}/charges", charge)
    assert (status, body["code"]) == (403, "operation_not_allowed")


def test_event_checkin_grants_once_per_card_inside_the_window(tills, terminal_service, ledger):
    status, body = tills["event"].post(f"{V1}/checkins", {"request_id": "k1", "idm": IDM})
    assert (status, body["event"], body["granted"], body["balance"]) == (200, "健康ウォーク", 500, 5500)
    status, body = tills["event"].post(f"{V1}/checkins", {"request_id": "k2", "idm": IDM})
    assert (status, body["code"]) == (409, "already_checked_in")
    assert tills["event"].post(f"{V1}/checkins", {"request_id": "k1", "idm": IDM})[1]["granted"] == 500  # a retry
    terminal_service.clock.advance(hours=4)
    ledger.open_card(idm="00000000000000bb", card_number="JW000000000000003", issuer_id="niimi")
    status, body = tills["event"].post_at(f"{V1}/checkins", {"request_id": "k3", "idm": "00000000000000bb"},
                                          terminal_service.clock.now)
    assert (status, body["code"]) == (409, "event_closed")
    assert ledger.balance(IDM).balance == 5500


def test_invalid_bodies_are_refused_with_a_reason(tills, ledger):
    for body in [{"idm": IDM}, {"request_id": "p", "idm": "XYZ", "amount": 1},
                 {"request_id": "p", "idm": IDM, "amount": 0}, {"request_id": "p", "idm": IDM, "amount": "10"},
                 {"request_id": "p", "idm": IDM, "amount": 10, "extra": 1}]:
        status, answer = tills["store"].post(f"{V1}/point-payments", body)
        assert (status, answer["code"]) == (400, "invalid_request"), body
    status, answer = tills["store"].post(f"{V1}/point-payments", b"not json")
    assert (status, answer["code"]) == (400, "invalid_request")
    assert seq(ledger) == 1


# -- every refusal of a signature -----------------------------------------------------------


def test_an_unsigned_request_is_refused(api, tills):
    response = api.http.post(f"{V1}/balance", headers={"Content-Type": "application/json"},
                             body=json.dumps({"idm": IDM}))
    assert response.status_code == 401


def test_a_bad_signature_is_refused(tills, api):
    impostor = SignedTerminal(api, "T-STORE", new_key())  # right id, wrong key
    status, body = impostor.post(f"{V1}/balance", {"idm": IDM})
    assert (status, body["code"]) == (401, "bad_signature")
    # a signature for one path does not open another
    req = tills["store"].prepare(f"{V1}/balance", {"idm": IDM})
    response = api.http.post(f"{V1}/checkins", headers=dict(req.headers), body=req.body)
    assert response.status_code == 401


def test_an_unknown_key_is_refused(tills, api):
    status, body = SignedTerminal(api, "T-404", new_key()).post(f"{V1}/balance", {"idm": IDM})
    assert (status, body["code"]) == (401, "unknown_key")


def test_a_disabled_key_is_refused(tills, terminal_service):
    terminal_service.set_terminal_status("T-STORE", TerminalStatus.DISABLED)
    status, body = tills["store"].post(f"{V1}/balance", {"idm": IDM})
    assert (status, body["code"]) == (401, "key_disabled")
    terminal_service.set_terminal_status("T-STORE", TerminalStatus.ACTIVE)
    assert tills["store"].post(f"{V1}/balance", {"idm": IDM})[0] == 200


@pytest.mark.parametrize("offset", [301, -301])
def test_a_created_time_more_than_300_s_off_is_refused(tills, terminal_service, offset):
    req = tills["store"].prepare(f"{V1}/balance", {"idm": IDM}, terminal_service.clock.now)
    terminal_service.clock.advance(seconds=offset)
    status, body = tills["store"].send(req)
    assert (status, body["code"]) == (401, "stale_signature")


def test_a_created_time_within_300_s_is_accepted(tills, terminal_service):
    req = tills["store"].prepare(f"{V1}/balance", {"idm": IDM}, terminal_service.clock.now)
    terminal_service.clock.advance(seconds=290)
    assert tills["store"].send(req)[0] == 200


def test_a_reused_nonce_is_refused(tills, ledger):
    req = tills["store"].prepare(f"{V1}/point-payments", {"request_id": "p1", "idm": IDM, "amount": 100})
    assert tills["store"].send(req)[0] == 200
    status, body = tills["store"].send(req)  # the very same signed request, replayed
    assert (status, body["code"]) == (401, "nonce_reused")
    balance = tills["store"].prepare(f"{V1}/balance", {"idm": IDM})
    assert tills["store"].send(balance)[0] == 200
    assert tills["store"].send(balance)[1]["code"] == "nonce_reused"
    assert ledger.balance(IDM).balance == 4900


def test_a_body_that_does_not_match_its_digest_is_refused(tills, ledger):
    req = tills["store"].prepare(f"{V1}/point-payments", {"request_id": "p1", "idm": IDM, "amount": 100})
    forged = json.dumps({"request_id": "p1", "idm": IDM, "amount": 4900}).encode()
    status, body = tills["store"].send(req, body=forged)
    assert (status, body["code"]) == (401, "digest_mismatch")
    assert ledger.balance(IDM).balance == 5000
