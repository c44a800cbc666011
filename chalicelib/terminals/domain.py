"""Merchants, terminals, events and the card transactions terminals report. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from ..ledger.domain import rebate_points


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
class RebateRate:
    """A campaign period's e-money rebate rate, for every merchant of the issuer or
    for one, on the days from `starts_on` to `ends_on` (inclusive, issuer's time zone)."""

    rate_id: str
    issuer: str
    bps: int
    starts_on: date
    ends_on: date
    merchant_id: str | None = None

    def applies(self, merchant_id: str | None, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on and self.merchant_id in (None, merchant_id)


def rebate_bps(issuer_bps: int, merchant: Merchant | None, periods: Iterable[RebateRate], day: date) -> int:
    """The rate an e-money payment on `day` earns, most specific first: a campaign
    period for this merchant, one for all merchants, the merchant's own rate, the issuer's."""
    merchant_id = merchant.merchant_id if merchant else None
    live = [p for p in periods if p.applies(merchant_id, day)]
    for period in sorted(live, key=lambda p: (p.merchant_id is None, p.starts_on, p.rate_id)):
        return period.bps
    if merchant is not None and merchant.rebate_bps is not None:
        return merchant.rebate_bps
    return issuer_bps


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


@dataclass(frozen=True)
class Accrual:
    """One card's e-money payments in one month: the rebate job's input."""

    idm: str
    month: str
    yen: int
    weighted: int  # Σ amount × rate in basis points
    payments: int
    closed: bool = False  # settled by the rebate job


@dataclass(frozen=True)
class RebateAccount:
    """A card's settled months: what they earn as they stand now, what was granted."""

    idm: str
    earned: int = 0
    granted: int = 0
    revision: int | None = None  # None: no account yet

    @property
    def carried(self) -> int:
        return self.earned - self.granted


def rebate_request_id(issuer: str, month: str, idm: str) -> str:
    """The request id of the rebate grant for a card's month: the rebate job grants under
    it, once; a cancel finds that month's rebate lot by it."""
    return f"rebate:{issuer}:{month}:{idm}"


def rebate_owed_back(weighted: int, txn: CardTxn) -> int:
    """What a settled month's rebate falls by when payment `txn` leaves its sums."""
    return rebate_points(weighted) - rebate_points(weighted - txn.amount * (txn.rebate_bps or 0))
