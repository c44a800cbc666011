"""Terminal API errors: one root, one subclass per rule, each with a stable code. The
root derives from the shared ChiikiError; the ledger's rules a terminal meets (a card of
another issuer, a closed card, a bad amount or request) raise the ledger's errors."""

from __future__ import annotations

from .. import observability
from ..errors import ChiikiError


class TerminalError(ChiikiError):
    code = "terminal_error"


class SignatureRejected(TerminalError):
    """The request's signature does not stand: nothing was done. `key_id` is the terminal
    the request claimed to come from (unverified), for the operators' log."""

    code = "bad_signature"
    http_status = 401

    def __init__(self, reason: str, code: str | None = None, key_id: str | None = None) -> None:
        super().__init__(reason)
        if code:
            self.code = code
        self.key_id = key_id

    def observe(self) -> None:
        """The alarm counts these (a spike means replays, a device with a wrong clock or
        someone forging a terminal). `terminal` is the id the request claimed, so an
        operator can find the device."""
        observability.count(observability.SIGNATURE_REJECTED)
        observability.logger().info("signature rejected", extra={"code": self.code, "terminal": self.key_id})


class NonceReused(SignatureRejected):
    code = "nonce_reused"

    def __init__(self, key_id: str | None = None) -> None:
        super().__init__("this signature's nonce was already used", key_id=key_id)


class InvalidBody(TerminalError):
    code = "invalid_request"


class ModeNotAllowed(TerminalError):
    code = "operation_not_allowed"
    http_status = 403

    def __init__(self, mode: str, operation: str) -> None:
        super().__init__(f"a {mode} terminal cannot do {operation}")


class UnknownRecord(TerminalError):
    code = "not_found"
    http_status = 404


class RecordConflict(TerminalError):
    code = "record_conflict"
    http_status = 409


class EventClosed(TerminalError):
    code = "event_closed"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("the event is not open for check-in now")


class AlreadyCheckedIn(TerminalError):
    code = "already_checked_in"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("this card has already checked in to this event")


class AlreadyCancelled(TerminalError):
    code = "already_cancelled"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("this payment has already been cancelled")


class RecordRefused(TerminalError):
    """An e-money payment or charge record refused by a limit that stops minting through
    records (§6.2): nothing is written. Counted in the EmoneyRecordRefused metric, with
    `reason` as its dimension, for the records-refused alarm."""

    code = "record_refused"
    http_status = 409
    reason = "refused"
    terminal: str | None = None  # the refused terminal, for the operators' log

    def observe(self) -> None:
        """A spike means a terminal key claiming payments that no card made, or limits set
        too low for a busy store."""
        observability.count(observability.EMONEY_RECORD_REFUSED, reason=self.reason)
        observability.logger().info("e-money record refused", extra={"code": self.code, "terminal": self.terminal})


class AmountOverLimit(RecordRefused):
    code = "amount_over_limit"
    http_status = 400
    reason = "amount"

    def __init__(self, limit: int) -> None:
        super().__init__(f"one e-money record is at most {limit} yen (the card's own e-money limit)")


class TerminalDailyLimit(RecordRefused):
    code = "terminal_daily_limit"
    reason = "terminal_day"

    def __init__(self, limit: int) -> None:
        super().__init__(f"this terminal has recorded its limit of {limit} yen of e-money today")


class CardDailyLimit(RecordRefused):
    code = "card_daily_limit"
    reason = "card_day"

    def __init__(self, limit: int) -> None:
        super().__init__(f"this card has had its limit of {limit} yen of e-money recorded today")


class TxnChanged(Exception):
    """The record changed between our read and our write (a concurrent cancel or match).
    Internal, not an API error: the caller reads the record again (the reconciliation's
    match) or answers AlreadyCancelled."""
