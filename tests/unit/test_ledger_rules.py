"""The ledger's rules on the in-memory CardStore (tests/fakes/ledger.py): §11 end to
end, exactly-once requests, tenancy, cancels, void, transfer, history, claims and
nonces, the issuer cache. Moved from tests/integration/test_ledger_store.py, which keeps
what needs DynamoDB itself (concurrency, lost responses, races, tampering with the
table); tests/contract/test_card_store.py holds the fake to the real store's behaviour.
Every test using the `ledger` fixture ends with the invariants checked."""

from __future__ import annotations

from datetime import date

import pytest

from chalicelib.ledger import errors
from chalicelib.ledger.domain import Actor, CardStatus, Source
from chalicelib.ledger.errors import LedgerError
from chalicelib.ledger.service import Ledger
from chalicelib.table import Claim
from tests.fakes.ledger import FakeCardStore, with_test_issuers
from tests.ledger_checks import assert_ledger_sound

IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
OTHER_IDM, OTHER_NUMBER = "fedcba9876543210", "JW999999999999999"
OPERATOR = Actor("operator", "arn:aws:iam::123456789012:user/ops")
JOB = Actor("job", "rebate")
TILL = Actor("terminal", "T-1", merchant="M-1")
OTHER_SHOP = Actor("terminal", "T-9", merchant="M-9")


@pytest.fixture
def store() -> FakeCardStore:
    """In place of tests/conftest.py's moto-backed `store`: the same issuers, in memory."""
    return with_test_issuers(FakeCardStore())


@pytest.fixture
def unchecked_ledger(store, clock) -> Ledger:
    """The ledger on the fake, without the reports' aggregates (the fake takes no other
    context's writes)."""
    return Ledger(store, clock=clock)


@pytest.fixture
def ledger(unchecked_ledger) -> Ledger:
    """A ledger whose every card must be sound when the test ends."""
    yield unchecked_ledger
    assert_ledger_sound(unchecked_ledger)


@pytest.fixture
def card(unchecked_ledger, clock):
    ledger = unchecked_ledger
    clock.set(date(2022, 10, 24))
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi", birth_date="1950-01-02")
    ledger.grant(IDM, 5000, request_id="import:initial", actor=OPERATOR, source=Source.INITIAL)
    return IDM


def seq(ledger, idm=IDM):
    return ledger.card(idm).seq


class NonceReused(LedgerError):
    code = "nonce_reused"



class AlreadyThere(LedgerError):
    code = "already_there"



def test_section_11_worked_example(ledger, clock, card):
    clock.set(date(2022, 11, 30))
    rebate = ledger.grant(card, 123, request_id="rebate:2022-10", actor=JOB, source=Source.REBATE)
    assert rebate["expires_on"] == "2023-05-29"
    clock.set(date(2023, 4, 1))
    paid = ledger.spend(card, 5050, request_id="pay-1", actor=TILL)
    assert (paid["spent"], paid["shortfall"], paid["balance"]) == (5050, 0, 73)
    assert [(lot.lot_id, lot.remaining) for lot in ledger.card(card).lots] == [("1", 0), ("2", 73)]
    clock.set(date(2023, 4, 24))
    assert ledger.balance(card).balance == 73
    short = ledger.spend(card, 100, request_id="pay-2", actor=TILL, allow_shortfall=True)
    assert (short["spent"], short["shortfall"], short["balance"]) == (73, 27, 0)


def test_expired_lots_never_count_even_before_the_expiry_job(ledger, clock, card):
    clock.set(date(2023, 4, 23))
    assert ledger.balance(card).balance == 5000
    clock.set(date(2023, 4, 24))
    assert ledger.balance(card).balance == 0
    with pytest.raises(errors.InsufficientPoints) as info:
        ledger.spend(card, 1, request_id="late", actor=TILL)
    assert info.value.balance == 0


def test_a_repeated_request_returns_the_original_result_and_changes_nothing(ledger, clock, card):
    first = ledger.spend(card, 1200, request_id="pay-1", actor=TILL)
    before = seq(ledger)
    clock.advance(days=1)
    assert ledger.spend(card, 1200, request_id="pay-1", actor=TILL) == first
    assert seq(ledger) == before
    assert ledger.balance(card).balance == 3800


def test_the_same_request_id_with_a_different_body_is_refused(ledger, card):
    ledger.spend(card, 1200, request_id="pay-1", actor=TILL)
    with pytest.raises(errors.IdempotencyConflict):
        ledger.spend(card, 1300, request_id="pay-1", actor=TILL)
    with pytest.raises(errors.IdempotencyConflict):
        ledger.grant(card, 1200, request_id="pay-1", actor=TILL, source=Source.ADMIN)
    assert ledger.balance(card).balance == 3800


def test_a_card_of_another_issuer_is_refused_and_nothing_is_written(ledger, card):
    before = seq(ledger)
    with pytest.raises(errors.WrongIssuer):
        ledger.spend(card, 100, request_id="x", actor=TILL, issuer_id="okayama")
    with pytest.raises(errors.WrongIssuer):
        ledger.balance(card, issuer_id="okayama")
    assert seq(ledger) == before


def test_unknown_card_and_bad_amounts(ledger, card):
    with pytest.raises(errors.CardNotFound):
        ledger.spend("00000000000000ff", 100, request_id="x", actor=TILL)
    for amount in (0, -5):
        with pytest.raises(errors.InvalidAmount):
            ledger.spend(card, amount, request_id=f"bad-{amount}", actor=TILL)
    assert seq(ledger) == 1


def test_a_card_number_or_idm_is_registered_once(ledger, card):
    with pytest.raises(errors.CardAlreadyExists):
        ledger.open_card(idm=OTHER_IDM, card_number=NUMBER, issuer_id="niimi")
    with pytest.raises(errors.CardAlreadyExists):
        ledger.open_card(idm=IDM, card_number=OTHER_NUMBER, issuer_id="niimi")
    assert ledger.store.idm_for_number(NUMBER) == IDM
    assert ledger.store.idm_for_number(OTHER_NUMBER) is None


def test_cancel_restores_the_lots_once_and_only_for_the_merchant(ledger, clock, card):
    ledger.spend(card, 1000, request_id="pay-1", actor=TILL)
    with pytest.raises(errors.NotYourSpend):
        ledger.cancel_spend(card, spend_request_id="pay-1", request_id="c-x", actor=OTHER_SHOP)
    with pytest.raises(errors.SpendNotFound):
        ledger.cancel_spend(card, spend_request_id="nope", request_id="c-y", actor=TILL)
    done = ledger.cancel_spend(card, spend_request_id="pay-1", request_id="c-1", actor=TILL)
    assert done == {"cancelled": 1000, "expired": 0, "balance": 5000}
    assert ledger.cancel_spend(card, spend_request_id="pay-1", request_id="c-1", actor=TILL) == done
    with pytest.raises(errors.AlreadyCancelled):
        ledger.cancel_spend(card, spend_request_id="pay-1", request_id="c-2", actor=TILL)
    assert ledger.balance(card).balance == 5000


def test_a_cancel_after_expiry_records_the_points_as_expired(ledger, clock, card):
    clock.set(date(2023, 1, 10))
    ledger.grant(card, 300, request_id="event-1", actor=JOB, source=Source.EVENT)  # to 2023-07-09
    ledger.spend(card, 5200, request_id="pay-1", actor=TILL)
    clock.set(date(2023, 5, 1))
    done = ledger.cancel_spend(card, spend_request_id="pay-1", request_id="c-1", actor=TILL)
    assert done == {"cancelled": 5200, "expired": 5000, "balance": 300}


def test_expire_due_records_expiry_once(ledger, clock, card):
    ledger.spend(card, 1000, request_id="pay-1", actor=TILL)
    clock.set(date(2023, 4, 24))
    with pytest.raises(LedgerError):
        ledger.expire_due(card, on=date(2023, 4, 25), request_id="expire:2023-04-25", actor=JOB)
    assert ledger.expire_due(card, on=date(2023, 4, 23), request_id="expire:2023-04-23", actor=JOB) == {}
    assert ledger.expire_due(card, on=date(2023, 4, 24), request_id="expire:2023-04-24", actor=JOB) == {"expired": 4000}
    clock.set(date(2023, 4, 25))
    assert ledger.expire_due(card, on=date(2023, 4, 24), request_id="expire:2023-04-24", actor=JOB) == {"expired": 4000}
    assert ledger.expire_due(card, on=date(2023, 4, 25), request_id="expire:2023-04-25", actor=JOB) == {}
    assert ledger.card(card).lots == ()
    assert seq(ledger) == 3


def test_void_closes_the_card_and_refuses_later_use(ledger, card):
    result = ledger.void(card, request_id="return-1", actor=OPERATOR, reason="death", close_as=CardStatus.RETURNED)
    assert result == {"voided": 5000, "expired": 0, "status": "returned"}
    with pytest.raises(errors.CardClosed):
        ledger.spend(card, 1, request_id="pay-x", actor=TILL)
    assert ledger.balance(card).balance == 0


def test_damage_reissue_moves_lots_with_their_expiry_atomically(ledger, clock, card):
    clock.set(date(2022, 12, 1))
    ledger.spend(card, 1500, request_id="pay-1", actor=TILL)
    ledger.open_card(idm=OTHER_IDM, card_number=OTHER_NUMBER, issuer_id="niimi")
    moved = ledger.transfer(card, OTHER_IDM, request_id="reissue-1", actor=OPERATOR, reason="damaged")
    assert moved == {"moved": 3500, "expired": 0, "balance": 3500}
    new_lots = ledger.card(OTHER_IDM).lots
    assert [(lot.remaining, lot.valid_from, lot.expires_on) for lot in new_lots] == [
        (3500, date(2022, 10, 24), date(2023, 4, 23))
    ]
    assert ledger.card(card).status is CardStatus.VOID
    assert ledger.card(OTHER_IDM).last_activity == date(2022, 12, 1)
    # The replacement card carries the points on; the old one is closed.
    assert ledger.spend(OTHER_IDM, 500, request_id="pay-2", actor=TILL)["balance"] == 3000
    with pytest.raises(errors.CardClosed):
        ledger.transfer(card, OTHER_IDM, request_id="reissue-2", actor=OPERATOR, reason="again")


def test_transfer_to_another_issuers_card_is_refused(ledger, card):
    ledger.open_card(idm=OTHER_IDM, card_number=OTHER_NUMBER, issuer_id="okayama")
    with pytest.raises(errors.WrongIssuer):
        ledger.transfer(card, OTHER_IDM, request_id="t", actor=OPERATOR, reason="damaged")
    assert ledger.balance(card).balance == 5000


def test_last_activity_follows_grants_and_spends(ledger, clock, card):
    assert ledger.card(card).last_activity == date(2022, 10, 24)
    clock.set(date(2023, 2, 3))
    ledger.spend(card, 10, request_id="pay-1", actor=TILL)
    assert ledger.card(card).last_activity == date(2023, 2, 3)
    clock.set(date(2023, 2, 4))
    ledger.cancel_spend(card, spend_request_id="pay-1", request_id="c-1", actor=TILL)
    assert ledger.card(card).last_activity == date(2023, 2, 3)


def test_history_pages_newest_first_with_a_cursor(ledger, clock, card):
    for i in range(6):
        ledger.spend(card, 10 + i, request_id=f"pay-{i}", actor=TILL)
    page = ledger.history(card, limit=3)
    assert [e.seq for e in page.entries] == [7, 6, 5]
    assert page.entries[0].result["spent"] == 15
    page = ledger.history(card, limit=3, cursor=page.next_cursor)
    assert [e.seq for e in page.entries] == [4, 3, 2]
    page = ledger.history(card, limit=3, cursor=page.next_cursor)
    assert [e.seq for e in page.entries] == [1]
    assert page.next_cursor is None
    assert page.entries[0].kind == "grant" and page.entries[0].actor == OPERATOR


def test_claims_make_a_change_happen_at_most_once(ledger, card):
    once = Claim("CHECKIN#event-1#card", "CHECKIN", error=AlreadyThere)
    ledger.grant(card, 300, request_id="checkin-1", actor=TILL, source=Source.EVENT, claims=[once])
    with pytest.raises(AlreadyThere):
        ledger.grant(card, 300, request_id="checkin-2", actor=TILL, source=Source.EVENT, claims=[once])
    # a repeat of the request that made the claim is answered from its record
    assert ledger.grant(card, 300, request_id="checkin-1", actor=TILL, source=Source.EVENT, claims=[once])
    assert ledger.balance(card).balance == 5300 and seq(ledger) == 2


def test_a_nonce_is_spent_by_every_request_repeats_and_reads_included(ledger, card):
    def nonce(n):
        return Claim(f"NONCE#T-1#{n}", "NONCE", error=NonceReused, on_replay=True)

    first = ledger.spend(card, 100, request_id="pay-1", actor=TILL, claims=[nonce(1)])
    with pytest.raises(NonceReused):
        ledger.spend(card, 100, request_id="pay-1", actor=TILL, claims=[nonce(1)])
    assert ledger.spend(card, 100, request_id="pay-1", actor=TILL, claims=[nonce(2)]) == first
    with pytest.raises(NonceReused):
        ledger.spend(card, 100, request_id="pay-2", actor=TILL, claims=[nonce(2)])
    assert ledger.balance(card, claims=[nonce(3)]).balance == 4900
    with pytest.raises(NonceReused):
        ledger.balance(card, claims=[nonce(3)])
    assert seq(ledger) == 2


def test_malformed_card_identifiers_are_refused(ledger):
    with pytest.raises(errors.InvalidRequest):
        ledger.open_card(idm="0123456789ABCDEF", card_number=OTHER_NUMBER, issuer_id="niimi")
    with pytest.raises(errors.InvalidRequest):
        ledger.open_card(idm=OTHER_IDM, card_number="JW1", issuer_id="niimi")


def test_a_warm_ledger_sees_an_issuers_changed_settings_after_its_cache_seconds(ledger, store, monkeypatch):
    """Settings changed by an operator (or another container) reach a warm Lambda within
    ISSUER_CACHE_SECONDS, and are read from memory until then; an unknown issuer is not
    remembered, so one added next is found at once."""
    from dataclasses import replace

    import chalicelib.ttl_cache as ttl_cache
    from chalicelib.ledger.service import ISSUER_CACHE_SECONDS, UnknownIssuer

    now = [1000.0]
    monkeypatch.setattr(ttl_cache, "monotonic", lambda: now[0])
    assert ledger.issuer("niimi").closures == ()
    closed = date(2026, 12, 28)
    store.put_issuer(replace(ledger.issuer("niimi"), closures=(closed,)))
    now[0] += ISSUER_CACHE_SECONDS - 1
    assert ledger.issuer("niimi").closures == ()
    now[0] += 1
    assert ledger.issuer("niimi").closures == (closed,)

    with pytest.raises(UnknownIssuer):
        ledger.issuer("kurashiki")
    store.put_issuer(replace(ledger.issuer("niimi"), issuer_id="kurashiki"))
    assert ledger.issuer("kurashiki").issuer_id == "kurashiki"
