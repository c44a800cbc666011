"""An in-memory `TerminalStore` (chalicelib/terminals/store.py), its directory and its
transaction reads only: merchants, terminals, events (put and get) and `get_txn`,
`card_txns`, `charging_cards`.

Recording, cancelling and matching a transaction (with the months, the rebate accounts
and the day totals they move) are not faked: that bookkeeping is moving to the `rebates`
context. A test gives the fake its transactions with `seed_txn` (what `record_txn` would
have put); `charging_cards` lists, like the real store's CHARGES partitions, the cards
with a charge recorded in the month. Instants come back in UTC, as the real store's
attributes give them. tests/contract/test_terminal_store.py holds the cases both
stores pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC

from chalicelib.ledger import keys as ledger_keys
from chalicelib.terminals import keys
from chalicelib.terminals.domain import CardTxn, Event, Merchant, Terminal, TxnKind


class FakeTerminalStore:
    def __init__(self) -> None:
        self.merchants_by_key: dict[tuple[str, str], Merchant] = {}  # (issuer, merchant id) → merchant
        self.terminals: dict[str, Terminal] = {}
        self.events: dict[str, Event] = {}
        self.txns: dict[tuple[str, int], tuple[CardTxn, str]] = {}  # (IDm, card seq) → txn, fingerprint

    # -- registry -----------------------------------------------------------------

    def put_merchant(self, m: Merchant) -> None:
        self.merchants_by_key[(m.issuer, m.merchant_id)] = m

    def get_merchant(self, issuer: str, merchant_id: str) -> Merchant | None:
        return self.merchants_by_key.get((issuer, merchant_id))

    def merchants(self, issuer: str) -> Iterator[Merchant]:
        found = [m for (i, _), m in self.merchants_by_key.items() if i == issuer]
        yield from sorted(found, key=lambda m: keys.merchant(issuer, m.merchant_id)[1])

    def put_terminal(self, t: Terminal) -> None:
        self.terminals[t.terminal_id] = t

    def get_terminal(self, terminal_id: str) -> Terminal | None:
        return self.terminals.get(terminal_id)

    def put_event(self, e: Event) -> None:
        self.events[e.event_id] = replace(e, opens_at=e.opens_at.astimezone(UTC), closes_at=e.closes_at.astimezone(UTC))

    def get_event(self, event_id: str) -> Event | None:
        return self.events.get(event_id)

    # -- card transactions ----------------------------------------------------------

    def seed_txn(self, txn: CardTxn, fingerprint: str) -> None:
        """A transaction as `record_txn` would have put it (a test's setup; no bookkeeping)."""
        self.txns[(txn.idm, txn.card_seq)] = (replace(txn, at=txn.at.astimezone(UTC)), fingerprint)

    def get_txn(self, idm: str, card_seq: int) -> tuple[CardTxn, str] | None:
        return self.txns.get((idm, card_seq))

    def card_txns(self, idm: str) -> list[CardTxn]:
        mine = [(keys.txn(i, seq)[1], txn) for (i, seq), (txn, _) in self.txns.items() if i == idm]
        return [txn for _, txn in sorted(mine, key=lambda pair: pair[0])]

    def charging_cards(self, issuer: str, month: str) -> Iterator[str]:
        charged = {
            txn.idm for txn, _ in self.txns.values()
            if txn.kind is not TxnKind.EMONEY_PAYMENT and txn.issuer == issuer and txn.month == month
        }
        for _, sk in sorted(keys.charges(issuer, month, idm) for idm in charged):
            yield sk.removeprefix(ledger_keys.CARD)


class NoRebates:
    """The rebates a terminal service on the fake stores is built with: the fake records no
    payment, so nothing may ask for a rebate's month or rate (a test that does fails here
    rather than reaching for a table the fake ledger has not got)."""

    def __getattr__(self, name: str):
        raise AssertionError(f"a service on the fake stores records no e-money payment (Rebates.{name})")
