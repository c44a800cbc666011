"""Admin grants to a list of cards: exactly once per (list, card), resumable, and every
refused row reported with its reason. Rules through the ledger's public face: the ledger
runs on the in-memory store (tests/fakes/), its invariants checked after each test."""

from __future__ import annotations

import pytest

from chalicelib.job_progress import JobInterrupted
from chalicelib.ledger.domain import Actor
from chalicelib.operators.grants import GrantRow, grant_list
from tests.fakes import fixtures as fakes

OPS = Actor("operator", "arn:aws:iam::123456789012:user/ops")
CARDS = [(f"{n:016x}", f"JW{n:015d}") for n in range(1, 6)]

unchecked_ledger = fakes.unchecked_ledger


@pytest.fixture
def cards(ledger):
    for idm, number in CARDS:
        ledger.open_card(idm=idm, card_number=number, issuer_id="niimi")
    ledger.open_card(idm="00000000000000ff", card_number="JW000000000000255", issuer_id="okayama")
    return ledger


def rows(points=200):
    return [GrantRow(number, points) for _, number in CARDS]


def balances(ledger):
    return [ledger.balance(idm).balance for idm, _ in CARDS]


def test_a_list_grants_each_card_once_however_often_it_runs(cards):
    first = grant_list(cards, "niimi", "volunteer-2026-11", rows(), reason="ボランティア", actor=OPS)
    again = grant_list(cards, "niimi", "volunteer-2026-11", rows(), reason="ボランティア", actor=OPS)
    assert (first.granted, first.points, first.already_granted) == (5, 1000, 0)
    assert (again.granted, again.points, again.already_granted) == (0, 0, 5)  # the repeat finds them granted
    assert balances(cards) == [200] * 5
    assert all(cards.card(idm).seq == 1 for idm, _ in CARDS)
    entry = cards.history(CARDS[0][0]).entries[0]
    assert (entry.reason, entry.actor, entry.result["source"]) == ("ボランティア", OPS, "admin")


def test_another_list_grants_again(cards):
    grant_list(cards, "niimi", "walk-1", rows(500), reason="健康ウォーク", actor=OPS)
    grant_list(cards, "niimi", "walk-2", rows(500), reason="健康ウォーク", actor=OPS)
    assert balances(cards) == [1000] * 5


def test_a_list_stopped_part_way_resumes_without_granting_twice(cards):
    with pytest.raises(JobInterrupted):
        grant_list(cards, "niimi", "list-1", rows(), reason="r", actor=OPS, fail_after=2)
    assert balances(cards) == [200, 200, 0, 0, 0]
    grant_list(cards, "niimi", "list-1", rows(), reason="r", actor=OPS)
    assert balances(cards) == [200] * 5


def test_refused_rows_are_reported_and_the_rest_granted(cards):
    bad = [GrantRow("JW999999999999999", 100), GrantRow("JW000000000000255", 100), GrantRow(CARDS[0][1], 0)]
    report = grant_list(cards, "niimi", "mixed", bad + rows(), reason="r", actor=OPS)
    assert report.granted == 5
    assert report.rejected == [
        (1, "no card with this card number"), (2, "the card belongs to another issuer"),
        (3, "amount must be a positive integer, got 0")]
    assert cards.balance("00000000000000ff").balance == 0


def test_a_reason_is_required(cards):
    with pytest.raises(ValueError):
        grant_list(cards, "niimi", "x", rows(), reason=" ", actor=OPS)
