"""TerminalStore and its fake (tests/fakes/terminals.py) on the same cases (`TestFake`,
`TestDynamoDB`): the directory (merchants, terminals, events) and the transaction reads.
Recording itself is the real store's (its months and rebate bookkeeping are not faked):
each class says how a recorded transaction gets there (`recorded`)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from chalicelib.ledger import keys as ledger_keys
from chalicelib.rebates.service import Rebates
from chalicelib.terminals.domain import CardTxn, Event, Merchant, Mode, Terminal, TerminalStatus, TxnKind
from chalicelib.terminals.store import TerminalStore, txn_fingerprint
from tests.fakes.terminals import FakeTerminalStore

JST = ZoneInfo("Asia/Tokyo")
AT = datetime(2022, 10, 24, 10, 0, 0, 250000, tzinfo=JST)


def merchant(n: int, issuer: str = "niimi", bps: int | None = None) -> Merchant:
    return Merchant(f"M-{n}", issuer, f"店{n}", "新見", "food", bps)


def txn(idm: str, seq: int, kind: TxnKind = TxnKind.EMONEY_PAYMENT, month: str = "2022-10",
        issuer: str = "niimi") -> CardTxn:
    return CardTxn(kind=kind, issuer=issuer, idm=idm, card_seq=seq, amount=100 * seq, at=AT, month=month,
                   terminal_id="T-1", merchant_id="M-1" if kind is TxnKind.EMONEY_PAYMENT else None,
                   request_id=f"r-{idm}-{seq}", charge_kind="cash" if kind is TxnKind.CHARGE else None,
                   rebate_bps=100 if kind is TxnKind.EMONEY_PAYMENT else None, counted_on=date(2022, 10, 24))


def idm(n: int) -> str:
    return f"{n:016x}"


class TerminalStoreCases:
    # -- directory ---------------------------------------------------------------------

    def test_merchants_are_listed_by_issuer_in_id_order(self, store):
        for n in (3, 1, 2):
            store.put_merchant(merchant(n, bps=150 if n == 2 else None))
        store.put_merchant(merchant(9, issuer="okayama"))
        assert list(store.merchants("niimi")) == [merchant(1), merchant(2, bps=150), merchant(3)]
        assert store.get_merchant("niimi", "M-2") == merchant(2, bps=150)
        assert store.get_merchant("okayama", "M-2") is None and store.get_merchant("okayama", "M-9") == merchant(
            9, issuer="okayama")
        store.put_merchant(merchant(1, bps=50))  # a put replaces
        assert store.get_merchant("niimi", "M-1").rebate_bps == 50
        assert list(store.merchants("nowhere")) == []

    def test_terminals_are_put_and_read_back(self, store):
        t = Terminal("T-1", "niimi", Mode.STORE, "PEM", merchant_id="M-1")
        e = Terminal("T-2", "niimi", Mode.EVENT, "PEM2", TerminalStatus.DISABLED, event_id="E-1")
        store.put_terminal(t)
        store.put_terminal(e)
        assert store.get_terminal("T-1") == t and store.get_terminal("T-2") == e
        assert store.get_terminal("T-3") is None
        store.put_terminal(Terminal("T-1", "niimi", Mode.CHARGER, "PEM3"))
        assert store.get_terminal("T-1") == Terminal("T-1", "niimi", Mode.CHARGER, "PEM3")

    def test_events_are_read_back_in_utc(self, store):
        e = Event("E-1", "niimi", "秋祭り", 300, AT, datetime(2022, 10, 24, 16, tzinfo=JST), validity_months=3)
        store.put_event(e)
        back = store.get_event("E-1")
        assert back == e and back.opens_at.utcoffset().total_seconds() == 0
        assert store.get_event("E-2") is None

    # -- transactions ------------------------------------------------------------------

    def test_a_recorded_transaction_is_read_back_with_its_fingerprint(self, store, recorded):
        t = txn(idm(1), 7)
        recorded(t)
        found, fingerprint = store.get_txn(idm(1), 7)
        assert found == t and found.at.tzinfo is not None and found.at.utcoffset().total_seconds() == 0
        assert fingerprint == txn_fingerprint(t)
        assert store.get_txn(idm(1), 8) is None and store.get_txn(idm(2), 7) is None

    def test_a_cards_transactions_come_in_sequence_order(self, store, recorded):
        for seq in (12, 3, 7):
            recorded(txn(idm(1), seq, TxnKind.CHARGE if seq == 3 else TxnKind.EMONEY_PAYMENT))
        recorded(txn(idm(2), 1))
        assert [t.card_seq for t in store.card_txns(idm(1))] == [3, 7, 12]
        assert store.card_txns(idm(1))[0] == txn(idm(1), 3, TxnKind.CHARGE)
        assert store.card_txns(idm(3)) == []

    def test_charging_cards_lists_the_cards_that_charged_in_a_month_by_shard(self, store, recorded):
        for n in range(1, 7):
            recorded(txn(idm(n), 1, TxnKind.CHARGE if n != 4 else TxnKind.EMONEY_PAYMENT))
        recorded(txn(idm(1), 2, TxnKind.CHARGE))  # a second charge lists the card once
        recorded(txn(idm(7), 1, TxnKind.CHARGE, month="2022-11"))
        recorded(txn(idm(8), 1, TxnKind.CHARGE, issuer="okayama"))
        expected = sorted((idm(n) for n in (1, 2, 3, 5, 6)), key=lambda i: (ledger_keys.shard(i), i))
        assert list(store.charging_cards("niimi", "2022-10")) == expected
        assert list(store.charging_cards("niimi", "2022-11")) == [idm(7)]
        assert list(store.charging_cards("okayama", "2022-10")) == [idm(8)]
        assert list(store.charging_cards("niimi", "2022-09")) == []


class TestFake(TerminalStoreCases):
    @pytest.fixture
    def store(self):
        return FakeTerminalStore()

    @pytest.fixture
    def recorded(self, store):
        return lambda t: store.seed_txn(t, txn_fingerprint(t))


class TestDynamoDB(TerminalStoreCases):
    @pytest.fixture
    def store(self, store):
        """The terminals' store on the ledger's moto table (tests/conftest.py's `store`), and
        the payment's month bookkeeping TerminalService hands it (the rebates on that table)."""
        self.book = Rebates.on_table(store.table)
        return TerminalStore(store.table)

    @pytest.fixture
    def recorded(self, store):
        return lambda t: store.record_txn(t, txn_fingerprint(t), (), arrival_month=t.month, book=self.book)
