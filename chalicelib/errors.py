"""Errors shared below the contexts, so that chalicelib/table.py can raise one without
importing a context (the arrows run ledger -> table, never back).

`LedgerError` is the root every context's errors derive from today (each carries a
stable code; chalicelib/http.py turns them into responses), `LedgerBusy` a change that
met another at the same moment, and `Contended` what table.py raises when DynamoDB
cancels a transaction for a conflict. chalicelib/ledger/errors.py re-exports all three,
so `ledger.errors.LedgerError` and `ledger.errors.Contended` are these same classes."""

from __future__ import annotations


class LedgerError(Exception):
    code = "ledger_error"


class LedgerBusy(LedgerError):
    code = "busy"

    def __init__(self) -> None:
        super().__init__("the card is being changed by another request; try again")


class Contended(LedgerBusy):
    """DynamoDB cancelled a transaction because another one was changing the same item at
    that moment (TransactionConflict). Nothing was written; trying again is safe."""
