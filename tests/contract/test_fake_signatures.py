"""Each fake has its store's methods with the same parameters, so code written against
the store runs on the fake unchanged; the behaviour behind them is what the other
contract tests check. The ledger's and MyPage's fakes have every public method of their
store; the terminals' fake has the directory and the transaction reads only (recording
is not faked, see tests/fakes/terminals.py)."""

from __future__ import annotations

import inspect

import pytest

from chalicelib.ledger.store import CardStore
from chalicelib.mypage.store import MyPageStore
from chalicelib.terminals.store import TerminalStore
from tests.fakes.ledger import FakeCardStore
from tests.fakes.mypage import FakeMyPageStore
from tests.fakes.terminals import FakeTerminalStore

TERMINAL_METHODS = {"put_merchant", "get_merchant", "merchants", "put_terminal", "get_terminal", "put_event",
                    "get_event", "get_txn", "card_txns", "charging_cards"}
FAKE_ONLY = {"seed_txn"}  # a test's way in, where the real store is written by record_txn


def public_methods(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if callable(value) and not name.startswith("_")}


def parameters(cls: type, name: str) -> list[tuple[str, object, object]]:
    signature = inspect.signature(getattr(cls, name))
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("real", "fake", "methods"), [
    (CardStore, FakeCardStore, public_methods(CardStore)),
    (MyPageStore, FakeMyPageStore, public_methods(MyPageStore)),
    (TerminalStore, FakeTerminalStore, TERMINAL_METHODS),
], ids=["ledger", "mypage", "terminals"])
def test_the_fake_has_the_stores_methods_with_the_same_parameters(real, fake, methods):
    assert methods <= public_methods(real)
    assert public_methods(fake) - FAKE_ONLY == methods
    for name in sorted(methods):
        assert parameters(fake, name) == parameters(real, name), name
