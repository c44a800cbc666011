"""The reconciliation's items in the application table (keys: reconciliation/keys.py).

    AwaitingRecordItem   a record no line has matched yet: put with the record, deleted
                         with its match or its cancel, in the same transaction (the
                         terminals' store commits it, as a Write from
                         reconciliation.service.awaiting_write, through the rebates)
    UnmatchedLineItem    a settlement line that matched nothing, and why: put by the
                         import, deleted in the transaction that matches it later
    ReceivedMonthItem    the month's settlement file arrived on `received_on` (put once)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError

from ..table import TableItem
from . import keys
from .domain import SettlementLine, UnmatchedLine, UnmatchedRecord


class AwaitingRecordItem(TableItem, discriminator="recon_awaiting"):
    month = UnicodeAttribute()
    amount = NumberAttribute()
    at = UTCDateTimeAttribute()
    terminal_id = UnicodeAttribute()


class UnmatchedLineItem(TableItem, discriminator="recon_unmatched"):
    month = UnicodeAttribute()
    card_number = UnicodeAttribute(null=True)
    idm = UnicodeAttribute(null=True)
    card_seq = NumberAttribute()
    amount = NumberAttribute()
    at = UTCDateTimeAttribute()
    terminal_id = UnicodeAttribute()
    reason = UnicodeAttribute()


class ReceivedMonthItem(TableItem, discriminator="recon_received"):
    received_on = UnicodeAttribute()  # ISO date, issuer's time zone
    source = UnicodeAttribute()


def awaiting_item(issuer: str, month: str, idm: str, card_seq: int, *, amount: int = 0, at=None,
                  terminal_id: str = "") -> AwaitingRecordItem:
    return AwaitingRecordItem(*keys.awaiting_record(issuer, month, idm, card_seq), month=month, amount=amount,
                              at=at, terminal_id=terminal_id)


def unmatched_key_item(issuer: str, month: str, line_id: str) -> UnmatchedLineItem:
    """The item (keys only) of a line that may have been unmatched before: deleted when it matches."""
    return UnmatchedLineItem(*keys.unmatched_line(issuer, month, line_id))


class ReconciliationStore:
    """The reconciliation's own items; they reach the table through their models, bound once
    to the settings' table (table.py)."""

    def put_unmatched(self, issuer: str, month: str, line_id: str, line: SettlementLine, reason: str) -> None:
        """Record (or record again, with today's reason) a line that matched nothing."""
        UnmatchedLineItem(
            *keys.unmatched_line(issuer, month, line_id), month=month, card_number=line.card_number, idm=line.idm,
            card_seq=line.card_seq, amount=line.amount, at=line.at, terminal_id=line.terminal_id, reason=reason,
        ).save()

    def unmatched_lines(self, issuer: str, month: str) -> Iterator[UnmatchedLine]:
        for pk in keys.month_shards(issuer, month):
            for item in UnmatchedLineItem.query(pk, TableItem.sk.startswith(keys.LINE), consistent_read=True):
                yield UnmatchedLine(month, item.sk.removeprefix(keys.LINE), item.card_number, item.idm,
                                    int(item.card_seq), int(item.amount), item.at, item.terminal_id, item.reason)

    def awaiting_records(self, issuer: str, month: str) -> Iterator[UnmatchedRecord]:
        for pk in keys.month_shards(issuer, month):
            for item in AwaitingRecordItem.query(pk, TableItem.sk.startswith(keys.RECORD), consistent_read=True):
                idm, seq = keys.record_of(item.sk)
                yield UnmatchedRecord(month, idm, seq, int(item.amount), item.at, item.terminal_id)

    def has_awaiting(self, issuer: str, month: str) -> bool:
        """Whether any record of the month awaits its line: at most one item read per shard."""
        for pk in keys.month_shards(issuer, month):
            for _ in AwaitingRecordItem.query(pk, TableItem.sk.startswith(keys.RECORD), consistent_read=True, limit=1):
                return True
        return False

    def mark_received(self, issuer: str, month: str, on: date, source: str) -> bool:
        """The month's file arrived on `on`, unless an earlier file already marked it.
        Returns whether this call marked it."""
        item = ReceivedMonthItem(*keys.received(issuer, month), received_on=on.isoformat(), source=source)
        try:
            item.save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def received_on(self, issuer: str, month: str) -> date | None:
        try:
            item = ReceivedMonthItem.get(*keys.received(issuer, month), consistent_read=True)
        except ReceivedMonthItem.DoesNotExist:
            return None
        return date.fromisoformat(item.received_on)
