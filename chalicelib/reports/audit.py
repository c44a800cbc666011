"""Audit (§10): verify every card's hash chain, and a daily anchor of every chain head.

A chain that verifies proves only that it is consistent with itself: someone able to
write the table could rewrite an old entry and re-chain everything after it. The daily
anchor pins where every chain stood: SHA-256 over the issuer, the day, the count and
each card's (IDm, seq, head), sorted by IDm. The per-card list goes to S3 as a small
JSON file (for an auditor outside DynamoDB); the item `ANCHOR#<issuer>`/`<day>` holds
the digest and the file's key, put once. A chain is then checked against an anchor by
walking it from the start and requiring the entry at the anchored seq to hash to the
anchored head: heads move on, but a chain only grows, so it must still pass there.

The anchor files go to their own bucket with S3 Object Lock in COMPLIANCE mode, where
the table's writers (anyone) cannot delete or replace what was written: the audit reads
the day's file as first written there (`ReportStore.anchor_file`), and an anchor item
whose digest does not match it, or without a file, fails the audit.

Cost: the anchor is one scan of the issuer's card items; an audit reads every entry
of every card (acceptable for an audit, never done on a request).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from ..ledger.errors import CardNotFound
from ..ledger.service import ChainReport, Ledger
from . import keys
from .domain import ChainHead, anchor_digest
from .store import Anchor, ReportStore, heads_of


@dataclass
class AuditReport:
    issuer_id: str
    cards: int = 0
    entries: int = 0
    failures: list[ChainReport] = field(default_factory=list)
    anchor: date | None = None  # the anchor the chains were checked against
    anchor_problem: str | None = None  # the anchor file does not match its digest
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and self.anchor_problem is None


def _log(message: str, **fields: object) -> None:
    from ..observability import logger

    logger().info(message, extra=fields)


def take_anchor(ledger: Ledger, store: ReportStore, issuer_id: str, day: date, *, now: datetime) -> Anchor:
    """The issuer's anchor of `day`: taken once; a second run returns the first one.
    The file is named by its digest and written before the item, so an anchor item
    never points at a missing or overwritten file."""
    existing = store.get_anchor(issuer_id, day)
    if existing is not None:
        return existing
    written = store.anchor_file(issuer_id, day)
    if written is not None:
        # A run that wrote the file and stopped before the item: the file, locked, is the
        # day's anchor, so the item follows it rather than a second file.
        key, data = written
        heads = heads_of(data)
        digest = anchor_digest(issuer_id, day, heads)
    else:
        heads = [ChainHead(idm, seq, head) for idm, seq, head in ledger.chain_heads(issuer_id)]
        digest = anchor_digest(issuer_id, day, heads)
        key = keys.anchor_object(issuer_id, day, digest)
        store.put_anchor_file(key, issuer_id, day, digest, heads)
    anchor = Anchor(issuer_id, day, digest, len(heads), key, now.isoformat())
    if not store.put_anchor(anchor):  # another run took the day's anchor meanwhile
        taken = store.get_anchor(issuer_id, day)
        assert taken is not None
        return taken
    _log("anchor taken", issuer=issuer_id, day=day.isoformat(), cards=len(heads), digest=digest)
    return anchor


def audit(
    ledger: Ledger,
    store: ReportStore,
    issuer_id: str,
    *,
    against: Anchor | None = None,
    progress_every: int = 1000,
    timer: Callable[[], float] = time.monotonic,
) -> AuditReport:
    """Verify every chain of the issuer's cards and, given an anchor, that each still
    passes through its anchored head (a card anchored and now gone is a failure)."""
    report = AuditReport(issuer_id, anchor=against.day if against else None)
    anchored: dict[str, ChainHead] = {}
    if against is not None:
        heads = store.anchor_heads(against)
        if heads is None:
            report.anchor_problem = "the anchors bucket has no file for the anchor's day"
            heads = []
        elif anchor_digest(issuer_id, against.day, heads) != against.digest or len(heads) != against.count:
            report.anchor_problem = "the anchor file does not match the anchor's digest"
        anchored = {h.idm: h for h in heads}
    idms = sorted({idm for idm, _, _ in ledger.chain_heads(issuer_id)} | set(anchored))
    start = timer()
    for idm in idms:
        head = anchored.get(idm)
        try:
            result = ledger.verify(idm, through=(head.seq, head.head) if head else None)
        except CardNotFound:
            result = ChainReport(idm, False, 0, None, "an anchored card is missing")
        report.cards += 1
        report.entries += result.entries
        if not result.ok:
            report.failures.append(result)
            # A prefix only: no IDm in full in the logs.
            _log("chain broken", issuer=issuer_id, card=idm[:4] + "…", seq=result.bad_seq, problem=result.problem)
        if report.cards % progress_every == 0:
            elapsed = timer() - start
            _log("audit progress", issuer=issuer_id, cards_done=report.cards, cards_total=len(idms),
                 cards_per_s=round(report.cards / elapsed, 1) if elapsed > 0 else None)
    report.seconds = timer() - start
    _log("audit done", issuer=issuer_id, cards=report.cards, entries=report.entries,
         cards_per_s=round(report.cards / report.seconds, 1) if report.seconds > 0 else None,
         failures=len(report.failures), anchor=against and against.day.isoformat(),
         anchor_problem=report.anchor_problem, seconds=round(report.seconds, 3))
    return report


def run_audit(
    ledger: Ledger, store: ReportStore, issuer_id: str, on: date, *, now: datetime, progress_every: int = 1000
) -> AuditReport:
    """The daily job: anchor today, then check every chain against the newest earlier anchor.
    The anchors bucket must have no file for a day between that anchor and today: an
    item removed from the table would otherwise make the audit check against an older
    anchor, and miss what was rewritten since."""
    take_anchor(ledger, store, issuer_id, on, now=now)
    previous = store.latest_anchor(issuer_id, before=on)
    report = audit(ledger, store, issuer_id, against=previous, progress_every=progress_every)
    lost = store.first_anchor_day_after(issuer_id, previous.day if previous else None)
    if lost is not None and lost < on and report.anchor_problem is None:
        report.anchor_problem = (f"the table has no anchor item for {lost.isoformat()}, "
                                 "whose file is in the anchors bucket")
        _log("anchor item missing", issuer=issuer_id, day=lost.isoformat())
    return report
