"""Offline behaviour: e-money records and charges queued durably in SQLite while the API
is unreachable, sent in order and recorded exactly once when it is back; refusals kept
for the operator; point payments never taken offline."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from terminal_agent.agent import (
    CHARGES,
    CHECKINS,
    EMONEY_PAYMENT_CANCELS,
    EMONEY_PAYMENTS,
    POINT_PAYMENT_CANCELS,
    POINT_PAYMENTS,
    InvalidChargeKind,
    NoCardHistory,
    PointPaymentNeedsNetwork,
    Recorded,
)
from terminal_agent.card import CardRead
from terminal_agent.client import ApiError, Offline
from terminal_agent.messages import describe
from terminal_agent.queue import NOT_SENT, FlushReport, NotQueueable, OfflineQueue

from .conftest import IDM, OKA_IDM

JST = ZoneInfo("Asia/Tokyo")
JOIN_S = 20


def card(seq: int | None, balance: int | None = 10_000, idm: str = IDM) -> CardRead:
    return CardRead(idm, balance if seq is not None else None, seq, None)


def emoney_body(request_id: str, card_seq: int, idm: str = IDM, amount: int = 500) -> dict:
    """An e-money payment's body as the agent queues it."""
    return {"request_id": request_id, "idm": idm, "amount": amount,
            "paid_at": "2026-11-02T10:00:00+09:00", "card_seq": card_seq}


def month_of(body: dict) -> str:
    return datetime.fromisoformat(body["paid_at"]).astimezone(JST).strftime("%Y-%m")


def test_offline_records_are_queued_durably_then_sent_in_order_exactly_once(world, terminal_service):
    store, charger = world.agent("store"), world.agent("charger")
    world.adapter.down = True
    assert store.record_emoney(card(41), 1000) == Recorded(queued=True, reason="offline")
    assert store.record_emoney(card(42), 2000).queued
    assert store.cancel_emoney(card(42), 41).queued  # the cancel of the first payment
    assert charger.record_charge(card(43), 5000, "cash").queued
    assert terminal_service.store.get_txn(IDM, 41) is None
    store.queue.close()  # the terminal restarts

    reopened = OfflineQueue(world.config("store").queue_path)
    rows = reopened.pending()
    assert [(r.path, r.body.get("card_seq")) for r in rows] == [
        (EMONEY_PAYMENTS, 41), (EMONEY_PAYMENTS, 42), (EMONEY_PAYMENT_CANCELS, 41)]
    assert [r.attempts for r in rows] == [3, 0, 0]  # tried when made, and before each later record
    assert rows[0].last_error.startswith("offline") and rows[1].last_error is None
    assert len({r.body["request_id"] for r in rows}) == 3

    world.adapter.down = False
    world.adapter.lose_responses = 1  # the first resend is done but its answer is lost
    sent_before = len(world.adapter.delivered)
    client = world.client(world.config("store"))
    assert reopened.flush(client) == FlushReport(sent=3, rejected=0, remaining=0)
    delivered = world.adapter.delivered[sent_before:]
    assert [d.body["request_id"] for d in delivered] == [rows[0].body["request_id"]] * 2 + [
        r.body["request_id"] for r in rows[1:]]  # in order; the lost one resent as itself

    first, _ = terminal_service.store.get_txn(IDM, 41)
    second, _ = terminal_service.store.get_txn(IDM, 42)
    assert (first.amount, first.cancelled, first.request_id) == (1000, True, rows[0].body["request_id"])
    assert (second.amount, second.cancelled) == (2000, False)
    accrual = terminal_service.rebates.accrual("niimi", month_of(rows[1].body), IDM)
    assert (accrual.yen, accrual.weighted, accrual.payments) == (2000, 2000 * 100, 1)

    assert reopened.flush(client) == FlushReport(sent=0, rejected=0, remaining=0)  # nothing sent twice
    assert len(world.adapter.delivered) == sent_before + 4
    reopened.close()

    assert charger.flush_queue() == FlushReport(sent=1, rejected=0, remaining=0)
    charge, _ = terminal_service.store.get_txn(IDM, 43)
    assert (charge.kind.value, charge.amount, charge.charge_kind, charge.merchant_id) == ("charge", 5000, "cash", None)


def test_a_new_record_is_sent_after_the_older_queued_ones(world, terminal_service):
    store = world.agent("store")
    world.adapter.down = True
    older = store.record_emoney(card(41), 1000)
    behind = store.record_emoney(card(42), 1500)  # still offline: waits behind the older one
    assert (older.reason, behind.reason) == ("offline", "queued_behind")
    world.adapter.down = False
    newest = store.record_emoney(card(43), 700)
    assert not newest.queued
    assert (newest.result["card_seq"], newest.result["duplicate"]) == (43, False)
    assert [d.body["card_seq"] for d in world.adapter.delivered] == [41, 42, 43]
    assert store.queue.count() == 0
    assert terminal_service.store.get_txn(IDM, 42)[0].amount == 1500


def test_a_record_recorded_twice_is_one_record(world, terminal_service):
    store = world.agent("store")
    world.adapter.down = True
    store.record_emoney(card(41), 1000)
    world.adapter.down = False
    again = store.record_emoney(card(41), 1000)  # the clerk pressed again once online
    assert again.result["duplicate"] is True
    month = month_of(world.adapter.delivered[0].body)
    assert terminal_service.rebates.accrual("niimi", month, IDM).payments == 1


def test_a_refused_record_is_kept_in_rejected_and_the_rest_are_sent(world, terminal_service):
    store = world.agent("store")
    world.adapter.down = True
    store.record_emoney(card(7, idm=OKA_IDM), 300)  # a card of another issuer
    store.record_emoney(card(41), 1000)
    world.adapter.down = False
    assert store.flush_queue() == FlushReport(sent=1, rejected=1, remaining=0)
    (refused,) = store.queue.rejected()
    assert (refused.status, refused.code, refused.body["idm"], refused.attempts) == (403, "wrong_issuer", OKA_IDM, 3)
    assert store.queue.pending() == []
    assert terminal_service.store.get_txn(OKA_IDM, 7) is None
    assert terminal_service.store.get_txn(IDM, 41) is not None


class Refusing:
    """A client whose every post is refused with one error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.posts = 0

    def post(self, path: str, body: dict) -> dict:
        self.posts += 1
        raise self.error


@pytest.mark.parametrize("error", [
    ApiError(401, "stale_signature", "the terminal's clock is off"),
    ApiError(503, "busy", "try again"),
    Offline("no answer"),
])
def test_a_failure_that_says_nothing_about_the_record_keeps_it_queued_in_order(tmp_path, error):
    with OfflineQueue(tmp_path / "q.sqlite") as queue:
        queue.put(EMONEY_PAYMENTS, emoney_body("a", 1))
        queue.put(EMONEY_PAYMENTS, emoney_body("b", 2))
        client = Refusing(error)
        report = queue.flush(client)
        assert (report.sent, report.rejected, report.remaining, client.posts) == (0, 0, 2, 1)
        assert [r.body["request_id"] for r in queue.pending()] == ["a", "b"]
        assert queue.pending()[0].attempts == 1 and queue.pending()[0].last_error
        assert queue.rejected() == []
    assert (tmp_path / "q.sqlite").stat().st_mode & 0o777 == 0o600  # it holds card IDms


def test_two_flushes_at_once_send_each_record_once(world, terminal_service):
    store = world.agent("store")
    world.adapter.down = True
    store.record_emoney(card(41), 1000)
    store.record_emoney(card(42), 2000)
    world.adapter.down = False
    world.adapter.hold = threading.Event()
    reports: list[FlushReport] = []
    first = threading.Thread(target=lambda: reports.append(store.flush_queue()))
    first.start()
    try:
        assert world.adapter.holding.wait(JOIN_S)  # the first flush is sending its first row
        other = OfflineQueue(world.config("store").queue_path)  # e.g. a `flush` command
        assert other.flush(world.client(world.config("store"))) == FlushReport(0, 0, 2, "flush_running")
    finally:
        world.adapter.hold.set()
        first.join(JOIN_S)
    assert reports == [FlushReport(sent=2, rejected=0, remaining=0)]
    assert [d.body["card_seq"] for d in world.adapter.delivered] == [41, 42]
    assert other.flush(world.client(world.config("store"))) == FlushReport(0, 0, 0)
    other.close()


def test_a_point_payment_offline_is_refused_in_japanese_and_nothing_is_queued(world, ledger):
    store = world.agent("store")
    world.adapter.down = True
    with pytest.raises(PointPaymentNeedsNetwork) as refused:
        store.pay_points(card(41), 1000, allow_shortfall=True)
    assert describe(refused.value) == "通信できないため、ポイント支払いはできません"
    assert "network" in str(refused.value) and not refused.value.reversal_queued  # it never got through
    assert store.queue.count() == 0 and store.queue.rejected() == []
    assert ledger.balance(IDM).balance == 5000


def test_a_point_payment_whose_answer_was_lost_is_reversed_when_the_network_is_back(world, ledger):
    store = world.agent("store")
    world.adapter.lose_responses = 1
    world.adapter.down_after_delivery = True  # spent on the server; the answer and the retries lost
    with pytest.raises(PointPaymentNeedsNetwork) as refused:
        store.pay_points(card(41), 1000)
    assert refused.value.reversal_queued
    assert describe(refused.value) == "通信できないため、ポイント支払いはできません"
    assert ledger.balance(IDM).balance == 4000  # the clerk took cash: this must not stand
    (reversal,) = store.queue.pending()
    assert (reversal.path, reversal.body["payment_request_id"]) == (POINT_PAYMENT_CANCELS, refused.value.request_id)
    world.adapter.down_after_delivery = world.adapter.down = False
    assert store.flush_queue() == FlushReport(sent=1, rejected=0, remaining=0)
    assert ledger.balance(IDM).balance == 5000


def test_a_reversal_of_a_payment_that_never_happened_settles_quietly(world, ledger):
    store = world.agent("store")
    store.queue.put(POINT_PAYMENT_CANCELS, {"request_id": "r1", "idm": IDM, "payment_request_id": "never-made"})
    assert store.flush_queue() == FlushReport(sent=1, rejected=0, remaining=0)
    assert store.queue.rejected() == []
    assert ledger.balance(IDM).balance == 5000


def test_a_card_without_history_cannot_be_recorded(world):
    store = world.agent("store")
    with pytest.raises(NoCardHistory) as refused:
        store.record_emoney(card(None), 1000)
    assert describe(refused.value) == "カードの利用履歴が読み取れないため、記録できません"
    assert world.adapter.sent == [] and store.queue.count() == 0


def test_a_bad_charge_kind_is_refused_before_anything_is_sent_or_queued(world):
    charger = world.agent("charger")
    world.adapter.down = True
    with pytest.raises(InvalidChargeKind) as refused:
        charger.record_charge(card(50), 3000, "Gas Station")
    assert describe(refused.value) == "チャージの種別が正しくありません（例: cash）"
    assert world.adapter.sent == [] and charger.queue.count() == 0


def test_a_charge_queued_offline_is_recorded_once_online(world, terminal_service):
    charger = world.agent("charger")
    world.adapter.down = True
    assert charger.record_charge(card(50), 3000, "cash").reason == "offline"
    world.adapter.down = False
    assert not charger.record_charge(card(51), 2000, "cash").queued  # flushes the older one first
    assert [d.path for d in world.adapter.delivered] == [CHARGES, CHARGES]
    assert terminal_service.store.get_txn(IDM, 50)[0].amount == 3000
    assert terminal_service.store.get_txn(IDM, 51)[0].amount == 2000


# -- only allow-listed requests are ever signed from the queue ------------------------------


def plant(queue_path, path: str, body: str) -> None:
    """A row written into the SQLite file by something other than the agent (the file is
    writable by anything running as the agent's user)."""
    db = sqlite3.connect(queue_path)
    with db:
        db.execute("INSERT INTO pending (path, body, created_at) VALUES (?, ?, ?)",
                   (path, body, "2026-11-02T01:00:00+00:00"))
    db.close()


class Recording:
    """A client that answers every post and keeps what it was asked to send."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []

    def post(self, path: str, body: dict) -> dict:
        self.posts.append((path, body))
        return {}


def test_a_point_payment_planted_in_the_queue_is_never_signed_or_sent(world, ledger, terminal_service):
    store = world.agent("store")
    payment = {"request_id": "planted-1", "idm": IDM, "amount": 4000, "allow_shortfall": False}
    plant(world.config("store").queue_path, POINT_PAYMENTS, json.dumps(payment))
    store.queue.put(EMONEY_PAYMENTS, emoney_body("e-1", 41))
    assert store.flush_queue() == FlushReport(sent=1, rejected=1, remaining=0)
    assert [d.path for d in world.adapter.sent] == [EMONEY_PAYMENTS]  # nothing else was even signed
    assert ledger.balance(IDM).balance == 5000
    assert terminal_service.store.get_txn(IDM, 41) is not None  # the row behind it still went
    (refused,) = store.queue.rejected()
    assert (refused.path, refused.status, refused.code, refused.attempts) == (POINT_PAYMENTS, NOT_SENT,
                                                                             "path_not_allowed", 0)
    assert refused.body == payment


@pytest.mark.parametrize(("path", "body", "code"), [
    (POINT_PAYMENTS, {"request_id": "p", "idm": IDM, "amount": 100, "allow_shortfall": False}, "path_not_allowed"),
    (CHECKINS, {"request_id": "c", "idm": IDM}, "path_not_allowed"),
    (EMONEY_PAYMENTS, {"request_id": "e", "idm": IDM, "amount": 100, "paid_at": "2026-11-02T10:00:00+09:00"},
     "bad_fields"),  # no card_seq
    (EMONEY_PAYMENTS, {**emoney_body("e", 1), "amount": True}, "bad_fields"),
    (CHARGES, {**emoney_body("e", 1), "kind": "cash"}, "bad_fields"),  # paid_at is not a charge's
])
def test_put_refuses_a_request_that_may_not_wait(tmp_path, path, body, code):
    with OfflineQueue(tmp_path / "q.sqlite") as queue:
        with pytest.raises(NotQueueable) as refused:
            queue.put(path, body)
        assert refused.value.code == code
        assert queue.count() == 0


def test_unreadable_rows_move_to_rejected_and_the_rows_behind_them_are_sent_in_order(tmp_path):
    at = datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)
    path = tmp_path / "q.sqlite"
    with OfflineQueue(path, clock=lambda: at) as queue:
        queue.put(EMONEY_PAYMENTS, emoney_body("first", 1))
        plant(path, EMONEY_PAYMENTS, '{"request_id": "broken", "idm": ')  # cut short by a crash
        plant(path, "/api/terminal/v1/refunds", json.dumps(emoney_body("odd", 2)))
        plant(path, EMONEY_PAYMENTS, json.dumps({"request_id": "no-seq", "idm": IDM, "amount": 1}))
        plant(path, EMONEY_PAYMENTS, "[1, 2]")
        queue.put(EMONEY_PAYMENTS, emoney_body("second", 3))
        queue.put(EMONEY_PAYMENT_CANCELS, {"request_id": "third", "idm": IDM, "card_seq": 3})
        assert len(queue.pending()) == 7  # listing a damaged row does not fail either

        client = Recording()
        assert queue.flush(client) == FlushReport(sent=3, rejected=4, remaining=0)
        assert [body["request_id"] for _, body in client.posts] == ["first", "second", "third"]
        rejected = queue.rejected()
        assert [(r.code, r.status, r.rejected_at) for r in rejected] == [
            ("unreadable_body", NOT_SENT, "2026-11-02T03:04:05+00:00"),
            ("path_not_allowed", NOT_SENT, "2026-11-02T03:04:05+00:00"),
            ("bad_fields", NOT_SENT, "2026-11-02T03:04:05+00:00"),
            ("unreadable_body", NOT_SENT, "2026-11-02T03:04:05+00:00"),
        ]
        assert rejected[0].body == '{"request_id": "broken", "idm": '  # kept as found, for the operator
        assert "card_seq" in rejected[2].message
        assert queue.rejected_count() == 4 and queue.pending() == []
