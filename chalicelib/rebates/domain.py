"""The rebate's rules, pure (§6.2): which rate an e-money payment earns, the accrual
arithmetic of a card's month (`weighted` = Σ amount × rate in basis points, earning
floor(weighted / 10,000) points), the carry-forward of settled months into the next
rebate, and what a cancel takes back from a settled month's rebate. No AWS, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ..terminals.domain import CardTxn, Merchant

BASIS_POINTS = 10_000


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


def rebate_points(weighted: int) -> int:
    """What a month's e-money payments earn, from `weighted` = Σ amount × rate in basis
    points: floor(total × rate), computed once over the month so no yen is lost per payment."""
    return max(0, weighted) // BASIS_POINTS


def rebate_to_grant(due: int, carried: int) -> int:
    """The rebate to grant for a month that earned `due`. `carried` is what the months
    already settled earn as they stand now, less what was granted for them: negative
    after one of their payments was cancelled, positive after a late record. A negative
    carry is taken from this rebate, never below zero and never from points held."""
    return max(0, due + carried)


def weighted_change(txn: CardTxn, sign: int) -> int:
    """What payment `txn` adds to (sign 1) or takes from (sign -1) its month's `weighted`."""
    return sign * txn.amount * (txn.rebate_bps or 0)


def earned_change(settled_weighted: int, change: int) -> int:
    """How much more (or less) a settled month earns when its `weighted` moves by `change`:
    carried into the card's next rebate through its rebate account."""
    return rebate_points(settled_weighted + change) - rebate_points(settled_weighted)


def rebate_owed_back(weighted: int, txn: CardTxn) -> int:
    """What a settled month's rebate falls by when payment `txn` leaves its sums."""
    return rebate_points(weighted) - rebate_points(weighted - txn.amount * (txn.rebate_bps or 0))
