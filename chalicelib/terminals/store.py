"""Terminals context items in the application table:

    MERCHANTS#<issuer>           MERCHANT#<id>   a member store (the partition is the directory)
    TERMINAL#<id>                TERMINAL        a terminal and its public key
    EVENT#<id>                   EVENT           an event and its check-in window
    CARD#<idm>                   TXN#<seq>       an e-money payment or charge, by the card's sequence number
    ACCRUAL#<iss>#<month>#<sh>   CARD#<idm>      a card's e-money payments in a month (rebate job input)
    CARD#<idm>                   REBATE          the card's rebate account (see RebateStateItem)
    EMONEY_DAY#<terminal>#<day>  EMONEY_DAY      yen the terminal had recorded that day (daily limit)
    CARD#<idm>                   EMONEY_DAY#<kind>#<day>  yen of that kind recorded for the card that day
    CHARGES#<iss>#<month>#<sh>   CARD#<idm>      the card charged in that month (campaign job input)
    REBATE_RATES#<issuer>        RATE#<id>       a campaign period's rebate rate

A record adds its yen to its terminal's and its card's day totals in its own transaction,
each under the condition that the issuer's daily limit still holds after it, so records
racing each other cannot overshoot and a refused record writes nothing. The totals
expire by TTL a day after their day.

A month's accrual is open until the rebate job settles it (`closed`). A payment or
cancel recorded for a settled month changes the card's rebate account in the same
transaction instead, so the difference is carried into the next rebate (§6.2). A cancel
that takes the rebate back from the month's lot commits the same writes
(`settled_cancel_writes`) in the ledger entry's own transaction.

Under reconciliation (§6.2, chalicelib/reconciliation/) a payment is recorded AWAITING:
it adds only to its month's `pending_*` sums, which earn nothing, and is listed as
awaiting its settlement line. `match_txn` moves it into `yen`/`weighted` (through the
same settled-month path as a late record) when a line of the acquirer's file matches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from ..ledger.chain import fingerprint
from ..ledger.domain import rebate_points
from ..ledger.errors import Contended
from ..reconciliation.store import awaiting_item, unmatched_key_item
from ..table import Claim, Refused, Table, TableItem, Transaction, Write, put_claims
from . import keys
from .domain import (
    AWAITING,
    MATCHED,
    Accrual,
    CardTxn,
    DailyLimit,
    Event,
    Merchant,
    Mode,
    RebateAccount,
    RebateRate,
    Terminal,
    TerminalStatus,
    TxnKind,
)


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


class AccrualItem(TableItem, discriminator="accrual"):
    """Running sums of one card's e-money payments in one month. `weighted` is
    Σ amount × rate in basis points, so the rebate is floor(weighted / 10,000).
    The rebate job settles it once: `closed`, with what it earned and what was granted."""

    issuer = UnicodeAttribute()
    month = UnicodeAttribute()
    yen = NumberAttribute(default=0)
    weighted = NumberAttribute(default=0)
    payments = NumberAttribute(default=0)
    closed = BooleanAttribute(null=True)
    due = NumberAttribute(null=True)
    granted = NumberAttribute(null=True)
    # Payments awaiting their settlement line (reconciliation): counted here, earning nothing.
    pending_yen = NumberAttribute(null=True)
    pending_weighted = NumberAttribute(null=True)


class RebateStateItem(TableItem, discriminator="rebate_state"):
    """A card's rebate account over its settled months: what they earn as they stand now
    (`earned`, moved by late records and cancels) and what was granted for them. Their
    difference is carried into the next rebate. `revision` guards the rebate job's write."""

    earned = NumberAttribute(default=0)
    granted = NumberAttribute(default=0)
    revision = NumberAttribute(default=0)


class RebateRateItem(TableItem, discriminator="rebate_rate"):
    bps = NumberAttribute()
    starts_on = UnicodeAttribute()
    ends_on = UnicodeAttribute()
    merchant_id = UnicodeAttribute(null=True)


class ChargeMonthItem(TableItem, discriminator="charge_month"):
    issuer = UnicodeAttribute()
    month = UnicodeAttribute()


class DayTotalItem(TableItem, discriminator="emoney_day"):
    """Yen recorded on one day for one terminal, or for one card and kind of record."""

    yen = NumberAttribute(default=0)


class TxnExists(Exception):
    def __init__(self, existing: CardTxn, fingerprint: str) -> None:
        super().__init__("a transaction with this card sequence number is already recorded")
        self.existing = existing
        self.fingerprint = fingerprint


class TxnChanged(Exception):
    """The record changed between our read and our write (a concurrent cancel)."""


class MonthSettled(Exception):
    """The payment's month is already settled by the rebate job: nothing was written.
    `weighted` is the month's sum as read, for the cancel's rebate take-back."""

    def __init__(self, weighted: int) -> None:
        super().__init__("the payment's month is already settled")
        self.weighted = weighted


class MonthMoved(Exception):
    """A settled month's sums changed between our read and our write (a late record or
    another cancel): read them again."""


class OverDailyLimit(Exception):
    """The record would take a day total over its issuer's limit: nothing was written."""

    def __init__(self, limit: DailyLimit) -> None:
        super().__init__(f"the {limit.scope}'s daily limit of {limit.limit} yen is reached")
        self.limit = limit


# A write to a settled month retries when the rebate job or another record moves it
# between the read and the write: a handful of times at most, in practice once.
MONTH_ATTEMPTS = 10


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
        self, txn: CardTxn, fingerprint: str, claims: Sequence[Claim], *, arrival_month: str,
        limits: Sequence[DailyLimit] = (),
    ) -> None:
        """Put the transaction once, and add it to its month's job input, in one
        transaction. `arrival_month` is the issuer's month as it arrives: a payment whose
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
            self._with_month(put, txn, 1, claims, txn.request_id, arrival_month)
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
        self, txn: CardTxn, request_id: str, claims: Sequence[Claim], *, give_back: Sequence[DailyLimit] = (),
        unless_settled: bool = False,
    ) -> None:
        """Mark an e-money payment cancelled and take it out of its month, once; its
        amount leaves the day totals of `give_back` (today's, when it was counted today).
        With `unless_settled`, a payment whose month is settled is left to the caller
        (MonthSettled, nothing written), to take its rebate back with `settled_cancel_writes`.
        Raises TxnChanged if it was cancelled meanwhile, or ClaimExists."""

        def mark(tx: Transaction) -> None:
            _mark_cancelled(tx, txn, request_id, give_back)

        try:
            self._with_month(mark, txn, -1, claims, request_id, stop_when_settled=unless_settled)
        except Refused as exc:
            if txn.reconcile == AWAITING:
                found = self.get_txn(txn.idm, txn.card_seq)
                if found is not None and not found[0].cancelled and found[0].reconcile != AWAITING:
                    # Matched meanwhile: cancel it as matched.
                    return self.cancel_txn(found[0], request_id, claims, give_back=give_back,
                                           unless_settled=unless_settled)
            raise TxnChanged() from exc

    # -- what the campaign job reads (through TerminalService) -------------------------

    def charging_cards(self, issuer: str, month: str) -> Iterator[str]:
        """IDms of the issuer's cards that charged in `month`: a query per shard."""
        for pk in keys.charges_shards(issuer, month):
            for item in ChargeMonthItem.query(pk):
                yield keys.charges_idm(item.sk)

    def card_txns(self, idm: str) -> list[CardTxn]:
        """Every e-money payment and charge recorded for the card, cancelled ones too:
        one strongly consistent query of its TXN# items."""
        query = TxnItem.query(keys.txn_partition(idm), TableItem.sk.startswith(keys.TXN), consistent_read=True)
        return [_txn_from_item(item) for item in query]

    def settled_weighted(self, txn: CardTxn) -> int | None:
        """The settled month's `weighted` sum of the payment as it stands, or None if open."""
        settled = self._settled_accrual(txn)
        return None if settled is None else settled.weighted

    def settled_cancel_writes(
        self, txn: CardTxn, request_id: str, weighted: int, taken_back: int, give_back: Sequence[DailyLimit] = ()
    ) -> list[Write]:
        """The cancel of a payment of a settled month as writes for a ledger change's own
        transaction (the entry taking `taken_back` points off the month's rebate lot): the
        record marked cancelled, the month's sums under their value as read (`weighted`),
        and the card's rebate account moved by what the month now earns less, of which
        `taken_back` is no longer owed: it leaves `granted`, so only the rest is carried
        into later rebates. The writes are what `cancel_txn` would commit, named alike;
        a failed condition refuses with TxnChanged (cancelled meanwhile) or MonthMoved."""
        writes = _Writes({"txn": TxnChanged, "month": MonthMoved},
                         extra={"account": [RebateStateItem.granted.add(-taken_back)]})
        _mark_cancelled(writes, txn, request_id, give_back)
        settled = AccrualItem(*keys.accrual(txn.issuer, txn.month, txn.idm), weighted=weighted)
        self._add_to_month(writes, txn, -1, settled, None)
        return writes.done()
    def match_txn(self, txn: CardTxn, line_id: str, line_month: str, *, arrival_month: str) -> None:
        """Mark the record matched by settlement line `line_id`, once, and (unless it is
        cancelled) move it from its month's pending sums into what earns a rebate, in one
        transaction; a month already settled carries what it now earns into the next
        rebate, as a late record does. The line's unmatched mark (in `line_month`), if an
        earlier import left one, goes in the same transaction. Raises TxnChanged when the
        record was cancelled or matched meanwhile (read it again and decide again)."""
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
            tx.delete(unmatched_key_item(txn.issuer, line_month, line_id), "unmatched line")

        try:
            if earns:
                self._with_month(mark, replace(txn, reconcile=MATCHED), 1, (), line_id, arrival_month)
            else:
                tx = Transaction(self.connection)
                mark(tx)
                tx.commit()
        except Refused as exc:
            if "txn" in exc.names:
                raise TxnChanged() from exc
            raise

    def _with_month(
        self, first: Callable[[Transaction], None], txn: CardTxn, sign: int, claims: Sequence[Claim], by: str,
        arrival_month: str | None = None, *, stop_when_settled: bool = False,
    ) -> None:
        """Write `first` (named "txn"), the month's job input and the claims in one
        transaction. A settled month is read and written under its current sums, with
        the card's rebate account, so a race with the rebate job is retried, never lost.
        Raises ClaimExists, or Refused naming "txn"."""
        settled: AccrualItem | None = None
        for _ in range(MONTH_ATTEMPTS):
            tx = Transaction(self.connection)
            first(tx)
            self._add_to_month(tx, txn, sign, settled, arrival_month)
            for claim in claims:
                tx.claim(claim, by)
            try:
                tx.commit()
                return
            except Refused as exc:
                exc.raise_for_claims_and_writes()
                if "txn" in exc.names or any(isinstance(name, DailyLimit) for name in exc.names):
                    raise
                settled = self._settled_accrual(txn)
                if settled is not None and stop_when_settled:
                    raise MonthSettled(settled.weighted) from exc
        raise Contended()

    @staticmethod
    def _add_to_month(
        tx: Transaction, txn: CardTxn, sign: int, settled: AccrualItem | None, arrival_month: str | None
    ) -> None:
        if txn.kind is not TxnKind.EMONEY_PAYMENT:
            month = ChargeMonthItem(*keys.charges(txn.issuer, txn.month, txn.idm), issuer=txn.issuer, month=txn.month)
            tx.put(month, "month")
            return
        change = sign * txn.amount * (txn.rebate_bps or 0)
        accrual = AccrualItem(*keys.accrual(txn.issuer, txn.month, txn.idm))
        if txn.reconcile == AWAITING:
            _await_settlement_line(tx, accrual, txn, sign, change)
            return
        actions = [
            AccrualItem.type.set(AccrualItem),
            AccrualItem.issuer.set(txn.issuer),
            AccrualItem.month.set(txn.month),
            AccrualItem.yen.add(sign * txn.amount),
            AccrualItem.weighted.add(change),
            AccrualItem.payments.add(sign),
        ]
        if txn.reconcile == MATCHED and sign > 0:
            # The match itself (match_txn): out of the pending sums, off the awaiting list.
            actions += [AccrualItem.pending_yen.add(-txn.amount), AccrualItem.pending_weighted.add(-change)]
            tx.delete(awaiting_item(txn.issuer, txn.month, txn.idm, txn.card_seq), "awaiting")
        if settled is None:
            tx.update(accrual, actions, "month", AccrualItem.closed.does_not_exist())
            return
        tx.update(
            accrual,
            actions,
            "month",
            (AccrualItem.closed == True) & (AccrualItem.weighted == settled.weighted),  # noqa: E712
        )
        earned = rebate_points(settled.weighted + change) - rebate_points(settled.weighted)
        tx.update(
            RebateStateItem(*keys.rebate_state(txn.idm)),
            [
                RebateStateItem.type.set(RebateStateItem),
                RebateStateItem.earned.add(earned),
                RebateStateItem.revision.add(1),
            ],
            "account",
        )
        if earned > 0 and arrival_month is not None and arrival_month != txn.month:
            # Unconditional and adding nothing: it only lists the card in a month still open.
            tx.update(
                AccrualItem(*keys.accrual(txn.issuer, arrival_month, txn.idm)),
                [AccrualItem.type.set(AccrualItem), AccrualItem.issuer.set(txn.issuer),
                 AccrualItem.month.set(arrival_month), AccrualItem.yen.add(0), AccrualItem.weighted.add(0),
                 AccrualItem.payments.add(0)],
                "arrival month",
            )

    @staticmethod
    def _settled_accrual(txn: CardTxn) -> AccrualItem | None:
        try:
            item = AccrualItem.get(*keys.accrual(txn.issuer, txn.month, txn.idm), consistent_read=True)
        except AccrualItem.DoesNotExist:
            return None
        return item if item.closed else None

    # -- the rebate job's input and bookkeeping -----------------------------------------

    def accruals(self, issuer: str, month: str) -> Iterator[Accrual]:
        """Every card's accrual in the month: one strongly consistent query per shard."""
        for key in keys.accrual_shards(issuer, month):
            for item in AccrualItem.query(key, consistent_read=True):
                yield _accrual(item)

    def rebate_accounts(self, idms: Sequence[str]) -> dict[str, RebateAccount]:
        """The cards' rebate accounts (a fresh one where none exists), 100 per BatchGetItem."""
        accounts = {i: RebateAccount(i) for i in idms}
        for item in RebateStateItem.batch_get([keys.rebate_state(i) for i in idms], consistent_read=True):
            idm = keys.rebate_state_idm(item.pk)
            accounts[idm] = RebateAccount(idm, item.earned, item.granted, item.revision)
        return accounts

    @staticmethod
    def rebate_settle_writes(
        issuer: str, accrual: Accrual, account: RebateAccount, due: int, granted: int, error: Callable[[], Exception]
    ) -> tuple[Write, Write]:
        """Close the month as read and move the card's account as read; either condition
        failing (a record or another run got there first) refuses with `error`."""
        month = Write(
            AccrualItem(*keys.accrual(issuer, accrual.month, accrual.idm)),
            error,
            condition=AccrualItem.closed.does_not_exist() & (AccrualItem.weighted == accrual.weighted),
            actions=(AccrualItem.closed.set(True), AccrualItem.due.set(due), AccrualItem.granted.set(granted)),
        )
        state = RebateStateItem(*keys.rebate_state(accrual.idm))
        fresh = account.revision is None
        book = Write(
            state,
            error,
            condition=RebateStateItem.pk.does_not_exist() if fresh else RebateStateItem.revision == account.revision,
            actions=(
                RebateStateItem.type.set(RebateStateItem),
                RebateStateItem.earned.set(account.earned + due),
                RebateStateItem.granted.set(account.granted + granted),
                RebateStateItem.revision.set((account.revision or 0) + 1),
            ),
        )
        return month, book

    def commit_writes(self, writes: Sequence[Write]) -> None:
        """Writes on their own, in one transaction. Raises WriteRefused."""
        tx = Transaction(self.connection)
        for write in writes:
            tx.write(write)
        try:
            tx.commit()
        except Refused as exc:
            exc.raise_for_claims_and_writes()
            raise

    def put_rebate_rate(self, rate: RebateRate) -> None:
        RebateRateItem(
            *keys.rebate_rate(rate.issuer, rate.rate_id),
            bps=rate.bps,
            starts_on=rate.starts_on.isoformat(),
            ends_on=rate.ends_on.isoformat(),
            merchant_id=rate.merchant_id,
        ).save()

    def rebate_rates(self, issuer: str) -> list[RebateRate]:
        return [
            RebateRate(
                rate_id=item.sk.removeprefix(keys.RATE),
                issuer=issuer,
                bps=item.bps,
                starts_on=date.fromisoformat(item.starts_on),
                ends_on=date.fromisoformat(item.ends_on),
                merchant_id=item.merchant_id,
            )
            for item in RebateRateItem.query(keys.rebate_rates(issuer))
        ]

    def accrual(self, issuer: str, month: str, idm: str) -> Accrual | None:
        try:
            return _accrual(AccrualItem.get(*keys.accrual(issuer, month, idm), consistent_read=True))
        except AccrualItem.DoesNotExist:
            return None


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
    condition; `extra` adds actions to a named update."""

    def __init__(self, errors: dict[str, Callable[[], Exception]], extra: dict[str, list] | None = None) -> None:
        self._errors = errors
        self._extra = extra or {}
        self._writes: list[Write] = []

    def _error(self, name: object) -> Callable[[], Exception]:
        return self._errors.get(name, Contended) if isinstance(name, str) else Contended

    def update(self, item: TableItem, actions: list, name: object, condition: object = None) -> None:
        extra = self._extra.get(name, []) if isinstance(name, str) else []
        self._writes.append(Write(item, self._error(name), condition, (*actions, *extra)))

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
def _await_settlement_line(tx: Transaction, accrual: AccrualItem, txn: CardTxn, sign: int, change: int) -> None:
    """Reconciliation: a payment awaiting its settlement line adds to (a cancel takes from)
    the month's pending sums only, which earn nothing, settled month or not, so no
    condition; it is listed as awaiting (a cancel takes it off the list)."""
    tx.update(
        accrual,
        [AccrualItem.type.set(AccrualItem), AccrualItem.issuer.set(txn.issuer), AccrualItem.month.set(txn.month),
         # The sums that earn exist (as 0) for the rebate job's condition on them.
         AccrualItem.yen.add(0), AccrualItem.weighted.add(0), AccrualItem.payments.add(0),
         AccrualItem.pending_yen.add(sign * txn.amount), AccrualItem.pending_weighted.add(change)],
        "month",
    )
    listed = awaiting_item(txn.issuer, txn.month, txn.idm, txn.card_seq, amount=txn.amount, at=txn.at,
                           terminal_id=txn.terminal_id)
    if sign > 0:
        tx.put(listed, "awaiting")
    else:
        tx.delete(listed, "awaiting")


def _accrual(item: AccrualItem) -> Accrual:
    return Accrual(
        idm=keys.accrual_idm(item.sk),
        month=item.month,
        yen=item.yen,
        weighted=item.weighted,
        payments=item.payments,
        closed=bool(item.closed),
    )


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
