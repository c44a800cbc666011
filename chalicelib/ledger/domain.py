"""The point ledger's rules, pure: no AWS, no I/O, no clock.

A card holds lots; every grant makes one lot. Every change to a card is a list of
movements, each moving points into or out of one lot:

    grant, transfer_in           points enter a lot
    spend, expire, void,
    transfer_out                 points leave a lot
    cancel                       points spent earlier return to their lot

A rebate taken back (entry kind ``rebate_clawback``) is a void of its rebate lot.

Invariants (checked after every ledger test, see ``invariant_violations``):

    balance(lots, day)  == sum of remaining over lots live on that day
    every lot's remaining >= 0
    granted + transferred_in
        == spent - cancelled + expired + voided + transferred_out + outstanding

where the totals sum the movements of every entry ever written for the card and
``outstanding`` is the sum of remaining over the lots still on the card.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from .errors import InsufficientPoints, InvalidAmount, LedgerError


class Op(StrEnum):
    GRANT = "grant"
    SPEND = "spend"
    CANCEL = "cancel"
    EXPIRE = "expire"
    VOID = "void"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"


class Source(StrEnum):
    INITIAL = "initial"
    REBATE = "rebate"
    EVENT = "event"
    ADMIN = "admin"
    CAMPAIGN = "campaign"
    TRANSFER = "transfer"


class CardStatus(StrEnum):
    ISSUED = "issued"
    ACTIVE = "active"
    RETURNED = "returned"
    VOID = "void"

    @property
    def closed(self) -> bool:
        return self in (CardStatus.RETURNED, CardStatus.VOID)


@dataclass(frozen=True)
class Lot:
    lot_id: str
    amount: int
    remaining: int
    granted_at: datetime
    valid_from: date
    expires_on: date
    source: Source

    def is_live(self, day: date) -> bool:
        return self.valid_from <= day <= self.expires_on

    def is_past(self, day: date) -> bool:
        return self.expires_on < day


@dataclass(frozen=True)
class Movement:
    lot_id: str
    op: Op
    amount: int
    expires_on: date


@dataclass(frozen=True)
class Change:
    """What one operation does to a card: its lots afterwards and the movements."""

    lots: tuple[Lot, ...]
    movements: tuple[Movement, ...]

    def total(self, op: Op) -> int:
        return sum(m.amount for m in self.movements if m.op is op)


# --- card identifiers ------------------------------------------------------------


def is_idm(text: str) -> bool:
    """A FeliCa IDm as stored and sent: 16 lowercase hexadecimal digits."""
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text)


def is_card_number(text: str) -> bool:
    """A printed card number: JW and 15 digits (17 characters)."""
    return len(text) == 17 and text.startswith("JW") and text[2:].isascii() and text[2:].isdigit()


# --- dates -----------------------------------------------------------------------


def add_months(day: date, months: int) -> date | None:
    """The same day number `months` later, or None when that month is too short."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    if day.day > _calendar.monthrange(year, month)[1]:
        return None
    return date(year, month, day.day)


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, _calendar.monthrange(year, month)[1])


def expiry_date(start: date, months: int) -> date:
    """Last valid day of a period of `months` months that includes day `start`.

    Civil Code §143: the period ends the day before the corresponding day; with no
    corresponding day, it ends on the last day of that month.
    2022-10-24 + 6 → 2023-04-23; 2023-08-31 + 6 → 2024-02-29.
    """
    corresponding = add_months(start, months)
    if corresponding is None:
        index = start.year * 12 + start.month - 1 + months
        return last_day_of_month(index // 12, index % 12 + 1)
    return corresponding - timedelta(days=1)


def dormancy_deadline(last_activity: date, months: int) -> date:
    """Last day of the `months`-month period counted from the day after `last_activity`."""
    return expiry_date(last_activity + timedelta(days=1), months)


def is_dormant(last_activity: date, months: int, today: date) -> bool:
    return today > dormancy_deadline(last_activity, months)


# --- lots ------------------------------------------------------------------------


def balance(lots: Iterable[Lot], day: date) -> int:
    return sum(lot.remaining for lot in lots if lot.is_live(day))


def live_lots(lots: Iterable[Lot], day: date) -> list[Lot]:
    return sorted((lot for lot in lots if lot.is_live(day) and lot.remaining > 0), key=spend_order)


def spend_order(lot: Lot) -> tuple[date, datetime, str]:
    """Earliest expiry first, then earliest grant."""
    return (lot.expires_on, lot.granted_at, lot.lot_id)


def _require_positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(amount)


def _tidy(lots: Iterable[Lot], day: date) -> tuple[Lot, ...]:
    """Drop lots that are past and empty: nothing can return to them any more
    (a cancel restoring into a past lot records the points as expired instead)."""
    return tuple(lot for lot in lots if not (lot.is_past(day) and lot.remaining == 0))


def grant(
    lots: Sequence[Lot],
    day: date,
    *,
    lot_id: str,
    amount: int,
    granted_at: datetime,
    valid_from: date,
    validity_months: int,
    source: Source,
) -> Change:
    _require_positive(amount)
    lot = Lot(
        lot_id=lot_id,
        amount=amount,
        remaining=amount,
        granted_at=granted_at,
        valid_from=valid_from,
        expires_on=expiry_date(valid_from, validity_months),
        source=source,
    )
    return Change(
        lots=_tidy([*lots, lot], day),
        movements=(Movement(lot_id, Op.GRANT, amount, lot.expires_on),),
    )


@dataclass(frozen=True)
class SpendOutcome:
    change: Change
    spent: int
    shortfall: int


def spend(lots: Sequence[Lot], amount: int, day: date, *, allow_shortfall: bool) -> SpendOutcome:
    """Spend `amount` on `day`, earliest-expiring lots first.

    With `allow_shortfall`, spends what there is and reports the rest as shortfall;
    without it, an insufficient balance is refused with the balance in the error.
    """
    _require_positive(amount)
    available = balance(lots, day)
    if available < amount and not allow_shortfall:
        raise InsufficientPoints(balance=available, requested=amount)
    to_spend = min(amount, available)
    taken: dict[str, int] = {}
    movements: list[Movement] = []
    left = to_spend
    for lot in live_lots(lots, day):
        if left == 0:
            break
        take = min(lot.remaining, left)
        taken[lot.lot_id] = take
        movements.append(Movement(lot.lot_id, Op.SPEND, take, lot.expires_on))
        left -= take
    new_lots = [replace(lot, remaining=lot.remaining - taken.get(lot.lot_id, 0)) for lot in lots]
    return SpendOutcome(
        change=Change(lots=_tidy(new_lots, day), movements=tuple(movements)),
        spent=to_spend,
        shortfall=amount - to_spend,
    )


def cancel_spend(lots: Sequence[Lot], spent: Sequence[Movement], day: date) -> Change:
    """Return each spent portion to its original lot with its original expiry;
    a portion whose lot is already past is recorded as expired at once."""
    by_id = {lot.lot_id: lot for lot in lots}
    movements: list[Movement] = []
    for portion in spent:
        movements.append(replace(portion, op=Op.CANCEL))
        if portion.expires_on < day:
            movements.append(replace(portion, op=Op.EXPIRE))
            continue
        lot = by_id.get(portion.lot_id)
        if lot is None:
            raise LedgerError(f"lot {portion.lot_id} of a live spend is missing from the card")
        by_id[lot.lot_id] = replace(lot, remaining=lot.remaining + portion.amount)
    return Change(lots=_tidy(by_id.values(), day), movements=tuple(movements))


def expire(lots: Sequence[Lot], day: date) -> Change:
    """Record every lot past its expiry on `day` as expired and drop it."""
    movements = tuple(
        Movement(lot.lot_id, Op.EXPIRE, lot.remaining, lot.expires_on)
        for lot in lots
        if lot.is_past(day) and lot.remaining > 0
    )
    return Change(lots=tuple(lot for lot in lots if not lot.is_past(day)), movements=movements)


def _empty_card(lots: Sequence[Lot], day: date, op: Op) -> Change:
    """Take every point off the card: past lots expire, the rest leave by `op`.
    Emptied lots stay until they are past, so a later cancel of an earlier payment
    can still return its points to them."""
    movements = tuple(
        Movement(lot.lot_id, Op.EXPIRE if lot.is_past(day) else op, lot.remaining, lot.expires_on)
        for lot in lots
        if lot.remaining > 0
    )
    return Change(lots=_tidy((replace(lot, remaining=0) for lot in lots), day), movements=movements)


def void(lots: Sequence[Lot], day: date) -> Change:
    return _empty_card(lots, day, Op.VOID)


def take_back(lots: Sequence[Lot], lot_id: str, points: int, day: date) -> Change | None:
    """Void up to `points` of what remains of lot `lot_id`, if it is live on `day`: a
    rebate taken back after one of its payments was cancelled (§6.2). None when nothing
    can be taken (the lot is spent, past, or not on the card)."""
    _require_positive(points)
    lot = next((lot for lot in lots if lot.lot_id == lot_id), None)
    if lot is None or not lot.is_live(day) or lot.remaining == 0:
        return None
    taken = min(points, lot.remaining)
    after = [replace(x, remaining=x.remaining - taken) if x.lot_id == lot_id else x for x in lots]
    return Change(lots=_tidy(after, day), movements=(Movement(lot_id, Op.VOID, taken, lot.expires_on),))


@dataclass(frozen=True)
class TransferOutcome:
    source: Change
    target: Change


def transfer(
    source_lots: Sequence[Lot], target_lots: Sequence[Lot], day: date, *, lot_prefix: str
) -> TransferOutcome:
    """Move every unexpired lot to the target card, keeping validity and expiry."""
    out = _empty_card(source_lots, day, Op.TRANSFER_OUT)
    moved = [lot for lot in source_lots if lot.remaining > 0 and not lot.is_past(day)]
    new_lots = [
        replace(lot, lot_id=f"{lot_prefix}.{i}", amount=lot.remaining, source=Source.TRANSFER)
        for i, lot in enumerate(moved)
    ]
    return TransferOutcome(
        source=out,
        target=Change(
            lots=_tidy([*target_lots, *new_lots], day),
            movements=tuple(
                Movement(lot.lot_id, Op.TRANSFER_IN, lot.remaining, lot.expires_on) for lot in new_lots
            ),
        ),
    )


# --- accounting ------------------------------------------------------------------


@dataclass
class Totals:
    """Movements summed by op, over any set of entries."""

    by_op: dict[Op, int] = field(default_factory=lambda: {op: 0 for op in Op})

    def add(self, movements: Iterable[Movement]) -> Totals:
        for m in movements:
            self.by_op[m.op] += m.amount
        return self

    def __getitem__(self, op: Op) -> int:
        return self.by_op[op]


def invariant_violations(totals: Totals, lots: Sequence[Lot]) -> list[str]:
    """Every broken ledger invariant, in words; empty when the card is sound."""
    problems = [f"lot {lot.lot_id} has remaining {lot.remaining}" for lot in lots if lot.remaining < 0]
    problems += [
        f"lot {lot.lot_id} has remaining {lot.remaining} above its amount {lot.amount}"
        for lot in lots
        if lot.remaining > lot.amount
    ]
    t = totals
    inflow = t[Op.GRANT] + t[Op.TRANSFER_IN]
    outstanding = sum(lot.remaining for lot in lots)
    accounted = (
        t[Op.SPEND] - t[Op.CANCEL] + t[Op.EXPIRE] + t[Op.VOID] + t[Op.TRANSFER_OUT] + outstanding
    )
    if inflow != accounted:
        problems.append(f"granted {inflow} != accounted {accounted} ({t.by_op}, outstanding {outstanding})")
    return problems


# --- cards, issuers, entries -------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    """Per-issuer settings; the defaults are Niimi City's."""

    issuer_id: str
    point_name: str = "にーみんポイント"
    time_zone: str = "Asia/Tokyo"
    validity_months: int = 6
    rebate_bps: int = 100
    dormancy_months: int = 60
    closures: tuple[date, ...] = ()
    # E-money (payments, and charges apart) one terminal and one card may have recorded
    # per day, in yen (§6.2): a terminal's key cannot claim more than this in a day.
    emoney_terminal_daily_yen: int = 1_000_000
    emoney_card_daily_yen: int = 100_000
    # A record earns a rebate only once matched in the acquirer's settlement file (§6.2).
    # None: the stage's default (Settings.reconciliation: on when deployed, off locally).
    reconciliation: bool | None = None

    def requires_reconciliation(self, stage_default: bool) -> bool:
        return stage_default if self.reconciliation is None else self.reconciliation

    def local_date(self, instant: datetime) -> date:
        from zoneinfo import ZoneInfo

        return instant.astimezone(ZoneInfo(self.time_zone)).date()


@dataclass(frozen=True)
class Actor:
    """Who made a change: a terminal (of a merchant), an operator, or a job."""

    kind: str
    id: str
    merchant: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("kind", self.kind), ("id", self.id), ("merchant", self.merchant)) if v}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Actor:
        return cls(kind=data["kind"], id=data["id"], merchant=data.get("merchant"))


@dataclass(frozen=True)
class Card:
    idm: str
    card_number: str
    issuer: str
    status: CardStatus
    lots: tuple[Lot, ...] = ()
    seq: int = 0
    head: str = "0" * 64
    last_activity: date | None = None


@dataclass(frozen=True)
class Entry:
    """One change to one card, as it is chained and stored."""

    card: str
    seq: int
    kind: str
    at: datetime
    day: date
    actor: Actor
    request: str
    movements: tuple[Movement, ...]
    reason: str | None = None
    ref: str | None = None
    result: dict = field(default_factory=dict)

    def body(self) -> dict:
        body = {
            "card": self.card,
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "day": self.day.isoformat(),
            "actor": self.actor.as_dict(),
            "request": self.request,
            "movements": [[m.lot_id, m.op.value, m.amount, m.expires_on.isoformat()] for m in self.movements],
            "result": self.result,
        }
        if self.reason is not None:
            body["reason"] = self.reason
        if self.ref is not None:
            body["ref"] = self.ref
        return body

    @classmethod
    def from_body(cls, body: dict) -> Entry:
        return cls(
            card=body["card"],
            seq=body["seq"],
            kind=body["kind"],
            at=datetime.fromisoformat(body["at"]),
            day=date.fromisoformat(body["day"]),
            actor=Actor.from_dict(body["actor"]),
            request=body["request"],
            movements=movements_from_json(body["movements"]),
            reason=body.get("reason"),
            ref=body.get("ref"),
            result=body.get("result", {}),
        )


def movements_from_json(rows: Iterable[Sequence]) -> tuple[Movement, ...]:
    return tuple(Movement(lot, Op(op), amount, date.fromisoformat(exp)) for lot, op, amount, exp in rows)
