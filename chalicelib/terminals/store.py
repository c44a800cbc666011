"""Terminals context items in the application table:

    MERCHANTS#<issuer>           MERCHANT#<id>   a member store (the partition is the directory)
    TERMINAL#<id>                TERMINAL        a terminal and its public key
    EVENT#<id>                   EVENT           an event and its check-in window
    CARD#<idm>                   TXN#<seq>       an e-money payment or charge, by the card's sequence number
    ACCRUAL#<iss>#<month>#<sh>   CARD#<idm>      a card's e-money payments in a month (rebate job input)
    CARD#<idm>                   REBATE          the card's rebate account (see RebateStateItem)
    CHARGES#<iss>#<month>#<sh>   CARD#<idm>      the card charged in that month (campaign job input)
    REBATE_RATES#<issuer>        RATE#<id>       a campaign period's rebate rate

A month's accrual is open until the rebate job settles it (`closed`). A payment or
cancel recorded for a settled month changes the card's rebate account in the same
transaction instead, so the difference is carried into the next rebate (§6.2).

Under reconciliation (§6.2, chalicelib/reconciliation/) a payment is recorded AWAITING:
it adds only to its month's `pending_*` sums, which earn nothing, and is listed as
awaiting its settlement line. `match_txn` moves it into `yen`/`weighted` (through the
same settled-month path as a late record) when a line of the acquirer's file matches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date

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


class TxnExists(Exception):
    def __init__(self, existing: CardTxn, fingerprint: str) -> None:
        super().__init__("a transaction with this card sequence number is already recorded")
        self.existing = existing
        self.fingerprint = fingerprint


class TxnChanged(Exception):
    """The record changed between our read and our write (a concurrent cancel)."""


# A write to a settled month retries when the rebate job or another record moves it
# between the read and the write: a handful of times at most, in practice once.
MONTH_ATTEMPTS = 10


def _txn_from_item(item: TxnItem) -> CardTxn:
    return CardTxn(
        kind=TxnKind(item.kind),
        issuer=item.issuer,
        idm=item.pk.removeprefix("CARD#"),
        card_seq=int(item.sk.removeprefix(keys.TXN)),
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

    def record_txn(self, txn: CardTxn, fingerprint: str, claims: Sequence[Claim], *, arrival_month: str) -> None:
        """Put the transaction once, and add it to its month's job input, in one
        transaction. `arrival_month` is the issuer's month as it arrives: a payment whose
        own month is already settled lists its card there, so the rebate job visits the
        card and grants what the late payment earned even if the card pays nothing more.
        Raises TxnExists (with the recorded one) or ClaimExists."""
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
            reconcile=txn.reconcile,
        )
        try:
            self._with_month(
                lambda tx: tx.put(item, "txn", TableItem.pk.does_not_exist()), txn, 1, claims, txn.request_id,
                arrival_month,
            )
        except Refused as exc:
            found = self.get_txn(txn.idm, txn.card_seq)
            if found is None:
                raise
            raise TxnExists(*found) from exc

    def put_claims(self, claims: Sequence[Claim], by: str) -> None:
        put_claims(self.connection, claims, by)

    def cancel_txn(self, txn: CardTxn, request_id: str, claims: Sequence[Claim]) -> None:
        """Mark an e-money payment cancelled and take it out of its month, once.
        Raises TxnChanged if it was cancelled meanwhile, or ClaimExists."""
        pk, sk = keys.txn(txn.idm, txn.card_seq)

        def mark(tx: Transaction) -> None:
            condition = TxnItem.cancelled == False  # noqa: E712 (a DynamoDB condition, not a Python test)
            if txn.reconcile == AWAITING:
                # A match landing between our read and this write moves the payment out of pending.
                condition = condition & (TxnItem.reconcile == AWAITING)
            tx.update(
                TxnItem(pk, sk),
                [TxnItem.cancelled.set(True), TxnItem.cancel_request_id.set(request_id)],
                "txn",
                condition,
            )

        try:
            self._with_month(mark, txn, -1, claims, request_id)
        except Refused as exc:
            if txn.reconcile == AWAITING:
                found = self.get_txn(txn.idm, txn.card_seq)
                if found is not None and not found[0].cancelled and found[0].reconcile != AWAITING:
                    return self.cancel_txn(found[0], request_id, claims)  # matched meanwhile: cancel as matched
            raise TxnChanged() from exc

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
        arrival_month: str | None = None,
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
                if "txn" in exc.names:
                    raise
                settled = self._settled_accrual(txn)
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
