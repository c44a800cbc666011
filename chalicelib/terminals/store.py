"""Terminals context items in the application table:

    MERCHANTS#<issuer>           MERCHANT#<id>   a member store (the partition is the directory)
    TERMINAL#<id>                TERMINAL        a terminal and its public key
    EVENT#<id>                   EVENT           an event and its check-in window
    CARD#<idm>                   TXN#<seq>       an e-money payment or charge, by the card's sequence number
    ACCRUAL#<iss>#<month>#<sh>   CARD#<idm>      a card's e-money payments in a month (rebate job input)
    CHARGES#<iss>#<month>#<sh>   CARD#<idm>      the card charged in that month (campaign job input)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..ledger.chain import fingerprint
from ..table import Claim, ClaimExists, Table, TableItem, claim_item, failed_positions, put_claims
from . import keys
from .domain import CardTxn, Event, Merchant, Mode, Terminal, TerminalStatus, TxnKind


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


class AccrualItem(TableItem, discriminator="accrual"):
    """Running sums of one card's e-money payments in one month. `weighted` is
    Σ amount × rate in basis points, so the rebate is floor(weighted / 10,000)."""

    issuer = UnicodeAttribute()
    month = UnicodeAttribute()
    yen = NumberAttribute(default=0)
    weighted = NumberAttribute(default=0)
    payments = NumberAttribute(default=0)


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

    def record_txn(self, txn: CardTxn, fingerprint: str, claims: Sequence[Claim]) -> None:
        """Put the transaction once, and add it to its month's job input, in one
        transaction. Raises TxnExists (with the recorded one) or ClaimExists."""
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
        )
        try:
            with TransactWrite(connection=self.connection) as tx:
                tx.save(item, condition=TableItem.pk.does_not_exist())
                self._add_to_month(tx, txn, sign=1)
                for claim in claims:
                    tx.save(claim_item(claim, txn.request_id), condition=TableItem.pk.does_not_exist())
        except TransactWriteError as exc:
            failed = failed_positions(exc)
            if 0 in failed:
                found = self.get_txn(txn.idm, txn.card_seq)
                if found is not None:
                    raise TxnExists(*found) from exc
            for i, claim in enumerate(claims, start=2):
                if i in failed:
                    raise ClaimExists(claim) from exc
            raise

    def put_claims(self, claims: Sequence[Claim], by: str) -> None:
        put_claims(self.connection, claims, by)

    def cancel_txn(self, txn: CardTxn, request_id: str, claims: Sequence[Claim]) -> None:
        """Mark an e-money payment cancelled and take it out of its month, once.
        Raises TxnChanged if it was cancelled meanwhile, or ClaimExists."""
        pk, sk = keys.txn(txn.idm, txn.card_seq)
        try:
            with TransactWrite(connection=self.connection) as tx:
                tx.update(
                    TxnItem(pk, sk),
                    actions=[TxnItem.cancelled.set(True), TxnItem.cancel_request_id.set(request_id)],
                    condition=TxnItem.cancelled == False,  # noqa: E712 (a DynamoDB condition, not a Python test)
                )
                self._add_to_month(tx, txn, sign=-1)
                for claim in claims:
                    tx.save(claim_item(claim, request_id), condition=TableItem.pk.does_not_exist())
        except TransactWriteError as exc:
            failed = failed_positions(exc)
            if 0 in failed:
                raise TxnChanged() from exc
            for i, claim in enumerate(claims, start=2):
                if i in failed:
                    raise ClaimExists(claim) from exc
            raise

    @staticmethod
    def _add_to_month(tx: TransactWrite, txn: CardTxn, *, sign: int) -> None:
        if txn.kind is TxnKind.EMONEY_PAYMENT:
            tx.update(
                AccrualItem(*keys.accrual(txn.issuer, txn.month, txn.idm)),
                actions=[
                    AccrualItem.type.set(AccrualItem),
                    AccrualItem.issuer.set(txn.issuer),
                    AccrualItem.month.set(txn.month),
                    AccrualItem.yen.add(sign * txn.amount),
                    AccrualItem.weighted.add(sign * txn.amount * (txn.rebate_bps or 0)),
                    AccrualItem.payments.add(sign),
                ],
            )
        else:
            tx.save(ChargeMonthItem(*keys.charges(txn.issuer, txn.month, txn.idm), issuer=txn.issuer, month=txn.month))

    def accrual(self, issuer: str, month: str, idm: str) -> dict | None:
        try:
            item = AccrualItem.get(*keys.accrual(issuer, month, idm), consistent_read=True)
        except AccrualItem.DoesNotExist:
            return None
        return {"yen": item.yen, "weighted": item.weighted, "payments": item.payments}


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
