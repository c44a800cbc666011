"""The lot rules of SPEC §5, pure: balance, spend order, shortfall, cancel, expire,
void, transfer — and the §11 worked example."""

from datetime import date, datetime, timezone

import pytest

from chalicelib.ledger import domain
from chalicelib.ledger.domain import Lot, Op, Source, Totals, invariant_violations
from chalicelib.ledger.errors import InsufficientPoints, InvalidAmount

AT = datetime(2023, 1, 1, tzinfo=timezone.utc)


def lot(lot_id, amount, expires_on, *, remaining=None, valid_from=date(2022, 1, 1), granted_at=AT):
    return Lot(lot_id, amount, amount if remaining is None else remaining, granted_at, valid_from, expires_on,
               Source.ADMIN)


def grant(lots, lot_id, amount, day, months=6, source=Source.INITIAL):
    return domain.grant(lots, day, lot_id=lot_id, amount=amount, granted_at=AT, valid_from=day,
                        validity_months=months, source=source)


def test_section_11_worked_example():
    totals = Totals()
    change = grant((), "1", 5000, date(2022, 10, 24))
    totals.add(change.movements)
    assert change.lots[0].expires_on == date(2023, 4, 23)
    change = grant(change.lots, "2", 123, date(2022, 11, 30), source=Source.REBATE)
    totals.add(change.movements)
    assert change.lots[1].expires_on == date(2023, 5, 29)

    paid = domain.spend(change.lots, 5050, date(2023, 4, 1), allow_shortfall=False)
    totals.add(paid.change.movements)
    assert [(lot.lot_id, lot.remaining) for lot in paid.change.lots] == [("1", 0), ("2", 73)]

    assert domain.balance(paid.change.lots, date(2023, 4, 24)) == 73
    short = domain.spend(paid.change.lots, 100, date(2023, 4, 24), allow_shortfall=True)
    totals.add(short.change.movements)
    assert (short.spent, short.shortfall) == (73, 27)
    assert domain.balance(short.change.lots, date(2023, 4, 24)) == 0
    assert invariant_violations(totals, short.change.lots) == []


def test_balance_counts_only_lots_live_on_the_day():
    lots = [
        lot("a", 100, date(2023, 4, 23)),
        lot("b", 50, date(2023, 9, 30), valid_from=date(2023, 5, 1)),
    ]
    assert domain.balance(lots, date(2023, 4, 23)) == 100  # last day counts
    assert domain.balance(lots, date(2023, 4, 24)) == 0  # expired, though no job ran; b not yet valid
    assert domain.balance(lots, date(2023, 5, 1)) == 50


def test_spend_takes_earliest_expiry_first_then_earliest_grant():
    later = datetime(2023, 2, 1, tzinfo=timezone.utc)
    lots = [
        lot("late", 100, date(2023, 9, 30)),
        lot("same-but-newer", 100, date(2023, 6, 30), granted_at=later),
        lot("same-older", 100, date(2023, 6, 30)),
    ]
    out = domain.spend(lots, 150, date(2023, 3, 1), allow_shortfall=False)
    assert [(m.lot_id, m.amount) for m in out.change.movements] == [("same-older", 100), ("same-but-newer", 50)]


def test_spend_without_shortfall_refuses_with_the_balance():
    with pytest.raises(InsufficientPoints) as info:
        domain.spend([lot("a", 70, date(2023, 9, 30))], 100, date(2023, 3, 1), allow_shortfall=False)
    assert (info.value.balance, info.value.requested) == (70, 100)


def test_spend_with_shortfall_on_an_empty_card_spends_nothing():
    out = domain.spend([], 100, date(2023, 3, 1), allow_shortfall=True)
    assert (out.spent, out.shortfall, out.change.movements) == (0, 100, ())


@pytest.mark.parametrize("amount", [0, -1, 1.5, "10", True, None])
def test_amounts_must_be_positive_integers(amount):
    with pytest.raises(InvalidAmount):
        domain.spend([lot("a", 70, date(2023, 9, 30))], amount, date(2023, 3, 1), allow_shortfall=True)
    with pytest.raises(InvalidAmount):
        grant((), "1", amount, date(2023, 3, 1))


def test_cancel_restores_original_lots_and_expires_past_portions():
    lots = [lot("old", 100, date(2023, 3, 31)), lot("new", 100, date(2023, 9, 30))]
    paid = domain.spend(lots, 150, date(2023, 3, 15), allow_shortfall=False)
    back = domain.cancel_spend(paid.change.lots, paid.change.movements, date(2023, 4, 2))
    assert back.total(Op.CANCEL) == 150
    assert back.total(Op.EXPIRE) == 100  # "old" expired on 31 March
    assert {lot.lot_id: lot.remaining for lot in back.lots} == {"new": 100}


def test_cancel_the_same_day_restores_everything():
    lots = [lot("a", 100, date(2023, 3, 31)), lot("b", 100, date(2023, 9, 30))]
    paid = domain.spend(lots, 150, date(2023, 3, 15), allow_shortfall=False)
    back = domain.cancel_spend(paid.change.lots, paid.change.movements, date(2023, 3, 15))
    assert {lot.lot_id: lot.remaining for lot in back.lots} == {"a": 100, "b": 100}
    assert back.total(Op.EXPIRE) == 0


def test_expire_records_past_lots_and_drops_them():
    lots = [lot("a", 100, date(2023, 3, 31), remaining=40), lot("b", 100, date(2023, 9, 30)),
            lot("c", 10, date(2023, 3, 1), remaining=0)]
    change = domain.expire(lots, date(2023, 4, 1))
    assert [(m.lot_id, m.op, m.amount) for m in change.movements] == [("a", Op.EXPIRE, 40)]
    assert [lot.lot_id for lot in change.lots] == ["b"]
    assert domain.expire(change.lots, date(2023, 4, 1)).movements == ()


def test_void_takes_every_point_past_lots_as_expired():
    lots = [lot("a", 100, date(2023, 3, 31), remaining=40), lot("b", 100, date(2023, 9, 30))]
    change = domain.void(lots, date(2023, 4, 1))
    assert (change.total(Op.EXPIRE), change.total(Op.VOID)) == (40, 100)
    assert [(lot.lot_id, lot.remaining) for lot in change.lots] == [("b", 0)]


def test_a_payment_made_before_a_void_can_still_be_cancelled_into_its_lot():
    lots = [lot("a", 100, date(2023, 9, 30))]
    paid = domain.spend(lots, 30, date(2023, 4, 1), allow_shortfall=False)
    voided = domain.void(paid.change.lots, date(2023, 4, 2))
    back = domain.cancel_spend(voided.lots, paid.change.movements, date(2023, 4, 3))
    assert [(lot.lot_id, lot.remaining) for lot in back.lots] == [("a", 30)]


def test_transfer_keeps_validity_and_expiry():
    source = [lot("a", 100, date(2023, 3, 31), remaining=40), lot("b", 100, date(2023, 9, 30), remaining=60),
              lot("c", 100, date(2023, 10, 31), valid_from=date(2023, 5, 1))]
    moved = domain.transfer(source, [], date(2023, 4, 1), lot_prefix="7")
    assert moved.source.total(Op.EXPIRE) == 40
    assert moved.source.total(Op.TRANSFER_OUT) == 160
    assert [(x.lot_id, x.remaining, x.valid_from, x.expires_on) for x in moved.target.lots] == [
        ("7.0", 60, date(2022, 1, 1), date(2023, 9, 30)),
        ("7.1", 100, date(2023, 5, 1), date(2023, 10, 31)),
    ]
    assert moved.target.total(Op.TRANSFER_IN) == 160


def test_invariant_violations_name_the_problem():
    totals = Totals().add([domain.Movement("a", Op.GRANT, 100, date(2023, 9, 30))])
    assert invariant_violations(totals, [lot("a", 100, date(2023, 9, 30), remaining=90)])
    assert invariant_violations(totals, [lot("a", 100, date(2023, 9, 30), remaining=-1)])
    assert invariant_violations(totals, [lot("a", 100, date(2023, 9, 30))]) == []


def test_card_identifiers():
    assert domain.is_idm("0123456789abcdef")
    assert not domain.is_idm("0123456789ABCDEF")
    assert not domain.is_idm("0123456789abcde")
    assert domain.is_card_number("JW123456789012345")
    assert not domain.is_card_number("JW12345678901234")
    assert not domain.is_card_number("JX123456789012345")
    assert not domain.is_card_number("JW12345678901234٣")  # a non-ASCII digit
