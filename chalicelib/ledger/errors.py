"""Ledger errors: one root, one subclass per rule. Each carries a stable code.

The root `LedgerError` derives from the shared `ChiikiError` (chalicelib/errors.py).
`Contended` is defined there (table.py raises it and imports no context) and re-exported
here. Other contexts raise some of these where the rule is the ledger's: a card of
another issuer (`WrongIssuer`), a closed card (`CardClosed`), an amount that is not a
positive integer (`InvalidAmount`), a malformed request (`InvalidRequest`)."""

from __future__ import annotations

from ..errors import Busy, ChiikiError, Contended  # noqa: F401  (Contended re-exported)


class LedgerError(ChiikiError):
    code = "ledger_error"


class LedgerBusy(LedgerError, Busy):
    """The card was being changed by other requests on every try: nothing was done."""

    code = "busy"
    http_status = 503


class InvalidAmount(LedgerError):
    code = "invalid_amount"

    def __init__(self, amount: object) -> None:
        super().__init__(f"amount must be a positive integer, got {amount!r}")
        self.amount = amount


class InvalidRequest(LedgerError):
    code = "invalid_request"


class InsufficientPoints(LedgerError):
    code = "insufficient_points"
    http_status = 409

    def __init__(self, *, balance: int, requested: int) -> None:
        super().__init__(f"balance {balance} is less than {requested}")
        self.balance = balance
        self.requested = requested

    def body(self) -> dict:
        return {**super().body(), "balance": self.balance}


class UnknownIssuer(LedgerError):
    code = "unknown_issuer"
    http_status = 404

    def __init__(self, issuer_id: str) -> None:
        super().__init__(f"no issuer {issuer_id!r}")


class CardNotFound(LedgerError):
    code = "card_not_found"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("no such card")


class CardAlreadyExists(LedgerError):
    code = "card_exists"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("a card with this IDm or card number already exists")


class CardClosed(LedgerError):
    code = "card_closed"
    http_status = 409

    def __init__(self, status: str) -> None:
        super().__init__(f"the card is {status}")
        self.status = status


class WrongIssuer(LedgerError):
    code = "wrong_issuer"
    http_status = 403

    def __init__(self) -> None:
        super().__init__("the card belongs to another issuer")


class IdempotencyConflict(LedgerError):
    code = "request_id_reused"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("this request id was already used for a different request")


class SpendNotFound(LedgerError):
    code = "spend_not_found"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("no point payment with that request id on this card")


class NotYourSpend(LedgerError):
    code = "not_your_spend"
    http_status = 403

    def __init__(self) -> None:
        super().__init__("only the merchant that took a point payment may cancel it")


class AlreadyCancelled(LedgerError):
    code = "already_cancelled"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("this point payment has already been cancelled")


class InitialAlreadyGranted(LedgerError):
    code = "initial_already_granted"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("the card already had its initial grant")


class NothingToTakeBack(LedgerError):
    """The rebate lot to take points back from is gone, spent, past or was never granted:
    nothing was written (the caller carries the difference into later rebates instead)."""

    code = "nothing_to_take_back"
