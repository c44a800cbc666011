"""A hypothesis state machine over the ledger: its full run on the in-memory CardStore
(tests/fakes/ledger.py, which tests/contract/ holds to the real store's behaviour), and a
shorter run on the moto-backed store with the reports' aggregates, so DynamoDB's
conditions and transactions are still exercised.

Grants (an initial one once per card), spends with and without shortfall, cancels (by
the right and the wrong merchant), voids, damage reissues, time jumps across expiry
dates, expiry runs, and requests repeated with the same or a different body. After every
step every card must be sound (chain verifies, no negative lot, balance is the sum of
live lots, every point is accounted for, at most one initial grant) and a repeat must
have changed nothing.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timezone

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from moto import mock_aws

from chalicelib.ledger import errors
from chalicelib.ledger.domain import Actor, CardStatus, Issuer, Source
from chalicelib.ledger.service import Ledger
from chalicelib.ledger.store import CardStore
from chalicelib.reports.store import ledger_aggregates
from chalicelib.table import Table
from localdev.moto_serial import serialize_dynamodb
from tests.conftest import TABLE, Clock
from tests.fakes.ledger import FakeCardStore
from tests.ledger_checks import card_problems

SHOP = Actor("terminal", "T-1", merchant="M-1")
OTHER_SHOP = Actor("terminal", "T-2", merchant="M-2")
OPERATOR = Actor("operator", "ops")
JOB = Actor("job", "expire")

_ids = itertools.count()


@pytest.fixture(scope="module")
def machine_store():
    """One table for all examples: each example works on cards of its own."""
    serialize_dynamodb()
    with mock_aws():
        table = Table(TABLE, "ap-northeast-1")  # the table the models are bound to, in its own mock
        table.create()
        store = CardStore(table)
        store.put_issuer(Issuer("niimi"))
        yield store


class LedgerMachine(RuleBasedStateMachine):
    store: CardStore | FakeCardStore
    extra_writes = None  # the reports' aggregates on moto; the fake takes no other context's writes

    cards = Bundle("cards")
    spends = Bundle("spends")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock(datetime(2022, 10, 24, 1, tzinfo=timezone.utc))
        self.ledger = Ledger(self.store, clock=self.clock, extra_writes=self.extra_writes)
        self.run = next(_ids)
        self.idms: list[str] = []
        self.done: dict[str, tuple[object, dict]] = {}  # request id → (how to repeat it, its result)
        self.cancelled: set[str] = set()
        self.initial: set[str] = set()  # cards that had their initial grant

    def _request_id(self) -> str:
        return f"r{self.run}-{next(_ids)}"

    def _do(self, call, *, allowed: tuple[type[Exception], ...] = (), refused: list | None = None) -> str | None:
        """Make a request; remember it for repeats when it went through."""
        rid = self._request_id()
        try:
            result = call(rid)
        except (errors.CardClosed, *allowed) as exc:
            if refused is not None:
                refused.append(exc)
            return None
        self.done[rid] = (call, result)
        return rid

    # -- cards and time ----------------------------------------------------------------

    @initialize(target=cards)
    def first_card(self):
        return self._open()

    @rule(target=cards)
    def another_card(self):
        return self._open()

    def _open(self) -> str:
        n = next(_ids)
        idm = f"{n:016x}"
        self.ledger.open_card(idm=idm, card_number=f"JW{n:015d}", issuer_id="niimi")
        self.idms.append(idm)
        return idm

    @rule(days=st.integers(min_value=1, max_value=200))
    def time_passes(self, days):
        self.clock.advance(days=days)

    # -- changes ---------------------------------------------------------------------

    @rule(card=cards, amount=st.integers(min_value=1, max_value=6000),
          source=st.sampled_from([Source.INITIAL, Source.REBATE, Source.EVENT, Source.ADMIN]),
          back_days=st.integers(min_value=0, max_value=200))
    def grant(self, card, amount, source, back_days):
        """An initial grant goes through once per card, whatever its request id."""
        granted_on = date.fromordinal(self.ledger.today("niimi").toordinal() - back_days) if back_days else None
        refused = []
        rid = self._do(lambda rid: self.ledger.grant(card, amount, request_id=rid, actor=OPERATOR, source=source,
                                                     granted_on=granted_on),
                       allowed=(errors.InitialAlreadyGranted,), refused=refused)
        if rid is not None and source is Source.INITIAL:
            assert card not in self.initial, "a second initial grant went through"
            self.initial.add(card)
        if refused and isinstance(refused[0], errors.InitialAlreadyGranted):
            assert source is Source.INITIAL and card in self.initial

    @rule(target=spends, card=cards, amount=st.integers(min_value=1, max_value=6000), shortfall=st.booleans())
    def spend(self, card, amount, shortfall):
        before = self.ledger.balance(card).balance
        rid = self._do(
            lambda rid: self.ledger.spend(card, amount, request_id=rid, actor=SHOP, allow_shortfall=shortfall),
            allowed=(errors.InsufficientPoints,),
        )
        if rid is None:
            return (card, "none")
        result = self.done[rid][1]
        assert result["spent"] == min(amount, before)
        assert result["spent"] + result["shortfall"] == amount
        assert shortfall or result["shortfall"] == 0
        return (card, rid)

    @rule(spend=spends, wrong_shop=st.booleans())
    def cancel(self, spend, wrong_shop):
        """Only the merchant that took a payment may cancel it, and only once."""
        card, spend_rid = spend
        if spend_rid == "none":
            return
        actor = OTHER_SHOP if wrong_shop else SHOP
        refusal = errors.NotYourSpend if wrong_shop else errors.AlreadyCancelled
        must_refuse = wrong_shop or spend_rid in self.cancelled
        refused = []
        rid = self._do(
            lambda rid: self.ledger.cancel_spend(card, spend_request_id=spend_rid, request_id=rid, actor=actor),
            allowed=(refusal,),
            refused=refused,
        )
        if rid is not None:
            assert not must_refuse, "a cancel went through that should have been refused"
            self.cancelled.add(spend_rid)
        elif must_refuse and not self.ledger.card(card).status.closed:
            assert refused and isinstance(refused[0], refusal)

    @rule(card=cards)
    def expiry_run(self, card):
        day = self.ledger.today("niimi")
        rid = self._do(lambda rid: self.ledger.expire_due(card, on=day, request_id=rid, actor=JOB))
        if rid is not None and self.done[rid][1] == {}:
            del self.done[rid]  # nothing was due, nothing was written: there is nothing to repeat

    @rule(card=cards, close=st.booleans())
    def void(self, card, close):
        self._do(lambda rid: self.ledger.void(card, request_id=rid, actor=OPERATOR, reason="test",
                                              close_as=CardStatus.VOID if close else None))

    @rule(broken=cards, replacement=cards)
    def reissue(self, broken, replacement):
        self._do(
            lambda rid: self.ledger.transfer(broken, replacement, request_id=rid, actor=OPERATOR, reason="damaged"),
            allowed=(errors.LedgerError,) if broken == replacement else (),
        )

    # -- repeats ---------------------------------------------------------------------

    @rule(data=st.data())
    def repeat_changes_nothing(self, data):
        if not self.done:
            return
        rid = data.draw(st.sampled_from(sorted(self.done)))
        call, result = self.done[rid]
        before = {idm: self.ledger.card(idm) for idm in self.idms}
        self.clock.advance(hours=1)
        assert call(rid) == result
        assert {idm: self.ledger.card(idm) for idm in self.idms} == before

    @rule(card=cards, data=st.data())
    def reused_id_with_another_body_is_refused(self, card, data):
        if not self.done:
            return
        rid = data.draw(st.sampled_from(sorted(self.done)))
        before = {idm: self.ledger.card(idm) for idm in self.idms}
        with pytest.raises(errors.IdempotencyConflict):
            self.ledger.grant(card, 987654, request_id=rid, actor=OPERATOR, source=Source.ADMIN)
        assert {idm: self.ledger.card(idm) for idm in self.idms} == before

    # -- after every step --------------------------------------------------------------

    @invariant()
    def every_card_is_sound(self):
        problems = [p for idm in self.idms for p in card_problems(self.ledger, idm)]
        assert not problems, problems


def _run(store, extra_writes, *, examples: int, steps: int) -> None:
    LedgerMachine.store = store
    LedgerMachine.extra_writes = staticmethod(extra_writes) if extra_writes else None  # not a method
    run = LedgerMachine.TestCase
    run.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        # Shrinking a failing run of this machine can take many minutes; the unshrunk
        # steps are printed and are enough to reproduce it.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    run().runTest()


def test_ledger_state_machine():
    """The rules, on the in-memory store: four times the examples the moto run once had
    (25), at a fraction of its time."""
    store = FakeCardStore()
    store.put_issuer(Issuer("niimi"))
    _run(store, None, examples=100, steps=25)


def test_ledger_state_machine_on_dynamodb(machine_store):
    """The same machine on moto, with the reports' aggregates in every transaction:
    fewer examples, enough to run every rule against DynamoDB's conditions."""
    _run(machine_store, ledger_aggregates, examples=5, steps=25)
