"""Terminals context items in the application table:

    MERCHANTS#<issuer>           MERCHANT#<id>   a member store (the partition is the directory)
    TERMINAL#<id>                TERMINAL        a terminal and its public key
    EVENT#<id>                   EVENT           an event and its check-in window
    CARD#<idm>                   TXN#<seq>       an e-money payment or charge, by the card's sequence number
    EMONEY_DAY#<terminal>#<day>  EMONEY_DAY      yen the terminal had recorded that day (daily limit)
    CARD#<idm>                   EMONEY_DAY#<kind>#<day>  yen of that kind recorded for the card that day
    CHARGES#<iss>#<month>#<sh>   CARD#<idm>      the card charged in that month (campaign job input)
    CARD#<idm>                   CHARGED#<month> the card's charges of that month in brief (seq, instant,
                                                 yen, kind): what the campaign job reads of a card

A charge is appended to its card-month's brief in its record's own transaction (once: the
record's put is conditional), so the campaign job reads a card's campaign months with one
query of a few items instead of the card's whole TXN history.

A transaction DynamoDB cancels for a conflict with another one (Contended) is built and
sent again after a random pause, a bounded number of times (`commit_retrying`), as the
ledger does; the terminal gets Contended (503) only when every try lost.

A record adds its yen to its terminal's and its card's day totals in its own transaction,
each under the condition that the issuer's daily limit still holds after it, so records
racing each other cannot overshoot and a refused record writes nothing. The totals
expire by TTL a day after their day.

An e-money payment (its record, its cancel, its match to a settlement line) moves its
month's accrual in the same transaction: the rebates context's items, written as the
`Write`s a `MonthBook` (chalicelib/rebates/service.py, `Rebates`) hands over. This store
only commits them: it computes no rebate and imports no other context's store. When a
write to the month is refused (the rebate job settled it meanwhile), the month is read
again through the book and written again under its sums as read. A cancel that takes the
rebate back from the month's lot commits the same writes (`settled_cancel_writes`) in the
ledger entry's own transaction.

Under reconciliation (§6.2, chalicelib/reconciliation/) a payment is recorded AWAITING
(the book's writes then add to the month's pending sums and list it as awaiting its
settlement line); `match_txn` moves it into what earns when a line matches it, with the
reconciliation's own writes (the line's unmatched mark deleted) in the same transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from time import sleep
from typing import Protocol

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import size

from ..ledger.chain import fingerprint
from ..ledger.errors import Contended
from ..rebates.errors import MonthMoved
from ..table import Claim, ClaimExists, Refused, Table, TableItem, Transaction, Write, put_claims
from . import keys
from .domain import (
    AWAITING,
    MATCHED,
    CardTxn,
    DailyLimit,
    Event,
    Merchant,
    Mode,
    MonthCharge,
    Terminal,
    TerminalStatus,
    TxnKind,
)
from .errors import TxnChanged


class MerchantItem(TableItem, discriminator="merchant"):
    issuer = UnicodeAttribute()
    name = UnicodeAttribute()
    area = UnicodeAttribute()
    category = UnicodeAttribute()
    rebate_bps = NumberAttribute(null=True)


class TerminalItem(TableItem, discriminator="terminal"):
    issuer = UnicodeAttribute()
    mode = UnicodeAttribute()
    public_key = UnicodeAttribute()
    status = UnicodeAttribute()
    merchant_id = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute(null=True)


class EventItem(TableItem, discriminator="event"):
    issuer = UnicodeAttribute()
    name = UnicodeAttribute()
    points = NumberAttribute()
    opens_at = UTCDateTimeAttribute()
    closes_at = UTCDateTimeAttribute()
    validity_months = NumberAttribute(null=True)


class TxnItem(TableItem, discriminator="txn"):
    kind = UnicodeAttribute()
    issuer = UnicodeAttribute()
    amount = NumberAttribute()
    at = UTCDateTimeAttribute()
    month = UnicodeAttribute()
    terminal_id = UnicodeAttribute()
    merchant_id = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute()
    charge_kind = UnicodeAttribute(null=True)
    rebate_bps = NumberAttribute(null=True)
    fingerprint = UnicodeAttribute()
    cancelled = BooleanAttribute(default=False)
    cancel_request_id = UnicodeAttribute(null=True)
    counted_on = UnicodeAttribute(null=True)  # the day of the daily limits it counts in
    reconcile = UnicodeAttribute(null=True)  # domain.AWAITING or MATCHED; None: not reconciled
    matched_line = UnicodeAttribute(null=True)


class ChargeMonthItem(TableItem, discriminator="charge_month"):
    issuer = UnicodeAttribute()
    month = UnicodeAttribute()


class CardMonthItem(TableItem, discriminator="card_month"):
    """A card's charges of one month in brief, `<seq>|<instant, UTC ISO>|<yen>|<kind>` each,
    in the order recorded (appended in each charge record's transaction)."""

    charges = ListAttribute(of=UnicodeAttribute)


def _brief(txn: CardTxn) -> str:
    return f"{txn.card_seq}|{txn.at.astimezone(timezone.utc).isoformat()}|{txn.amount}|{txn.charge_kind or ''}"


def _month_charge(brief: str) -> MonthCharge:
    seq, at, amount, kind = brief.split("|", 3)
    return MonthCharge(datetime.fromisoformat(at), int(seq), int(amount), kind or None)


class DayTotalItem(TableItem, discriminator="emoney_day"):
    """Yen recorded on one day for one terminal, or for one card and kind of record."""

    yen = NumberAttribute(default=0)


class TxnExists(Exception):
    def __init__(self, existing: CardTxn, fingerprint: str) -> None:
        super().__init__("a transaction with this card sequence number is already recorded")
        self.existing = existing
        self.fingerprint = fingerprint


class MonthSettled(Exception):
    """The payment's month is already settled by the rebate job: nothing was written.
    `weighted` is the month's sum as read, for the cancel's rebate take-back."""

    def __init__(self, weighted: int) -> None:
        super().__init__("the payment's month is already settled")
        self.weighted = weighted


class OverDailyLimit(Exception):
    """The record would take a day total over its issuer's limit: nothing was written."""

    def __init__(self, limit: DailyLimit) -> None:
        super().__init__(f"the {limit.scope}'s daily limit of {limit.limit} yen is reached")
        self.limit = limit


# A write to a settled month retries when the rebate job or another record moves it
# between the read and the write: a handful of times at most, in practice once.
MONTH_ATTEMPTS = 10

# DynamoDB cancels a transaction with TransactionConflict when another one is changing one
# of its items at that moment (a card's day total, its month's accrual): nothing is
# written, so a record, a cancel or a match sends it again after a short random pause
# growing with each try, as the ledger does (chalicelib/ledger/service.py), a bounded
# number of times; only then does the terminal get Contended (503, try again).
CONFLICT_ATTEMPTS = 10
CONFLICT_PAUSE = 0.002  # seconds, times the try's number: the most a pause can be


def commit_retrying(build: Callable[[], Transaction]) -> None:
    """Commit the transaction `build` makes, built and sent again after a random pause
    when DynamoDB cancels it for a conflict. Raises Refused as the commit does, or
    Contended after CONFLICT_ATTEMPTS conflicts."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            build().commit()
            return
        except Contended:
            if attempt == CONFLICT_ATTEMPTS - 1:
                raise
            sleep(random.uniform(0, CONFLICT_PAUSE * (attempt + 1)))


class MonthBook(Protocol):
    """What an e-money payment's month is written with, handed over by TerminalService:
    the rebates context's writes (chalicelib/rebates/service.py, `Rebates`), so this store
    imports no other context's store and computes no rebate."""

    def month_writes(self, txn: CardTxn, sign: int, settled: int | None, arrival_month: str | None, *,
                     moved: Callable[[], Exception] = ..., taken_back: int | None = None) -> list[Write]: ...

    def settled_weighted(self, txn: CardTxn) -> int | None: ...


def _txn_from_item(item: TxnItem) -> CardTxn:
    return CardTxn(
        kind=TxnKind(item.kind),
        issuer=item.issuer,
        idm=item.pk.removeprefix("CARD#"),
        card_seq=keys.txn_seq(item.sk),
        amount=item.amount,
        at=item.at,
        month=item.month,
        terminal_id=item.terminal_id,
        merchant_id=item.merchant_id,
        request_id=item.request_id,
        charge_kind=item.charge_kind,
        rebate_bps=item.rebate_bps,
        cancelled=item.cancelled,
        cancel_request_id=item.cancel_request_id,
        counted_on=date.fromisoformat(item.counted_on) if item.counted_on else None,
        reconcile=item.reconcile,
        matched_line=item.matched_line,
    )


class TerminalStore:
    def __init__(self, table: Table) -> None:
        self.connection = table.connection

    # -- registry -----------------------------------------------------------------

    def put_merchant(self, m: Merchant) -> None:
        MerchantItem(
            *keys.merchant(m.issuer, m.merchant_id),
            issuer=m.issuer,
            name=m.name,
            area=m.area,
            category=m.category,
            rebate_bps=m.rebate_bps,
        ).save()

    def get_merchant(self, issuer: str, merchant_id: str) -> Merchant | None:
        try:
            item = MerchantItem.get(*keys.merchant(issuer, merchant_id))
        except MerchantItem.DoesNotExist:
            return None
        return _merchant(item)

    def merchants(self, issuer: str) -> Iterator[Merchant]:
        for item in MerchantItem.query(keys.merchants(issuer)):
            yield _merchant(item)

    def put_terminal(self, t: Terminal) -> None:
        TerminalItem(
            *keys.terminal(t.terminal_id),
            issuer=t.issuer,
            mode=t.mode.value,
            public_key=t.public_key,
            status=t.status.value,
            merchant_id=t.merchant_id,
            event_id=t.event_id,
        ).save()

    def get_terminal(self, terminal_id: str) -> Terminal | None:
        try:
            item = TerminalItem.get(*keys.terminal(terminal_id), consistent_read=True)
        except TerminalItem.DoesNotExist:
            return None
        return Terminal(
            terminal_id=terminal_id,
            issuer=item.issuer,
            mode=Mode(item.mode),
            public_key=item.public_key,
            status=TerminalStatus(item.status),
            merchant_id=item.merchant_id,
            event_id=item.event_id,
        )

    def put_event(self, e: Event) -> None:
        EventItem(
            *keys.event(e.event_id),
            issuer=e.issuer,
            name=e.name,
            points=e.points,
            opens_at=e.opens_at,
            closes_at=e.closes_at,
            validity_months=e.validity_months,
        ).save()

    def get_event(self, event_id: str) -> Event | None:
        try:
            item = EventItem.get(*keys.event(event_id))
        except EventItem.DoesNotExist:
            return None
        return Event(
            event_id=event_id,
            issuer=item.issuer,
            name=item.name,
            points=item.points,
            opens_at=item.opens_at,
            closes_at=item.closes_at,
            validity_months=item.validity_months,
        )

    # -- card transactions ----------------------------------------------------------

    def get_txn(self, idm: str, card_seq: int) -> tuple[CardTxn, str] | None:
        """The recorded transaction and its fingerprint, or None."""
        try:
            item = TxnItem.get(*keys.txn(idm, card_seq), consistent_read=True)
        except TxnItem.DoesNotExist:
            return None
        return _txn_from_item(item), item.fingerprint

    def record_txn(
        self, txn: CardTxn, fingerprint: str, claims: Sequence[Claim], *, arrival_month: str, book: MonthBook,
        limits: Sequence[DailyLimit] = (),
    ) -> None:
        """Put the transaction once, and add it to its month's job input (a payment: with
        `book`'s writes), in one transaction. `arrival_month` is the issuer's month as it arrives: a payment whose
        own month is already settled lists its card there, so the rebate job visits the
        card and grants what the late payment earned even if the card pays nothing more.
        Its amount is added to the day totals of `limits` under their conditions.
        Raises TxnExists (with the recorded one), OverDailyLimit or ClaimExists."""
        item = TxnItem(
            *keys.txn(txn.idm, txn.card_seq),
            kind=txn.kind.value,
            issuer=txn.issuer,
            amount=txn.amount,
            at=txn.at,
            month=txn.month,
            terminal_id=txn.terminal_id,
            merchant_id=txn.merchant_id,
            request_id=txn.request_id,
            charge_kind=txn.charge_kind,
            rebate_bps=txn.rebate_bps,
            fingerprint=fingerprint,
            counted_on=txn.counted_on.isoformat() if txn.counted_on else None,
            reconcile=txn.reconcile,
        )

        def put(tx: Transaction) -> None:
            tx.put(item, "txn", TableItem.pk.does_not_exist())
            for limit in limits:
                _count_day(tx, limit, txn.amount)

        try:
            self._with_month(put, txn, 1, claims, txn.request_id, book, arrival_month, record=True)
        except Refused as exc:
            found = self.get_txn(txn.idm, txn.card_seq)
            if found is not None:  # a resend is answered as the duplicate it is, whatever the totals
                raise TxnExists(*found) from exc
            over = [name for name in exc.names if isinstance(name, DailyLimit)]
            if over:
                raise OverDailyLimit(over[0]) from exc
            raise

    def put_claims(self, claims: Sequence[Claim], by: str) -> None:
        put_claims(self.connection, claims, by)

    def cancel_txn(
        self, txn: CardTxn, request_id: str, claims: Sequence[Claim], *, book: MonthBook,
        give_back: Sequence[DailyLimit] = (), unless_settled: bool = False,
    ) -> None:
        """Mark an e-money payment cancelled and take it out of its month, once; its
        amount leaves the day totals of `give_back` (today's, when it was counted today).
        With `unless_settled`, a payment whose month is settled is left to the caller
        (MonthSettled, nothing written), to take its rebate back with `settled_cancel_writes`.
        Raises TxnChanged if it was cancelled meanwhile, or ClaimExists."""

        def mark(tx: Transaction) -> None:
            _mark_cancelled(tx, txn, request_id, give_back)

        try:
            self._with_month(mark, txn, -1, claims, request_id, book, stop_when_settled=unless_settled)
        except Refused as exc:
            if txn.reconcile == AWAITING:
                found = self.get_txn(txn.idm, txn.card_seq)
                if found is not None and not found[0].cancelled and found[0].reconcile != AWAITING:
                    # Matched meanwhile: cancel it as matched.
                    return self.cancel_txn(found[0], request_id, claims, book=book, give_back=give_back,
                                           unless_settled=unless_settled)
            raise TxnChanged() from exc

    # -- what the campaign job reads (through TerminalService) -------------------------

    def charging_cards(self, issuer: str, month: str) -> Iterator[str]:
        """IDms of the issuer's cards that charged in `month`: a query per shard."""
        for pk in keys.charges_shards(issuer, month):
            for item in ChargeMonthItem.query(pk):
                yield keys.charges_idm(item.sk)

    def card_months(self, idm: str, first: str, last: str) -> dict[str, list[MonthCharge]]:
        """The card's charges of each month from `first` to `last` (YYYY-MM) it charged in
        since the card-month briefs were written: one strongly consistent query of at most
        that many small items, however long the card's history."""
        query = CardMonthItem.query(
            keys.txn_partition(idm),
            TableItem.sk.between(keys.card_month(idm, first)[1], keys.card_month(idm, last)[1]),
            consistent_read=True,
        )
        return {keys.card_month_of(item.sk): [_month_charge(b) for b in item.charges or []] for item in query}

    def rebuild_card_month(self, idm: str, month: str) -> bool:
        """Put the card-month's brief from the card's TXN items when it lacks some of its
        charges (written before the briefs existed), under the condition that it still
        holds what was read (a charge recorded meanwhile: read both again). Returns
        whether it wrote."""
        pk, sk = keys.card_month(idm, month)
        for _ in range(MONTH_ATTEMPTS):
            held = self.card_months(idm, month, month).get(month)
            charges = sorted((t for t in self.card_txns(idm) if t.kind is TxnKind.CHARGE and t.month == month),
                             key=lambda t: t.card_seq)
            if held is not None and len(held) >= len(charges):
                return False
            condition = (CardMonthItem.sk.does_not_exist() if held is None
                         else size(CardMonthItem.charges) == len(held))
            try:
                CardMonthItem(pk, sk, charges=[_brief(t) for t in charges]).save(condition=condition)
                return True
            except PutError as exc:
                if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                    raise
        raise Contended()

    def card_txns(self, idm: str) -> list[CardTxn]:
        """Every e-money payment and charge recorded for the card, cancelled ones too:
        one strongly consistent query of its TXN# items."""
        query = TxnItem.query(keys.txn_partition(idm), TableItem.sk.startswith(keys.TXN), consistent_read=True)
        return [_txn_from_item(item) for item in query]

    def settled_cancel_writes(
        self, txn: CardTxn, request_id: str, weighted: int, taken_back: int, give_back: Sequence[DailyLimit] = (),
        *, book: MonthBook,
    ) -> list[Write]:
        """The cancel of a payment of a settled month as writes for a ledger change's own
        transaction (the entry taking `taken_back` points off the month's rebate lot): the
        record marked cancelled, and `book`'s writes of the month under its sums as read
        (`weighted`) and of the card's rebate account, of which `taken_back` is no longer
        owed. The writes are what `cancel_txn` would commit; a failed condition refuses
        with TxnChanged (cancelled meanwhile) or MonthMoved."""
        writes = _Writes({"txn": TxnChanged})
        _mark_cancelled(writes, txn, request_id, give_back)
        return [*writes.done(), *book.month_writes(txn, -1, weighted, None, moved=MonthMoved, taken_back=taken_back)]

    def match_txn(
        self, txn: CardTxn, line_id: str, *, arrival_month: str, book: MonthBook, writes: Sequence[Write] = ()
    ) -> None:
        """Mark the record matched by settlement line `line_id`, once, and (unless it is
        cancelled) move it from its month's pending sums into what earns a rebate (`book`'s
        writes), in one transaction; a month already settled carries what it now earns
        into the next rebate, as a late record does. `writes` (the reconciliation's: the
        line's unmatched mark, if an earlier import left one) go in the same transaction.
        Raises TxnChanged when the record was cancelled or matched meanwhile (read it
        again and decide again)."""
        pk, sk = keys.txn(txn.idm, txn.card_seq)
        if txn.reconcile == AWAITING:
            condition = (TxnItem.reconcile == AWAITING) & (TxnItem.cancelled == txn.cancelled)
        else:  # recorded without reconciliation: it already earns; only the line is noted
            condition = TxnItem.matched_line.does_not_exist() & TxnItem.reconcile.does_not_exist()
        earns = txn.reconcile == AWAITING and not txn.cancelled

        def mark(tx: Transaction) -> None:
            actions = [TxnItem.matched_line.set(line_id)]
            if txn.reconcile == AWAITING:
                actions.append(TxnItem.reconcile.set(MATCHED))
            tx.update(TxnItem(pk, sk), actions, "txn", condition)
            for write in writes:
                tx.write(write)

        try:
            if earns:
                self._with_month(mark, replace(txn, reconcile=MATCHED), 1, (), line_id, book, arrival_month)
            else:

                def marked() -> Transaction:
                    tx = Transaction(self.connection)
                    mark(tx)
                    return tx

                commit_retrying(marked)
        except Refused as exc:
            if "txn" in exc.names:
                raise TxnChanged() from exc
            raise

    def _with_month(
        self, first: Callable[[Transaction], None], txn: CardTxn, sign: int, claims: Sequence[Claim], by: str,
        book: MonthBook, arrival_month: str | None = None, *, stop_when_settled: bool = False, record: bool = False,
    ) -> None:
        """Write `first` (named "txn"), the month's job input and the claims in one
        transaction. A settled month is read and written under its current sums, with
        the card's rebate account (`book`'s writes), so a race with the rebate job is
        retried, never lost. Raises ClaimExists, or Refused naming "txn"."""
        settled: int | None = None
        for _ in range(MONTH_ATTEMPTS):
            def built(settled: int | None = settled) -> Transaction:  # this try's sums as read
                tx = Transaction(self.connection)
                first(tx)
                if txn.kind is not TxnKind.EMONEY_PAYMENT:
                    month = ChargeMonthItem(*keys.charges(txn.issuer, txn.month, txn.idm), issuer=txn.issuer,
                                            month=txn.month)
                    tx.put(month, "month")
                    if record:  # the charge itself, once (its record's put is conditional)
                        brief = CardMonthItem(*keys.card_month(txn.idm, txn.month))
                        charges = (CardMonthItem.charges | []).append([_brief(txn)])
                        tx.update(brief, [CardMonthItem.type.set(CardMonthItem), CardMonthItem.charges.set(charges)],
                                  "card month")
                else:
                    for write in book.month_writes(txn, sign, settled, arrival_month):
                        tx.write(write)
                for claim in claims:
                    tx.claim(claim, by)
                return tx

            try:
                commit_retrying(built)  # a conflict is sent again as it is; a refusal is judged here
                return
            except Refused as exc:
                for name in exc.names:  # a refused write of the month is read again below, not raised
                    if isinstance(name, Claim):
                        raise ClaimExists(name) from exc
                if "txn" in exc.names or any(isinstance(name, DailyLimit) for name in exc.names):
                    raise
                settled = book.settled_weighted(txn)
                if settled is not None and stop_when_settled:
                    raise MonthSettled(settled) from exc
        raise Contended()


def _mark_cancelled(tx: Transaction | _Writes, txn: CardTxn, request_id: str, give_back: Sequence[DailyLimit]) -> None:
    condition = TxnItem.cancelled == False  # noqa: E712 (a DynamoDB condition, not a Python test)
    if txn.reconcile == AWAITING:
        # A match landing between our read and this write moves the payment out of pending.
        condition = condition & (TxnItem.reconcile == AWAITING)
    tx.update(
        TxnItem(*keys.txn(txn.idm, txn.card_seq)),
        [TxnItem.cancelled.set(True), TxnItem.cancel_request_id.set(request_id)],
        "txn",
        condition,
    )
    for limit in give_back:
        _count_day(tx, limit, -txn.amount)


class _Writes:
    """Takes what would go into a Transaction (`update`, `put`, by name) as Writes for
    another context's transaction, so one code path decides a record's bookkeeping
    whichever transaction carries it. `errors` names the refusal of a named item's
    condition."""

    def __init__(self, errors: dict[str, Callable[[], Exception]]) -> None:
        self._errors = errors
        self._writes: list[Write] = []

    def _error(self, name: object) -> Callable[[], Exception]:
        return self._errors.get(name, Contended) if isinstance(name, str) else Contended

    def update(self, item: TableItem, actions: list, name: object, condition: object = None) -> None:
        self._writes.append(Write(item, self._error(name), condition, tuple(actions)))

    def put(self, item: TableItem, name: object, condition: object = None) -> None:
        self._writes.append(Write(item, self._error(name), condition))

    def done(self) -> list[Write]:
        return list(self._writes)


# A day total outlives its day by this much, then DynamoDB's TTL removes it: nothing
# reads a past day's total (limits count today's records; a cancel gives back only today).
DAY_TOTAL_KEPT = timedelta(days=2)


def _count_day(tx: Transaction | _Writes, limit: DailyLimit, amount: int) -> None:
    """Add `amount` yen to the day total of `limit`. Adding, its condition is that the
    total stays within the limit (DynamoDB judges it in the transaction, so records at
    once cannot overshoot); taking away (a cancel) has none."""
    if limit.scope == "terminal":
        key = keys.terminal_day(limit.subject, limit.day)
    else:
        key = keys.card_day(limit.subject, limit.kind.value, limit.day)
    ends = datetime.combine(limit.day, time.min, tzinfo=timezone.utc) + DAY_TOTAL_KEPT
    actions = [DayTotalItem.type.set(DayTotalItem), DayTotalItem.yen.add(amount), DayTotalItem.expires_at.set(ends)]
    condition = None
    if amount > 0:
        condition = DayTotalItem.yen.does_not_exist() | (DayTotalItem.yen <= limit.limit - amount)
    tx.update(DayTotalItem(*key), actions, limit, condition)
def _merchant(item: MerchantItem) -> Merchant:
    return Merchant(
        merchant_id=item.sk.removeprefix(keys.MERCHANT),
        issuer=item.issuer,
        name=item.name,
        area=item.area,
        category=item.category,
        rebate_bps=item.rebate_bps,
    )


def txn_fingerprint(txn: CardTxn) -> str:
    return fingerprint(txn.fingerprint_fields())
