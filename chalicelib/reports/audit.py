"""Audit (§10): verify the cards' hash chains, and a daily anchor of every chain head.

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

The daily job follows the work (issue 14): it is split into (issuer, shard, day)
pieces (`audit_piece`), each of which

- reads its shard's heads from the previous anchor's locked shard file (no scan),
- lists the shard's cards written since that anchor through the ledger's sparse
  `by-change` index (one query per day and shard),
- checks each such card's new entries link onto the head the previous anchor recorded
  (`Ledger.verify_since`: the anchored entry's hash and the entries after it; older
  history is not re-hashed), and re-walks in full any card that failed before,
- folds the verified heads into the previous ones and writes the shard's file.

A piece given a budget (`max_cards`) stops there, leaves what it verified in a
checkpoint item and returns a cursor to resume from; a piece whose shard file exists
adopts it, so a run killed midway resumes with the shards not yet done. When every
shard has its file, `seal_anchor` writes the day file (the same file as before issue
14) and the item. For the fan-out runner: the pieces of (issuer, day) are the shards
`range(SHARDS)`; a worker calls `audit_piece(..., cursor=, out_of_time=)` until `done`
(re-enqueueing the cursor), and the last step is `conclude_day` with the pieces'
results (it seals, and raises AnchorIncomplete while a shard has no file); a report
that is not `ok` is the job's failure, as `run_audit` (the in-process stand-in) does.
The first anchor of an issuer (no earlier one) scans its cards once
and walks every chain. Cost per day: shards x days-since-the-last-anchor index queries
and about one call per changed card (its new entries; the cards themselves are read
a hundred at a time), whatever the length of the history.

A full re-verification (`audit`: every entry of every card, against an anchor) stays
the operators' command (`python -m chalicelib.reports audit [--shard N]`), split by
shard too: an entry rewritten in old history without touching its card is found there,
not by the daily job.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..ledger.chain import GENESIS
from ..ledger.errors import CardNotFound
from ..ledger.keys import SHARDS
from ..ledger.keys import shard as card_shard
from ..ledger.service import ChainReport, Ledger
from . import keys
from .domain import ChainHead, anchor_digest, shard_digest
from .errors import ReportsError
from .store import Anchor, ReportStore, heads_of


class AnchorIncomplete(ReportsError):
    """The day's anchor cannot be sealed: a shard has no file yet."""

    code = "anchor_incomplete"


@dataclass
class AuditReport:
    issuer_id: str
    cards: int = 0
    entries: int = 0
    failures: list[ChainReport] = field(default_factory=list)
    anchor: date | None = None  # the anchor the chains were checked against
    anchor_problem: str | None = None  # the anchor file does not match its digest
    seconds: float = 0.0
    shards_adopted: int = 0  # shards a run before this one had already done (daily job)

    @property
    def ok(self) -> bool:
        return not self.failures and self.anchor_problem is None


@dataclass
class PieceResult:
    """What one (issuer, shard, day) piece of the daily audit did."""

    issuer_id: str
    shard: int
    day: date
    done: bool  # the shard's file is written (or was already)
    cursor: str | None = None  # where to resume when not done
    cards: int = 0
    entries: int = 0
    failures: list[ChainReport] = field(default_factory=list)
    adopted: bool = False  # a run before this one had done the shard


# One card to check: its place (for the cursor), its IDm, and whether to walk it in full.
Work = tuple[tuple[int, str], str, bool]


@dataclass
class ShardPlan:
    previous: Anchor | None  # the anchor the piece builds on
    work: list[Work]
    same_split: bool = True  # the previous anchor's shard file is of this shard (else: its day file)


def _log(message: str, **fields: object) -> None:
    from ..observability import logger

    logger().info(message, extra=fields)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _previous_heads(store: ReportStore, plan: ShardPlan, shard_no: int) -> dict[str, ChainHead]:
    """The shard's heads in the previous anchor: its shard file, or (an anchor taken before
    the shard files, or split into another number of shards) the day file's cards of the
    shard. Read when the piece runs, so a process running many pieces holds one shard's."""
    previous = plan.previous
    if previous is None:
        return {}
    part = store.shard_anchor(previous.issuer_id, previous.day, shard_no) if plan.same_split else None
    if part is not None and part.shards == SHARDS:
        return {h.idm: h for h in part.heads}
    heads = store.anchor_heads(previous) or []
    return {h.idm: h for h in heads if card_shard(h.idm) == shard_no}


def plan_shard(
    ledger: Ledger, store: ReportStore, issuer_id: str, shard_no: int, day: date, previous: Anchor | None,
    *, scanned: Iterable[str] | None = None,
) -> ShardPlan:
    """The cards a piece checks. With a previous anchor: those the by-change index lists
    for each day from the anchor's day to `day` (a card written on the anchor's day may
    have been written after it), and those that failed then (walked in full). Without
    one: every card of the shard (`scanned`, or a scan), walked in full."""
    if previous is None:
        idms = scanned if scanned is not None else (idm for idm, _, _ in ledger.chain_heads(issuer_id))
        return ShardPlan(None, [((0, idm), idm, True) for idm in sorted(set(idms)) if card_shard(idm) == shard_no])
    header = store.shard_anchor_header(previous.issuer_id, previous.day, shard_no)
    same_split = header is not None and int(header.get("shards", SHARDS)) == SHARDS
    days = _days(previous.day, max(day, previous.day))
    full = {idm for idm, _, _ in header["failures"]} if same_split and header else set()
    seen: set[str] = set()
    work: list[Work] = []
    for n, changed_on in enumerate(days):
        for idm in ledger.cards_changed(issuer_id, changed_on, shard_no):
            if idm not in seen and idm not in full:
                seen.add(idm)
                work.append(((n, idm), idm, False))
    work += [((len(days), idm), idm, True) for idm in sorted(full)]
    return ShardPlan(previous, work, same_split)


BATCH = 100  # cards read in one BatchGetItem before their entries are checked


def _check(ledger: Ledger, idm: str, anchored: ChainHead | None, full: bool, read: dict) -> ChainReport:
    try:
        if full:
            return ledger.verify(idm, through=(anchored.seq, anchored.head) if anchored else None)
        if read.get(idm) is None:
            raise CardNotFound()
        return ledger.verify_since(idm, (anchored.seq, anchored.head) if anchored else (0, GENESIS), card=read[idm])
    except CardNotFound:
        return ChainReport(idm, False, 0, None, "an anchored card is missing")


def _parse_cursor(cursor: str | None) -> tuple[tuple[int, str] | None, int]:
    if not cursor:
        return None, 0
    day_no, idm, chunk = cursor.split(":")
    return (int(day_no), idm), int(chunk)


def audit_piece(
    ledger: Ledger,
    store: ReportStore,
    issuer_id: str,
    shard_no: int,
    day: date,
    *,
    cursor: str | None = None,
    max_cards: int | None = None,
    plan: ShardPlan | None = None,
    on_card: Callable[[], None] | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> PieceResult:
    """One (issuer, shard, day) piece of the daily audit, for the fan-out runner: check the
    shard's cards changed since the previous anchor and write the shard's part of the
    day's anchor. With `max_cards`, stop after that many cards, or once `out_of_time()`
    says so (after one card at least), with a cursor (pass it back to resume; what was
    verified is kept in a checkpoint item, which expires after 30 days). Exactly once per shard
    and day: a piece whose shard file exists returns it, with the failures it recorded."""
    result = PieceResult(issuer_id, shard_no, day, done=False)
    done = store.shard_anchor(issuer_id, day, shard_no)
    if done is not None:
        result.done = result.adopted = True
        result.failures = [ChainReport(idm, False, 0, seq, problem) for idm, seq, problem in done.failures]
        return result
    if plan is None:
        plan = plan_shard(ledger, store, issuer_id, shard_no, day, store.latest_anchor(issuer_id, before=day))
    base = _previous_heads(store, plan, shard_no)
    after, chunk = _parse_cursor(cursor)
    if max_cards is not None:
        max_cards = max(1, max_cards)
    verified: list[ChainHead] = []
    failed: list[tuple[str, int | None, str]] = []
    last: tuple[int, str] | None = None
    read: dict = {}  # IDm -> the card as read (Ledger.card_records), None when there is none
    for n, (place, idm, full) in enumerate(plan.work):
        if after is not None and place <= after:
            continue
        if (max_cards is not None and result.cards >= max_cards) or (
            out_of_time is not None and result.cards > 0 and out_of_time()
        ):
            following = store.put_audit_chunk(issuer_id, day, shard_no, chunk, verified, failed)
            assert last is not None
            result.cursor = f"{last[0]}:{last[1]}:{following}"
            return result
        if not full and idm not in read:  # the next cards to check, in one read
            upcoming = [i for _, i, f in plan.work[n:n + BATCH] if not f]
            found = ledger.card_records(upcoming)
            read = {i: found.get(i) for i in upcoming}
        report = _check(ledger, idm, base.get(idm), full, read)
        result.cards += 1
        result.entries += report.entries
        if report.ok:
            verified.append(ChainHead(idm, report.seq or 0, report.head or GENESIS))
        else:
            result.failures.append(report)
            failed.append((idm, report.bad_seq, report.problem or ""))
            _log("chain broken", issuer=issuer_id, card=idm[:4] + "…", seq=report.bad_seq, problem=report.problem)
        last = place
        if on_card is not None:
            on_card()
    if chunk > 0:  # resumed: what the earlier calls verified
        earlier_heads, earlier_failures = store.audit_chunks(issuer_id, day, shard_no)
        verified = earlier_heads + verified
        failed = [tuple(f) for f in earlier_failures] + failed
        result.failures = [ChainReport(i, False, 0, s, p) for i, s, p in earlier_failures] + result.failures
    heads = base
    for head in verified:  # a card listed twice (it moved on meanwhile): the furthest verified point
        if head.idm not in heads or head.seq >= heads[head.idm].seq:
            heads[head.idm] = head
    for idm, _, _ in failed:  # a broken card never anchored stays in the anchor, at the genesis
        heads.setdefault(idm, ChainHead(idm, 0, GENESIS))
    ordered = sorted(heads.values(), key=lambda h: h.idm)
    digest = shard_digest(issuer_id, day, shard_no, ordered)
    store.put_shard_anchor(issuer_id, day, shard_no, digest, ordered, failed)
    result.done = True
    return result


def seal_anchor(store: ReportStore, issuer_id: str, day: date, *, now: datetime) -> Anchor:
    """The day's anchor from its shard files: the day file (every card's head, as before
    the shards) and then the item, each once. Raises AnchorIncomplete while a shard has no file."""
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
        count = len(heads)
    else:
        # Two passes over the shard files, each a merge of their streams by IDm: the
        # digest, then the file named by it. Only a line per shard is held at a time.
        count, merged = _merged_rows(store, issuer_id, day)
        digest = _streamed_digest(issuer_id, day, count, merged)
        key = keys.anchor_object(issuer_id, day, digest)
        store.put_anchor_file_rows(key, issuer_id, day, digest, count, _merged_rows(store, issuer_id, day)[1])
    anchor = Anchor(issuer_id, day, digest, count, key, now.isoformat())
    if not store.put_anchor(anchor):  # another run took the day's anchor meanwhile
        taken = store.get_anchor(issuer_id, day)
        assert taken is not None
        return taken
    _log("anchor taken", issuer=issuer_id, day=day.isoformat(), cards=count, digest=digest)
    return anchor


def _merged_rows(store: ReportStore, issuer_id: str, day: date) -> tuple[int, Iterator[tuple]]:
    """Every shard file's rows of the day, merged by IDm, and their count."""
    count, streams = 0, []
    for shard_no in range(SHARDS):
        found = store.shard_anchor_rows(issuer_id, day, shard_no)
        if found is None:
            raise AnchorIncomplete(f"{issuer_id} {day}: shard {shard_no} has no anchor file yet")
        count += found[0]
        streams.append(found[1])
    return count, heapq.merge(*streams, key=lambda row: row[0])


def _streamed_digest(issuer_id: str, day: date, count: int, rows: Iterable[tuple]) -> str:
    """`anchor_digest`, line by line over rows sorted by IDm."""
    digest = hashlib.sha256(f"{issuer_id}\n{day.isoformat()}\n{count}\n".encode())
    for idm, seq, head in rows:
        digest.update(f"{idm} {seq} {head}\n".encode())
    return digest.hexdigest()


def _run_pieces(
    ledger: Ledger, store: ReportStore, issuer_id: str, day: date, *, workers: int = 1, progress_every: int = 1000,
    report: AuditReport | None = None,
) -> list[PieceResult]:
    """Every shard's piece of the day, in this process (`workers` threads): the in-process
    stand-in for the fan-out runner, and what `make run` uses."""
    previous = store.latest_anchor(issuer_id, before=day)
    scanned = None
    if previous is None:  # the issuer's first anchor: one scan for every shard
        scanned = [idm for idm, _, _ in ledger.chain_heads(issuer_id)]
    plans = {n: plan_shard(ledger, store, issuer_id, n, day, previous, scanned=scanned) for n in range(SHARDS)}
    total = sum(len(p.work) for p in plans.values())
    lock, done, start = threading.Lock(), [0], time.monotonic()

    def tick() -> None:
        with lock:
            done[0] += 1
            if done[0] % progress_every == 0:
                elapsed = time.monotonic() - start
                _log("audit progress", issuer=issuer_id, cards_done=done[0], cards_total=total,
                     cards_per_s=round(done[0] / elapsed, 1) if elapsed > 0 else None)

    def piece(n: int) -> PieceResult:
        return audit_piece(ledger, store, issuer_id, n, day, plan=plans[n], on_card=tick)

    if workers <= 1:
        return [piece(n) for n in range(SHARDS)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(piece, range(SHARDS)))


def take_anchor(
    ledger: Ledger, store: ReportStore, issuer_id: str, day: date, *, now: datetime, workers: int = 1
) -> Anchor:
    """The issuer's anchor of `day`: taken once; a second run returns the first one."""
    existing = store.get_anchor(issuer_id, day)
    if existing is not None:
        return existing
    if store.anchor_file(issuer_id, day) is None:
        _run_pieces(ledger, store, issuer_id, day, workers=workers)
    return seal_anchor(store, issuer_id, day, now=now)


def _anchored_cards(ledger: Ledger, issuer_id: str, against: Anchor, heads: list[ChainHead],
                    shard_no: int | None) -> set[str]:
    """The cards of the anchor and those written since its day (the by-change index): every
    card there is, without a scan (a card opened after the anchor is written that day)."""
    shards = range(SHARDS) if shard_no is None else [shard_no]
    idms = {h.idm for h in heads}
    for changed_on in _days(against.day, max(ledger.today(issuer_id), against.day)):
        for n in shards:
            idms.update(ledger.cards_changed(issuer_id, changed_on, n))
    return idms


def audit(
    ledger: Ledger,
    store: ReportStore,
    issuer_id: str,
    *,
    against: Anchor | None = None,
    shard: int | None = None,
    progress_every: int = 1000,
    timer: Callable[[], float] = time.monotonic,
) -> AuditReport:
    """The full re-verification: walk every chain of the issuer's cards (of one shard, given
    `shard`) from its first entry and, given an anchor, require each to still pass through
    its anchored head (a card anchored and now gone is a failure). Without an anchor the
    cards come from a scan."""
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
        found = _anchored_cards(ledger, issuer_id, against, heads, shard)
    else:
        found = {idm for idm, _, _ in ledger.chain_heads(issuer_id)}
    idms = sorted(idm for idm in found | set(anchored) if shard is None or card_shard(idm) == shard)
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
    _log("audit done", issuer=issuer_id, cards=report.cards, entries=report.entries, shard=shard,
         cards_per_s=round(report.cards / report.seconds, 1) if report.seconds > 0 else None,
         failures=len(report.failures), anchor=against and against.day.isoformat(),
         anchor_problem=report.anchor_problem, seconds=round(report.seconds, 3))
    return report


def conclude_day(
    store: ReportStore, issuer_id: str, on: date, pieces: Iterable[PieceResult], *, now: datetime,
    seconds: float = 0.0,
) -> AuditReport:
    """After every (issuer, shard, day) piece is done: seal the day's anchor and report.
    For the fan-out runner's last step as for `run_audit`. The anchors bucket must have no
    file for a day between the anchor the pieces built on and `on`: an item removed from
    the table would otherwise make the audit build on an older anchor, and miss what was
    rewritten since."""
    previous = store.latest_anchor(issuer_id, before=on)
    report = AuditReport(issuer_id, anchor=previous.day if previous else None, seconds=seconds)
    seal_anchor(store, issuer_id, on, now=now)
    for piece in pieces:
        report.cards += piece.cards
        report.entries += piece.entries
        report.failures += piece.failures
        report.shards_adopted += piece.adopted
    if previous is not None:
        report.anchor_problem = store.anchor_file_problem(previous)
    lost = store.first_anchor_day_after(issuer_id, previous.day if previous else None)
    if lost is not None and lost < on and report.anchor_problem is None:
        report.anchor_problem = (f"the table has no anchor item for {lost.isoformat()}, "
                                 "whose file is in the anchors bucket")
        _log("anchor item missing", issuer=issuer_id, day=lost.isoformat())
    _log("audit done", issuer=issuer_id, cards=report.cards, entries=report.entries, failures=len(report.failures),
         anchor=report.anchor and report.anchor.isoformat(), anchor_problem=report.anchor_problem,
         shards_adopted=report.shards_adopted, seconds=round(report.seconds, 3))
    return report


def run_audit(
    ledger: Ledger, store: ReportStore, issuer_id: str, on: date, *, now: datetime, progress_every: int = 1000,
    workers: int = 1,
) -> AuditReport:
    """The daily job in this process: every shard's piece (the cards changed since the
    newest earlier anchor, checked onto it; `workers` threads), then today's anchor
    sealed from them (`conclude_day`). A day already anchored reports what its shard
    files recorded."""
    start = time.monotonic()
    if store.get_anchor(issuer_id, on) is None:
        pieces = _run_pieces(ledger, store, issuer_id, on, workers=workers, progress_every=progress_every)
    else:
        pieces = [audit_piece(ledger, store, issuer_id, n, on) for n in range(SHARDS)]
    return conclude_day(store, issuer_id, on, pieces, now=now, seconds=time.monotonic() - start)
