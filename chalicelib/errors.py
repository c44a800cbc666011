"""Errors shared below the contexts, so that chalicelib/table.py can raise one without
importing a context (the arrows run ledger -> table, never back).

`ChiikiError` is the one root: each context's errors.py has its own root deriving from
it (`LedgerError`, `TerminalError`, `CampaignError`, `OperatorError`, `ImportsError`,
`ReportsError`, `MyPageError`), each error carries a stable code, and chalicelib/http.py
turns any of them into a response. `Busy` is a change that met another at the same
moment (the ledger's `LedgerBusy` is one), and `Contended` what table.py raises when
DynamoDB cancels a transaction for a conflict. chalicelib/ledger/errors.py re-exports
`Contended`, so `ledger.errors.Contended` is this same class."""

from __future__ import annotations


class ChiikiError(Exception):
    """The root of every context's errors. Never raised itself: a context raises its own."""

    code = "error"


class Busy(ChiikiError):
    code = "busy"

    def __init__(self) -> None:
        super().__init__("the card is being changed by another request; try again")


class Contended(Busy):
    """DynamoDB cancelled a transaction because another one was changing the same item at
    that moment (TransactionConflict). Nothing was written; trying again is safe."""
