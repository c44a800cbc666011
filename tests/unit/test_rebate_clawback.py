"""A rebate taken back when a payment of its settled month is cancelled (§6.2), pure:
the lot arithmetic, how the entry reads on MyPage, and how the reports count it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from chalicelib.ledger.domain import Actor, Entry, Lot, Op, Source, Totals, invariant_violations, take_back
from chalicelib.mypage.domain import entry_label, net_points
from chalicelib.rebates.domain import rebate_owed_back
from chalicelib.reports.domain import VOIDED, Bucket, Kind, tallies
from chalicelib.terminals.domain import CardTxn, TxnKind

DAY = date(2022, 12, 1)
INITIAL = Lot("1", 5000, 5000, datetime(2022, 10, 24, tzinfo=UTC), date(2022, 10, 24), date(2023, 4, 23),
              Source.INITIAL)
REBATE = Lot("2", 150, 150, datetime(2022, 11, 30, tzinfo=UTC), date(2022, 11, 30), date(2023, 5, 29), Source.REBATE)


def test_the_difference_is_taken_from_that_lot_only_and_never_more_than_it_holds():
    change = take_back([INITIAL, REBATE], "2", 50, DAY)
    [m] = change.movements
    assert (m.lot_id, m.op, m.amount, m.expires_on) == ("2", Op.VOID, 50, REBATE.expires_on)
    assert [lot.remaining for lot in change.lots] == [5000, 100]

    partly_spent = Lot(**{**REBATE.__dict__, "remaining": 20})
    change = take_back([INITIAL, partly_spent], "2", 50, DAY)
    assert change.total(Op.VOID) == 20 and [lot.remaining for lot in change.lots] == [5000, 0]


@pytest.mark.parametrize("lots, lot_id, day", [
    ([INITIAL], "2", DAY),  # the lot is not on the card (moved, or never granted)
    ([INITIAL, Lot(**{**REBATE.__dict__, "remaining": 0})], "2", DAY),  # spent
    ([INITIAL, REBATE], "2", date(2023, 5, 30)),  # past its last day
])
def test_nothing_is_taken_when_the_lot_holds_nothing_usable(lots, lot_id, day):
    assert take_back(lots, lot_id, 50, day) is None


def test_the_ledger_invariant_holds_with_a_take_back():
    grants = Totals().add([_grant(INITIAL), _grant(REBATE)])
    change = take_back([INITIAL, REBATE], "2", 50, DAY)
    assert invariant_violations(grants.add(change.movements), change.lots) == []


def _grant(lot: Lot):
    from chalicelib.ledger.domain import Movement

    return Movement(lot.lot_id, Op.GRANT, lot.amount, lot.expires_on)


def clawback_entry() -> Entry:
    change = take_back([INITIAL, REBATE], "2", 50, DAY)
    return Entry(card="0c00000000000001", seq=4, kind="rebate_clawback", at=datetime(2022, 12, 1, 3, tzinfo=UTC),
                 day=DAY, actor=Actor("terminal", "T-STORE", merchant="M-1"), request="r",
                 movements=change.movements, reason="e-money rebate for 2022-10 taken back: a payment was cancelled",
                 result={"taken_back": 50, "owed": 50, "month": "2022-10", "lot": "2", "balance": 5100})


def test_the_resident_sees_which_months_rebate_was_taken_back_and_why():
    entry = clawback_entry()
    assert net_points(entry) == -50
    label = entry_label(entry, {"M-1": "新見精肉店"})
    assert label == "2022年10月分の電子マネー還元の取消（新見精肉店での決済の取消による）"


def test_the_reports_count_it_as_voided_and_take_it_off_the_outstanding_points():
    counts = tallies([clawback_entry()])
    assert counts[Bucket(Kind.TOTALS, "2022-12")] == {VOIDED: 50}
    assert counts[Bucket(Kind.OUTSTANDING, "2023-05")] == {"points": -50}


def test_what_a_cancelled_payment_owes_back_is_the_fall_of_its_months_floored_rebate():
    txn = CardTxn(TxnKind.EMONEY_PAYMENT, "niimi", "0c00000000000001", 2, 5_000, datetime(2022, 10, 11, tzinfo=UTC),
                  "2022-10", "T-STORE", "M-1", "e2", rebate_bps=100)
    assert rebate_owed_back(15_000 * 100, txn) == 50
    assert rebate_owed_back(15_050 * 100, txn) == 50  # 150 -> 100 (the 50 yen over stay unrewarded)
    assert rebate_owed_back(5_099 * 100, txn) == 50  # 50 -> 0
    assert rebate_owed_back(5_000 * 100, txn) == 50
