"""Errors shared below the contexts, so that chalicelib/table.py can raise one without
importing a context (the arrows run ledger -> table, never back).

`ChiikiError` is the one root: each context's errors.py has its own root deriving from
it (`LedgerError`, `TerminalError`, `CampaignError`, `OperatorError`, `ImportsError`,
`ReportsError`, `MyPageError`). Each error carries what its answer needs: a stable code,
its HTTP status, its body and headers; one that operators watch counts itself
(`observe`). So chalicelib/http.py turns any of them into a response without importing a
context.

`Busy` is a change that met another at the same moment (the ledger's `LedgerBusy` is
one), and `Contended` what table.py raises when DynamoDB cancels a transaction for a
conflict. chalicelib/ledger/errors.py re-exports `Contended`, so
`ledger.errors.Contended` is this same class."""

from __future__ import annotations


class ChiikiError(Exception):
    """The root of every context's errors. Never raised itself: a context raises its own."""

    code = "error"
    http_status = 400

    def body(self) -> dict:
        return {"code": self.code, "message": str(self)}

    def headers(self) -> dict[str, str]:
        return {}

    def observe(self) -> None:
        """Count and log this refusal, for one that operators watch (an alarm on it)."""


class Busy(ChiikiError):
    code = "busy"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("the card is being changed by another request; try again")


class Contended(Busy):
    """DynamoDB cancelled a transaction because another one was changing the same item at
    that moment (TransactionConflict). Nothing was written; trying again is safe."""
