"""The monthly e-money rebate on moto's DynamoDB, fed by signed terminal requests with the
clock moved: the §9 grant days, the JST month boundary, rates (issuer, merchant, campaign
period), carry-forward of cancels after a month is settled, late records, a missed run,
a run killed part way then resumed, two runs at once, a race with a cancel, and a cost
that follows the cards that paid. The `ledger` fixture checks the invariants at teardown."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.job_progress import JobInterrupted, JobState
from chalicelib.jobs.rebate import JOB, run_rebates
from chalicelib.ledger.domain import Actor, Op, Source, expiry_date
from chalicelib.ledger.keys import SHARDS
from chalicelib.rebates.domain import RebateRate
from chalicelib.reconciliation.service import Reconciliation
from chalicelib.reconciliation.store import ReconciliationStore
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
JST = ZoneInfo("Asia/Tokyo")
ISSUED = date(2022, 10, 24)
OPERATOR = Actor("operator", "ops")


class World:
    def __init__(self, ledger, terminals, clock, tills) -> None:
        self.ledger, self.terminals, self.clock, self.tills = ledger, terminals, clock, tills
        self.seq = 0

    def card(self, n: int) -> str:
        idm = f"0c{n:014x}"
        self.clock.set(ISSUED)
        self.ledger.open_card(idm=idm, card_number=f"JW{n:015d}", issuer_id="niimi")
        self.ledger.grant(idm, 5000, request_id=f"import:{idm}", actor=OPERATOR, source=Source.INITIAL)
        return idm

    def pay(self, idm: str, amount: int, at: datetime, *, till: str = "store", recorded_at: datetime | None = None):
        """An e-money payment made at `at`, recorded by the terminal then (or at `recorded_at`)."""
        self.seq += 1
        self.clock.set(recorded_at or at)
        body = {"request_id": f"e{self.seq}", "idm": idm, "amount": amount, "paid_at": at.isoformat(),
                "card_seq": self.seq}
        status, answer = self.tills[till].post_at(f"{V1}/emoney-payments", body, self.clock.now)
        assert status == 200, answer
        return self.seq, answer["month"]

    def cancel(self, idm: str, card_seq: int, on: date, *, till: str = "store") -> None:
        self.clock.set(on)
        body = {"request_id": f"x{card_seq}", "idm": idm, "card_seq": card_seq}
        status, answer = self.tills[till].post_at(f"{V1}/emoney-payments/cancel", body, self.clock.now)
        assert status == 200, answer

    def rebate(self, day: date, **kwargs):
        self.clock.set(day)
        return self.run(day, **kwargs)

    def run(self, day: date, **kwargs):
        """The rebate job, built as services.py builds it (its state, the reconciliation)."""
        return run_rebates(self.ledger, self.terminals.rebates, "niimi", on=day, state=JobState(),
                           reconciliation=Reconciliation(self.ledger, ReconciliationStore()), **kwargs)

    def rebates(self, idm: str) -> list[tuple[date, int, date]]:
        """The card's rebate grants: (day, points, last valid day), oldest first."""
        return [
            (e.day, e.result["granted"], date.fromisoformat(e.result["expires_on"]))
            for e in reversed(self.ledger.history(idm, limit=100).entries)
            if e.kind == "grant" and e.result["source"] == "rebate"
        ]


@pytest.fixture
def world(api, terminal_service, ledger, clock) -> World:
    return World(ledger, terminal_service, clock, register_demo(terminal_service, api))


def jst(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=JST)


# §9's worked dates: the rebate for a month is granted on the last business day of the next.
WORKED = [((2022, 10), date(2022, 11, 30)), ((2023, 3), date(2023, 4, 28)),
          ((2023, 11), date(2023, 12, 28)), ((2026, 4), date(2026, 5, 29))]


@pytest.mark.parametrize(("month", "grant_day"), WORKED)
def test_a_month_is_granted_on_the_last_business_day_of_the_next(world, month, grant_day):
    card = world.card(1)
    world.pay(card, 12_345, jst(*month, 10))
    assert world.rebate(grant_day - timedelta(days=1)).cards == 0
    assert world.rebates(card) == []

    report = world.rebate(grant_day)
    assert report.months[-1] == f"{month[0]}-{month[1]:02d}"
    assert (report.cards, report.points) == (1, 123)
    assert world.rebates(card) == [(grant_day, 123, expiry_date(grant_day, 6))]
    assert world.rebate(grant_day + timedelta(days=3)).cards == 0  # a later run grants nothing twice
    assert world.rebates(card) == [(grant_day, 123, expiry_date(grant_day, 6))]


def test_a_payment_at_23_59_59_jst_on_the_last_day_belongs_to_that_month(world):
    card = world.card(1)
    assert world.pay(card, 10_000, jst(2022, 10, 31, 23, 59, 59))[1] == "2022-10"
    assert world.pay(card, 20_000, jst(2022, 11, 1, 0, 0, 0))[1] == "2022-11"  # 15:00 UTC on 31 October
    world.rebate(date(2022, 11, 30))
    world.rebate(date(2022, 12, 28))
    assert world.rebates(card) == [(date(2022, 11, 30), 100, date(2023, 5, 29)),
                                   (date(2022, 12, 28), 200, date(2023, 6, 27))]


def test_rates_by_issuer_merchant_and_campaign_period_floor_over_the_month(world):
    world.terminals.register_rebate_rate(RebateRate("autumn", "niimi", 500, date(2022, 10, 20), date(2022, 10, 31)))
    world.terminals.register_rebate_rate(
        RebateRate("books", "niimi", 1000, date(2022, 10, 25), date(2022, 10, 26), merchant_id="M-2"))
    card = world.card(1)
    for _ in range(3):
        world.pay(card, 150, jst(2022, 10, 10))  # issuer's 1%: 4.5 pt together, 1.5 each
    world.pay(card, 1000, jst(2022, 10, 10), till="store2")  # the merchant's 2%: 20
    world.pay(card, 1000, jst(2022, 10, 21))  # the period's 5% for every merchant: 50
    world.pay(card, 1000, jst(2022, 10, 25), till="store2")  # the merchant's own period wins: 10%: 100
    cancelled, _ = world.pay(card, 5000, jst(2022, 10, 12))
    world.cancel(card, cancelled, date(2022, 10, 13))  # cancelled in its month: never counted

    world.rebate(date(2022, 11, 30))
    # floor over the month's total (4 + 20 + 50 + 100), not per payment (1 + 1 + 1 + ...: 173)
    assert world.rebates(card) == [(date(2022, 11, 30), 174, date(2023, 5, 29))]


def clawbacks(world: World, idm: str) -> list:
    return [e for e in reversed(world.ledger.history(idm, limit=100).entries) if e.kind == "rebate_clawback"]


def test_a_cancel_after_its_month_is_granted_takes_the_difference_back_from_that_months_lot_at_once(world):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    refunded, _ = world.pay(card, 5_000, jst(2022, 10, 11))
    assert world.rebate(date(2022, 11, 30)).points == 150
    [(_, _, lot_expires)] = world.rebates(card)

    balance = world.ledger.balance(card).balance
    world.cancel(card, refunded, date(2022, 12, 1))  # October now earns 100: 50 too many granted
    assert world.ledger.balance(card).balance == balance - 50  # taken back at once, not from later rebates
    [entry] = clawbacks(world, card)
    assert (entry.day, entry.actor.merchant) == (date(2022, 12, 1), "M-1")
    assert "2022-10" in entry.reason and "taken back" in entry.reason
    [movement] = entry.movements
    assert (movement.op, movement.amount, movement.expires_on) == (Op.VOID, 50, lot_expires)
    rebate_lot = next(lot for lot in world.ledger.card(card).lots if lot.source is Source.REBATE)
    assert (rebate_lot.amount, rebate_lot.remaining) == (150, 100)
    account = world.terminals.rebates.rebate_accounts([card])[card]
    assert (account.earned, account.granted) == (100, 100)  # nothing left to carry: no double deduction

    world.cancel(card, refunded, date(2022, 12, 2))  # the clerk's retry: the same answer, nothing taken twice
    assert world.ledger.balance(card).balance == balance - 50 and len(clawbacks(world, card)) == 1
    world.pay(card, 3_000, jst(2022, 11, 15))  # November earns 30, all granted
    november = world.rebate(date(2022, 12, 28))
    assert (november.points, november.withheld) == (30, 0)


def test_what_the_lot_no_longer_holds_is_taken_from_the_next_rebates_never_below_zero(world):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    refunded, _ = world.pay(card, 5_000, jst(2022, 10, 11))
    assert world.rebate(date(2022, 11, 30)).points == 150
    world.clock.set(date(2022, 12, 1))
    shop = Actor("terminal", "T-STORE", merchant="M-1")
    world.ledger.spend(card, 5_130, request_id="spend-most", actor=shop)  # the initial lot, then 130 of the rebate's

    world.cancel(card, refunded, date(2022, 12, 1))  # 50 owed: the lot's 20, and 30 carried
    assert [e.movements[0].amount for e in clawbacks(world, card)] == [20]
    assert world.ledger.balance(card).balance == 0  # never below what the lot held
    account = world.terminals.rebates.rebate_accounts([card])[card]
    assert (account.earned, account.granted, account.carried) == (100, 130, -30)

    world.pay(card, 3_000, jst(2022, 11, 15))  # November earns 30
    november = world.rebate(date(2022, 12, 28))
    assert (november.points, november.withheld) == (0, 30)  # 30 - 30: nothing
    world.pay(card, 4_000, jst(2022, 12, 10))  # December earns 40
    december = world.rebate(date(2023, 1, 31))
    assert (december.points, december.withheld) == (40, 0)
    assert world.rebates(card) == [(date(2022, 11, 30), 150, date(2023, 5, 29)),
                                   (date(2023, 1, 31), 40, date(2023, 7, 30))]
    account = world.terminals.rebates.rebate_accounts([card])[card]
    assert (account.earned, account.granted) == (100 + 30 + 40, 130 + 40)


def test_a_cancel_whose_months_lot_is_gone_is_carried_as_before(world):
    """A rebate lot already expired (or a month whose rebate granted nothing) holds
    nothing to take: the whole difference is carried, never taken from other points."""
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    refunded, _ = world.pay(card, 5_000, jst(2022, 10, 11))
    world.rebate(date(2022, 11, 30))
    world.clock.set(date(2023, 6, 1))
    balance = world.ledger.balance(card).balance
    world.cancel(card, refunded, date(2023, 6, 1))  # the October lot ended on 2023-05-29
    assert clawbacks(world, card) == []
    assert world.ledger.balance(card).balance == balance
    assert world.terminals.rebates.rebate_accounts([card])[card].carried == -50


def test_a_payment_recorded_after_its_month_is_settled_is_added_to_the_next_rebate(world):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    world.rebate(date(2022, 11, 30))
    # queued offline on 31 October, delivered after the rebate ran
    world.pay(card, 1_000, jst(2022, 10, 31, 20), recorded_at=jst(2022, 11, 30, 15))
    world.pay(card, 2_000, jst(2022, 11, 30, 16))
    world.rebate(date(2022, 12, 28))
    assert [points for _, points, _ in world.rebates(card)] == [100, 20 + 10]


def test_a_late_payments_rebate_is_granted_even_if_the_card_pays_nothing_more(world):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    world.rebate(date(2022, 11, 30))
    world.pay(card, 1_000, jst(2022, 10, 31, 20), recorded_at=jst(2022, 11, 30, 15))  # queued offline
    world.rebate(date(2022, 12, 28))  # November: no payment of its own
    assert [points for _, points, _ in world.rebates(card)] == [100, 10]
    world.rebate(date(2023, 1, 31))
    assert [points for _, points, _ in world.rebates(card)] == [100, 10]  # granted once


def test_a_missed_run_is_caught_up_month_by_month_on_the_next_run(world):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    world.pay(card, 20_000, jst(2022, 11, 10))
    JobState().mark_done(JOB, "niimi", date(2022, 9, 1))  # September was settled
    report = world.rebate(date(2023, 1, 4))  # no run on 30 November nor 28 December
    assert report.months == ["2022-10", "2022-11"]
    assert world.rebates(card) == [(date(2023, 1, 4), 100, date(2023, 7, 3)), (date(2023, 1, 4), 200, date(2023, 7, 3))]
    assert JobState().last_done(JOB, "niimi") == date(2022, 11, 1)


def test_a_run_killed_part_way_then_resumed_grants_each_card_once(world):
    cards = [world.card(n) for n in range(1, 31)]
    for n, card in enumerate(cards, start=1):
        world.pay(card, 1_000 + 100 * n, jst(2022, 10, 10))
    with pytest.raises(JobInterrupted):
        world.rebate(date(2022, 11, 30), fail_after=7)
    assert sum(bool(world.rebates(c)) for c in cards) == 7
    assert JobState().last_done(JOB, "niimi") < date(2022, 10, 1)

    resumed = world.rebate(date(2022, 11, 30))
    assert resumed.cards == 23 and resumed.months[-1] == "2022-10"
    assert world.rebate(date(2022, 11, 30)).cards == 0
    for n, card in enumerate(cards, start=1):
        assert [points for _, points, _ in world.rebates(card)] == [10 + n]


def test_two_runs_at_once_grant_each_card_once(world):
    cards = [world.card(n) for n in range(1, 21)]
    for card in cards:
        world.pay(card, 5_000, jst(2022, 10, 10))
    world.clock.set(date(2022, 11, 30))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            world.run(date(2022, 11, 30))
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for card in cards:
        assert [points for _, points, _ in world.rebates(card)] == [50]


def test_a_cancel_landing_between_the_jobs_read_and_write_is_counted(world, monkeypatch):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    refunded, _ = world.pay(card, 4_000, jst(2022, 10, 11))
    store, rebates = world.terminals.store, world.terminals.rebates
    read_accounts = rebates.rebate_accounts
    landed: list[int] = []

    def accounts_then_a_cancel(idms):
        accounts = read_accounts(idms)
        if not landed:  # the job has read the month (140 pt); the clerk cancels now
            txn, _ = store.get_txn(card, refunded)
            store.cancel_txn(txn, "late-cancel", [], book=rebates)
            landed.append(refunded)
        return accounts

    monkeypatch.setattr(rebates, "rebate_accounts", accounts_then_a_cancel)
    world.rebate(date(2022, 11, 30))
    assert landed and [points for _, points, _ in world.rebates(card)] == [100]
    assert rebates.accrual("niimi", "2022-10", card).closed


def test_a_rebate_taken_back_while_the_job_settles_the_next_month_is_counted_once(world, monkeypatch):
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    refunded, _ = world.pay(card, 5_000, jst(2022, 10, 11))
    world.rebate(date(2022, 11, 30))
    world.pay(card, 3_000, jst(2022, 11, 15))
    rebates = world.terminals.rebates
    read_accounts = rebates.rebate_accounts
    landed: list[int] = []

    def accounts_then_a_cancel(idms):
        accounts = read_accounts(idms)
        if not landed:  # the job has read the card's account for November; the clerk cancels October's now
            world.cancel(card, refunded, date(2022, 12, 28))
            landed.append(refunded)
        return accounts

    monkeypatch.setattr(rebates, "rebate_accounts", accounts_then_a_cancel)
    november = world.rebate(date(2022, 12, 28))
    assert landed and (november.points, november.withheld) == (30, 0)  # the 50 came from October's lot
    assert [e.movements[0].amount for e in clawbacks(world, card)] == [50]
    assert world.ledger.balance(card).balance == 5000 + 150 - 50 + 30
    account = read_accounts([card])[card]
    assert (account.earned, account.granted) == (100 + 30, 100 + 30)


def test_a_settled_months_cancel_costs_five_round_trips_and_an_open_months_two(world):
    """README: a cancel taking a rebate back is rare and may cost more; the others keep the budget."""
    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    settled, _ = world.pay(card, 5_000, jst(2022, 10, 11))
    world.rebate(date(2022, 11, 30))
    fresh, _ = world.pay(card, 1_000, jst(2022, 12, 1, 9))
    world.cancel(card, fresh, date(2022, 12, 1))  # warm the caches
    again, _ = world.pay(card, 1_000, jst(2022, 12, 1, 10))
    calls: list[str] = []
    events = world.ledger.store.connection.client.meta.events
    events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="settled-count")
    try:
        world.cancel(card, again, date(2022, 12, 1))
        open_month = list(calls)
        calls.clear()
        world.cancel(card, settled, date(2022, 12, 1))
    finally:
        events.unregister("before-call.dynamodb", unique_id="settled-count")
    assert open_month == ["GetItem", "TransactWriteItems"]
    assert calls == ["GetItem", "TransactWriteItems", "GetItem", "BatchGetItem", "TransactWriteItems"]
    assert [e.movements[0].amount for e in clawbacks(world, card)] == [50]


def test_cancels_at_once_take_the_rebate_back_once(world):
    import uuid

    from chalicelib.table import Claim
    from chalicelib.terminals.errors import AlreadyCancelled
    from chalicelib.terminals.service import Caller

    card = world.card(1)
    world.pay(card, 10_000, jst(2022, 10, 10))
    refunded, _ = world.pay(card, 5_000, jst(2022, 10, 11))
    world.rebate(date(2022, 11, 30))
    world.clock.set(date(2022, 12, 1))
    terminal = world.terminals.store.get_terminal("T-STORE")
    outcomes: list[str] = []

    def cancel(request_id: str) -> None:
        nonce = Claim(f"NONCE#T-STORE#{uuid.uuid4().hex}", "NONCE", error=RuntimeError, on_replay=True)
        try:
            world.terminals.emoney_payment_cancel(Caller(terminal, nonce), request_id=request_id, idm=card,
                                                  card_seq=refunded)
            outcomes.append(request_id)
        except AlreadyCancelled:
            outcomes.append("refused")

    threads = [threading.Thread(target=cancel, args=(rid,)) for rid in ("x", "x", "y", "z")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 4 and len(set(outcomes) - {"refused"}) == 1  # one cancel (and its retries) won
    assert [e.movements[0].amount for e in clawbacks(world, card)] == [50]
    assert world.ledger.balance(card).balance == 5000 + 100
    account = world.terminals.rebates.rebate_accounts([card])[card]
    assert (account.earned, account.granted) == (100, 100)


def test_the_cost_follows_the_cards_that_paid(world):
    paid = [world.card(n) for n in range(1, 41)]
    idle = [world.card(n) for n in range(41, 61)]
    for card in paid:
        world.pay(card, 2_000, jst(2022, 10, 10))
    JobState().mark_done(JOB, "niimi", date(2022, 9, 1))
    world.clock.set(date(2022, 11, 30))
    calls: list[tuple[str, dict]] = []
    events = world.ledger.store.connection.client.meta.events

    def hook(model, params, **_):
        calls.append((model.name, params))

    events.register("provide-client-params.dynamodb", hook, unique_id="test-rebate-count")
    try:
        report = world.run(date(2022, 11, 30))
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-rebate-count")

    assert (report.cards, report.points) == (40, 40 * 20)
    ops = [op for op, _ in calls]
    assert ops.count("Query") == SHARDS  # the month's accrual partitions, nothing else
    assert ops.count("TransactWriteItems") == len(paid)
    assert ops.count("BatchGetItem") == len(paid) + 1  # each card as the ledger reads it; the accounts at once
    read = {k["pk"]["S"] for op, params in calls if op == "BatchGetItem"
            for table in params["RequestItems"].values() for k in table["Keys"]}
    assert not any(card in key for card in idle for key in read)
    assert len(calls) / len(paid) <= 3
