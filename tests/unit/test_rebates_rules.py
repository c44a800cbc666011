"""The rebates context's rules, pure (chalicelib/rebates/domain.py), and the writes
`Rebates.month_writes` hands the terminals' store for a payment's month, built without AWS."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from chalicelib.rebates.domain import (
    RebateRate,
    earned_change,
    rebate_bps,
    rebate_owed_back,
    rebate_points,
    rebate_to_grant,
    weighted_change,
)
from chalicelib.rebates.service import Rebates
from chalicelib.rebates.store import AccrualItem, RebateStateItem, RebateStore
from chalicelib.reconciliation.store import AwaitingRecordItem
from chalicelib.terminals.domain import AWAITING, MATCHED, CardTxn, Merchant, TxnKind

AT = datetime(2022, 10, 10, 3, tzinfo=UTC)


def payment(amount: int = 5_000, bps: int = 100, reconcile: str | None = None) -> CardTxn:
    return CardTxn(TxnKind.EMONEY_PAYMENT, "niimi", "0c0000000000000001", 7, amount, AT, "2022-10", "T-1", "M-1",
                   "r1", rebate_bps=bps, reconcile=reconcile)


def test_the_most_specific_rate_wins():
    merchant = Merchant("M-1", "niimi", "本屋", "新見", "books", rebate_bps=150)
    periods = [RebateRate("all", "niimi", 300, date(2022, 10, 1), date(2022, 10, 31)),
               RebateRate("mine", "niimi", 500, date(2022, 10, 10), date(2022, 10, 10), merchant_id="M-1")]
    assert rebate_bps(100, merchant, periods, date(2022, 10, 10)) == 500
    assert rebate_bps(100, merchant, periods, date(2022, 10, 11)) == 300
    assert rebate_bps(100, merchant, periods, date(2022, 11, 1)) == 150
    assert rebate_bps(100, None, [], date(2022, 11, 1)) == 100


@pytest.mark.parametrize("weighted", [0, 5_000 * 100, 5_099 * 100, 15_050 * 100, 123_456_789])
def test_a_cancel_takes_back_what_the_settled_month_earns_less(weighted):
    txn = payment()
    assert weighted_change(txn, -1) == -5_000 * 100
    assert rebate_owed_back(weighted, txn) == -earned_change(weighted, weighted_change(txn, -1))


def test_the_month_earns_once_over_its_sum_and_a_negative_carry_never_goes_below_zero():
    assert rebate_points(12_345 * 100) == 123 and rebate_points(-1) == 0
    assert rebate_to_grant(30, -50) == 0 and rebate_to_grant(30, -20) == 10 and rebate_to_grant(30, 5) == 35


def rebates() -> Rebates:
    return Rebates(RebateStore(SimpleNamespace(connection=None)))


def kinds(writes) -> list[tuple[type, str]]:
    return [(type(w.item), "delete" if w.delete else "update" if w.actions else "put") for w in writes]


def test_an_open_month_takes_one_conditioned_write():
    writes = rebates().month_writes(payment(), 1, None, "2022-11")
    assert kinds(writes) == [(AccrualItem, "update")]
    assert writes[0].condition is not None


def test_a_settled_month_moves_the_account_and_lists_the_card_where_the_late_payment_arrives():
    writes = rebates().month_writes(payment(), 1, 10_000 * 100, "2022-11")
    assert kinds(writes) == [(AccrualItem, "update"), (RebateStateItem, "update"), (AccrualItem, "update")]
    assert writes[2].item.pk.startswith("ACCRUAL#niimi#2022-11#")
    cancelled = rebates().month_writes(payment(), -1, 10_000 * 100, None, taken_back=50)
    assert kinds(cancelled) == [(AccrualItem, "update"), (RebateStateItem, "update")]


def test_under_reconciliation_a_payment_waits_on_the_awaiting_list_and_its_match_takes_it_off():
    assert kinds(rebates().month_writes(payment(reconcile=AWAITING), 1, None, None)) == [
        (AccrualItem, "update"), (AwaitingRecordItem, "put")]
    assert kinds(rebates().month_writes(payment(reconcile=AWAITING), -1, None, None)) == [
        (AccrualItem, "update"), (AwaitingRecordItem, "delete")]
    assert kinds(rebates().month_writes(payment(reconcile=MATCHED), 1, None, "2022-11")) == [
        (AccrualItem, "update"), (AwaitingRecordItem, "delete")]
