"""Merchants, terminals, events and the card transactions terminals report. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class Mode(StrEnum):
    STORE = "store"
    EVENT = "event"
    CHARGER = "charger"


class Operation(StrEnum):
    BALANCE = "balance"
    POINT_PAYMENT = "point_payment"
    POINT_PAYMENT_CANCEL = "point_payment_cancel"
    EMONEY_PAYMENT = "emoney_payment"
    EMONEY_PAYMENT_CANCEL = "emoney_payment_cancel"
    CHARGE = "charge"
    CHECKIN = "checkin"


ALLOWED: dict[Mode, frozenset[Operation]] = {
    Mode.STORE: frozenset(
        {
            Operation.BALANCE,
            Operation.POINT_PAYMENT,
            Operation.POINT_PAYMENT_CANCEL,
            Operation.EMONEY_PAYMENT,
            Operation.EMONEY_PAYMENT_CANCEL,
        }
    ),
    Mode.CHARGER: frozenset({Operation.BALANCE, Operation.CHARGE}),
    Mode.EVENT: frozenset({Operation.BALANCE, Operation.CHECKIN}),
}


class TerminalStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    issuer: str
    name: str
    area: str
    category: str
    rebate_bps: int | None = None  # overrides the issuer's rate for e-money payments here


@dataclass(frozen=True)
class Terminal:
    """A store, charging or event device. Its id is the signature's keyid."""

    terminal_id: str
    issuer: str
    mode: Mode
    public_key: str  # PEM (SubjectPublicKeyInfo) of its Ed25519 key
    status: TerminalStatus = TerminalStatus.ACTIVE
    merchant_id: str | None = None
    event_id: str | None = None

    def allows(self, operation: Operation) -> bool:
        return operation in ALLOWED[self.mode]


@dataclass(frozen=True)
class Event:
    event_id: str
    issuer: str
    name: str
    points: int
    opens_at: datetime
    closes_at: datetime
    validity_months: int | None = None  # None: the issuer's

    def is_open(self, now: datetime) -> bool:
        return self.opens_at <= now < self.closes_at


# One e-money payment or charge record is at most what an ICOCA card can hold as e-money
# (20,000 yen, §6.2, §7): a larger claim cannot be a real card transaction.
EMONEY_MAX_YEN = 20_000
AWAITING = "awaiting"  # CardTxn.reconcile: recorded, not yet in the acquirer's settlement file
MATCHED = "matched"  # matched by one settlement line


class TxnKind(StrEnum):
    EMONEY_PAYMENT = "emoney_payment"
    CHARGE = "charge"


@dataclass(frozen=True)
class DailyLimit:
    """The issuer's cap on the yen one terminal, or one card (per kind of record), may
    have recorded on one day: the issuer's date as the records arrive, whatever time they
    report, so a key cannot spread its claims over past days (§6.2)."""

    scope: str  # "terminal" or "card"
    subject: str  # the terminal id, or the card's IDm
    kind: TxnKind
    day: date
    limit: int  # yen

    def admits(self, amount: int) -> bool:
        """Whether one record of `amount` can fit in an empty day (checked before the write)."""
        return amount <= self.limit


@dataclass(frozen=True)
class MonthCharge:
    """A charge as its card's month keeps it for the campaign job (store.CardMonthItem):
    what a campaign counts, without the rest of the record."""

    at: datetime
    card_seq: int
    amount: int
    charge_kind: str | None


@dataclass(frozen=True)
class CardTxn:
    """An e-money payment or a charge, recorded once per card transaction sequence number."""

    kind: TxnKind
    issuer: str
    idm: str
    card_seq: int
    amount: int
    at: datetime
    month: str  # YYYY-MM in the issuer's time zone
    terminal_id: str
    merchant_id: str | None
    request_id: str
    charge_kind: str | None = None
    rebate_bps: int | None = None
    cancelled: bool = False
    cancel_request_id: str | None = None
    counted_on: date | None = None  # the day whose daily limits it counts in (see DailyLimit)
    # Under reconciliation (§6.2) an e-money payment is AWAITING until a settlement line
    # matches it (then MATCHED, by `matched_line`); None: recorded without reconciliation.
    reconcile: str | None = None
    matched_line: str | None = None

    def fingerprint_fields(self) -> dict:
        """What makes two reports the same transaction. Not the request id, which a resend
        may renew, nor the reported time, which a clerk recording it twice would."""
        return {
            "kind": self.kind.value,
            "idm": self.idm,
            "card_seq": self.card_seq,
            "amount": self.amount,
            "merchant": self.merchant_id,
            "charge_kind": self.charge_kind,
        }
