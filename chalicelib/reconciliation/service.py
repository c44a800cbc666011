"""Reconciliation use cases: match one settlement line to the record it names, mark the
months a finished file covers as received, and gather a month's unmatched records and
lines for the report. The import (chalicelib/imports/) calls the first two per row and
per file; the rebate job (chalicelib/jobs/rebate.py) reads the received months. The
records are the terminals' (read and matched through TerminalService); the list of
records awaiting their line is written in the record's own transaction, with the
`Write`s `awaiting_write` hands the rebates context (chalicelib/rebates/service.py).

Matching is exactly once: the record carries the id of the line that matched it, set
under the condition that it had none, in the same transaction that moves the payment
into what earns a rebate. A line imported again finds its own id there ("already
matched") and changes nothing; another line for the same record is unmatched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from ..errors import Contended
from ..ledger.domain import Issuer
from ..ledger.service import Ledger
from ..table import Write
from ..terminals.domain import MATCHED, CardTxn, TxnKind
from ..terminals.errors import TxnChanged
from . import domain
from .domain import SettlementLine
from .store import ReconciliationStore, awaiting_item, unmatched_key_item


class Records(Protocol):
    """What matching needs of the records' owner (TerminalService, which the composition
    root passes in): declared here, so this context imports no terminals service (whose
    records write this context's awaiting list through the rebates: arrows one way)."""

    def record(self, idm: str, card_seq: int) -> CardTxn | None: ...

    def match_txn(self, txn: CardTxn, line_id: str, *, arrival_month: str, writes: Sequence[Write] = ()) -> None: ...

# A record cancelled or matched between our read and our write is read again: once, in practice.
MATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class LineResult:
    matched: bool
    already: bool = False  # matched by this same line before (a file imported again)
    reason: str | None = None  # why it is unmatched


def awaiting_write(txn: CardTxn, *, listed: bool) -> Write:
    """The record on (`listed`) or off its month's list of records awaiting their line, as a
    write for the transaction that records, cancels or matches it."""
    item = awaiting_item(txn.issuer, txn.month, txn.idm, txn.card_seq, amount=txn.amount, at=txn.at,
                         terminal_id=txn.terminal_id)
    return Write(item, Contended) if listed else Write(item, Contended, delete=True)


def unmatched_line_gone(issuer: str, month: str, line_id: str) -> Write:
    """A line's unmatched mark (if an earlier import left one) deleted, in the match's transaction."""
    return Write(unmatched_key_item(issuer, month, line_id), Contended, delete=True)


class Reconciliation:
    def __init__(self, ledger: Ledger, store: ReconciliationStore, terminals: Records | None = None) -> None:
        # `terminals` is needed to match lines; the reconciliation report, which reads only
        # this context's items, is built without.
        self.ledger = ledger
        self.terminals = terminals
        self.store = store

    def match(self, issuer: Issuer, line: SettlementLine, today: date) -> LineResult:
        """Match `line` to the record of its card and sequence number, once. A line that
        matches nothing is kept (with why) for the reconciliation report; it is not an error."""
        line_id = line.line_id(issuer.issuer_id)
        line_month = line.month(issuer.time_zone)
        for _ in range(MATCH_ATTEMPTS):
            result = self._try(issuer, line, line_id, line_month, today)
            if result is not None:
                break
        else:
            raise TxnChanged()
        if not result.matched:
            self.store.put_unmatched(issuer.issuer_id, line_month, line_id, line, result.reason or "")
        return result

    def _try(self, issuer: Issuer, line: SettlementLine, line_id: str, line_month: str,
             today: date) -> LineResult | None:
        idm = self._card(issuer, line)
        if idm is None:
            return LineResult(False, reason=domain.NO_CARD)
        if isinstance(idm, LineResult):
            return idm
        txn = self.terminals.record(idm, line.card_seq)
        if txn is None or txn.kind is not TxnKind.EMONEY_PAYMENT or txn.issuer != issuer.issuer_id:
            return LineResult(False, reason=domain.NO_RECORD)
        if txn.matched_line is not None:
            if txn.matched_line == line_id:
                return LineResult(True, already=True)
            return LineResult(False, reason=domain.OTHER_LINE)
        problem = domain.mismatch(line, txn.amount, txn.terminal_id)
        if problem is not None:
            return LineResult(False, reason=problem)
        if txn.reconcile == MATCHED:  # matched without a line id: cannot happen; be safe
            return LineResult(False, reason=domain.OTHER_LINE)
        try:
            self.terminals.match_txn(txn, line_id, arrival_month=today.strftime("%Y-%m"),
                                     writes=[unmatched_line_gone(issuer.issuer_id, line_month, line_id)])
        except TxnChanged:
            return None  # cancelled or matched meanwhile: decide again on what is there now
        return LineResult(True)

    def _card(self, issuer: Issuer, line: SettlementLine) -> str | LineResult | None:
        """The IDm the line names (by card number, IDm or both, which must agree), None
        when no card of this issuer has it."""
        by_number = self.ledger.idm_for_number(line.card_number) if line.card_number else None
        if line.card_number and by_number is None:
            return None
        if line.idm and by_number and line.idm != by_number:
            return LineResult(False, reason=domain.CARD_DISAGREES)
        idm = by_number or line.idm
        if line.card_number is None:
            stored = self.ledger.card_record(idm)
            if stored is None or stored.card.issuer != issuer.issuer_id:
                return None
        return idm

    def file_received(self, issuer: Issuer, lines: Iterable[SettlementLine], on: date, source: str) -> list[str]:
        """A settlement file (`source`: its S3 key) went through every row on `on`: each
        month it covers is received (unless an earlier file already was). Returns the
        months it marked."""
        return [m for m in domain.months_covered(lines, issuer.time_zone, source)
                if self.store.mark_received(issuer.issuer_id, m, on, source)]

    def received_on(self, issuer_id: str, month: str) -> date | None:
        """The day the month's settlement file arrived, or None."""
        return self.store.received_on(issuer_id, month)

    def has_awaiting(self, issuer_id: str, month: str) -> bool:
        """Whether any record of the month awaits its line."""
        return self.store.has_awaiting(issuer_id, month)

    def report_rows(self, issuer: Issuer, month: str) -> list[list[object]]:
        records = list(self.store.awaiting_records(issuer.issuer_id, month))
        lines = list(self.store.unmatched_lines(issuer.issuer_id, month))
        received = self.store.received_on(issuer.issuer_id, month)
        return domain.report_rows(month, records, lines, received, issuer.time_zone)
