"""Ledger use cases: grant, spend, cancel, balance, history, expire, void, transfer.

Every change follows one path (`Ledger._change`): one BatchGetItem reads the cards and
the request record; a request already carried out returns its original result (or is
refused if its body differs); otherwise the pure domain decides and one
TransactWriteItems commits the cards under their versions with a chained entry each and
the request record. A version conflict re-reads and decides again.

A card has at most one initial grant, whatever request id or path brings it: every grant
with source `initial` puts the claim `INITIAL#<idm>` in its own transaction (a second is
refused, InitialAlreadyGranted, and writes nothing).

Other contexts' bookkeeping that must move with every change (the reports' aggregates)
reaches the transaction through the `extra_writes` hook the composition root installs
(chalicelib/services.py): the ledger imports no other context.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from ..table import Claim, ClaimExists, Write, WriteRefused
from ..ttl_cache import TTLCache
from . import domain, keys
from .chain import GENESIS, canonical_json, fingerprint, link
from .domain import Actor, Card, CardStatus, Entry, Issuer, Lot, Movement, Op, Source, Totals
from .errors import (
    AlreadyCancelled,
    CardClosed,
    CardNotFound,
    Contended,
    IdempotencyConflict,
    InitialAlreadyGranted,
    InvalidRequest,
    LedgerBusy,
    NothingToTakeBack,
    NotYourSpend,
    SpendNotFound,
    UnknownIssuer,  # re-exported: callers import it from here too
    WrongIssuer,
)
from .store import (
    CardStore,
    CardWrite,
    Commit,
    RequestExists,
    StoredCard,
    StoredEntry,
    StoredRequest,
    VersionConflict,
)

if TYPE_CHECKING:
    from ..table import Table

# An issuer's settings (time zone, rates, closure days) change rarely and are read by
# every change; a warm container sees a change made elsewhere within this many seconds.
ISSUER_CACHE_SECONDS = 300.0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Decision:
    """What an operation does: new card states with their movements, and its result."""

    kind: str
    cards: Mapping[str, tuple[Card, tuple[Movement, ...]]]
    result: dict
    reason: str | None = None
    ref: str | None = None
    claims: tuple[Claim, ...] = ()
    writes: tuple[Write, ...] = ()  # another context's items, decided with the change


@dataclass(frozen=True)
class BalanceView:
    card: Card
    day: date
    balance: int
    lots: list[Lot]  # live lots with points, in spend order


@dataclass(frozen=True)
class HistoryPage:
    entries: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True)
class ChainReport:
    idm: str
    ok: bool
    entries: int
    bad_seq: int | None = None
    problem: str | None = None
    seq: int | None = None  # where the walk ended (a sound chain: the card's seq and head)
    head: str | None = None


@dataclass
class _Context:
    """What a decision may look at: the cards as read, the day, the instant."""

    cards: dict[str, Card]
    issuer: Issuer
    now: datetime
    day: date
    requests: dict[str, StoredRequest] = field(default_factory=dict)


# Given the issuer, the change's (first) card and the change's entries: writes that move
# with the change, in its own transaction (no extra round trip). The composition root
# installs the reports' aggregates (reports.store.ledger_aggregates).
ExtraWrites = Callable[[str, str, Sequence[Entry]], Sequence[Write]]


class Ledger:
    def __init__(
        self,
        store: CardStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        attempts: int = 40,
        extra_writes: ExtraWrites | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.attempts = attempts
        self.extra_writes = extra_writes
        self._issuers = TTLCache(ISSUER_CACHE_SECONDS)

    @classmethod
    def on_table(cls, table: Table, **options: Any) -> Ledger:
        """The ledger of the application table (the composition root builds it so: the
        ledger's store stays inside the ledger)."""
        return cls(CardStore(table), **options)

    @staticmethod
    def request_key(request_id: str) -> str:
        """The id of the entry (and request record) a request makes: derived from the
        caller's request id, here only."""
        return keys.request_id_hash(request_id)

    # -- issuers and cards ---------------------------------------------------------

    def issuer(self, issuer_id: str) -> Issuer:
        issuer = self._issuers.get(issuer_id, lambda: self.store.get_issuer(issuer_id))
        if issuer is None:
            self._issuers.forget(issuer_id)  # an issuer added next is found at once
            raise UnknownIssuer(issuer_id)
        return issuer

    def change_issuer(self, issuer_id: str, **changes: object) -> Issuer:
        """Change some of an issuer's settings. The others are read from the table, not the
        cache, so a change made elsewhere minutes ago is kept. This container reads the
        result at once, the others within ISSUER_CACHE_SECONDS."""
        current = self.store.get_issuer(issuer_id)
        if current is None:
            raise UnknownIssuer(issuer_id)
        issuer = replace(current, **changes)
        self.store.put_issuer(issuer)
        self._issuers.forget(issuer_id)
        return issuer

    def open_card(self, *, idm: str, card_number: str, issuer_id: str, birth_date: str | None = None) -> Card:
        if not domain.is_idm(idm):
            raise InvalidRequest("an IDm is 16 lowercase hexadecimal digits")
        if not domain.is_card_number(card_number):
            raise InvalidRequest("a card number is JW and 15 digits")
        self.issuer(issuer_id)
        card = Card(idm=idm, card_number=card_number, issuer=issuer_id, status=CardStatus.ISSUED)
        self.store.add_card(card, birth_date, changed_on=self.today(issuer_id))
        return card

    def today(self, issuer_id: str) -> date:
        return self.issuer(issuer_id).local_date(self.clock())

    # -- changes ---------------------------------------------------------------------

    def grant(
        self,
        idm: str,
        amount: int,
        *,
        request_id: str,
        actor: Actor,
        source: Source,
        granted_on: date | None = None,
        validity_months: int | None = None,
        reason: str | None = None,
        issuer_id: str | None = None,
        claims: Sequence[Claim] = (),
        writes: Sequence[Write] = (),
    ) -> dict:
        """Grant `amount` points as a new lot. `writes` are another context's items
        committed in the grant's own transaction (none when the grant is a repeat)."""

        def decide(ctx: _Context) -> Decision:
            card = ctx.cards[idm]
            valid_from = granted_on or ctx.day
            change = domain.grant(
                card.lots,
                ctx.day,
                lot_id=str(card.seq + 1),
                amount=amount,
                granted_at=ctx.now,
                valid_from=valid_from,
                validity_months=validity_months or ctx.issuer.validity_months,
                source=source,
            )
            after = _moved(card, change.lots, activity=valid_from)
            lot = change.movements[0]
            result = {
                "granted": amount,
                "source": source.value,
                "lot": lot.lot_id,
                "valid_from": valid_from.isoformat(),
                "expires_on": lot.expires_on.isoformat(),
                "balance": domain.balance(after.lots, ctx.day),
            }
            # Once per card whatever the path (an import, the demo loader, a script): the
            # claim is in the grant's own transaction, so no request id can get around it.
            once = (Claim(*keys.initial_grant(idm), error=InitialAlreadyGranted),) if source is Source.INITIAL else ()
            return Decision("grant", {idm: (after, change.movements)}, result, reason=reason, claims=once)

        params = {
            "amount": amount,
            "source": source.value,
            "granted_on": granted_on and granted_on.isoformat(),
            "validity_months": validity_months,
            "reason": reason,
        }
        return self._change(
            "grant", [idm], request_id, actor, params, decide, issuer_id=issuer_id, claims=claims, writes=writes
        )

    def spend(
        self,
        idm: str,
        amount: int,
        *,
        request_id: str,
        actor: Actor,
        allow_shortfall: bool = False,
        issuer_id: str | None = None,
        claims: Sequence[Claim] = (),
    ) -> dict:
        def decide(ctx: _Context) -> Decision:
            card = ctx.cards[idm]
            outcome = domain.spend(card.lots, amount, ctx.day, allow_shortfall=allow_shortfall)
            after = _moved(card, outcome.change.lots, activity=ctx.day if outcome.spent else None)
            result = {
                "requested": amount,
                "spent": outcome.spent,
                "shortfall": outcome.shortfall,
                "balance": domain.balance(after.lots, ctx.day),
                "taken": [[m.lot_id, m.amount, m.expires_on.isoformat()] for m in outcome.change.movements],
            }
            return Decision("spend", {idm: (after, outcome.change.movements)}, result)

        params = {"amount": amount, "allow_shortfall": allow_shortfall}
        return self._change("spend", [idm], request_id, actor, params, decide, issuer_id=issuer_id, claims=claims)

    def cancel_spend(
        self,
        idm: str,
        *,
        spend_request_id: str,
        request_id: str,
        actor: Actor,
        issuer_id: str | None = None,
        claims: Sequence[Claim] = (),
    ) -> dict:
        spend_id = keys.request_id_hash(spend_request_id)

        def decide(ctx: _Context) -> Decision:
            card = ctx.cards[idm]
            spent = ctx.requests.get(spend_id)
            if spent is None or spent.kind != "spend" or spent.idm != idm:
                raise SpendNotFound()
            if Actor.from_dict(spent.actor).merchant != actor.merchant:
                raise NotYourSpend()
            portions = tuple(
                Movement(lot, Op.SPEND, amount, date.fromisoformat(exp)) for lot, amount, exp in spent.result["taken"]
            )
            change = domain.cancel_spend(card.lots, portions, ctx.day)
            after = _moved(card, change.lots)
            result = {
                "cancelled": change.total(Op.CANCEL),
                "expired": change.total(Op.EXPIRE),
                "balance": domain.balance(after.lots, ctx.day),
            }
            once = Claim(*keys.cancelled(spend_id), error=AlreadyCancelled)
            return Decision("spend_cancel", {idm: (after, change.movements)}, result, ref=spend_id, claims=(once,))

        params = {"spend_request": spend_id}
        return self._change(
            "spend_cancel",
            [idm],
            request_id,
            actor,
            params,
            decide,
            issuer_id=issuer_id,
            also_read=(spend_id,),
            claims=claims,
        )

    def take_back_rebate(
        self,
        idm: str,
        points: int,
        *,
        rebate_request_id: str,
        month: str,
        request_id: str,
        actor: Actor,
        reason: str,
        issuer_id: str,
        claims: Sequence[Claim] = (),
        writes: Callable[[int], Sequence[Write]],
    ) -> dict:
        """Take up to `points` back at once from what remains of the lot the rebate grant
        `rebate_request_id` made for `month` (§6.2: a cancelled payment's share of a
        rebate already granted), as a void of that lot with `reason`. `writes(taken)` are the caller's
        items committed in the same transaction (its bookkeeping of what was taken).
        Raises NothingToTakeBack, writing nothing, when no point of that lot can be taken;
        CardClosed for a closed card."""
        grant_id = keys.request_id_hash(rebate_request_id)

        def decide(ctx: _Context) -> Decision:
            card = ctx.cards[idm]
            grant = ctx.requests.get(grant_id)
            if grant is None or grant.kind != "grant" or grant.idm != idm:
                raise NothingToTakeBack()
            change = domain.take_back(card.lots, grant.result["lot"], points, ctx.day)
            if change is None:
                raise NothingToTakeBack()
            taken = change.total(Op.VOID)
            after = _moved(card, change.lots)
            result = {"taken_back": taken, "owed": points, "month": month, "lot": grant.result["lot"],
                      "balance": domain.balance(after.lots, ctx.day)}
            return Decision("rebate_clawback", {idm: (after, change.movements)}, result, reason=reason, ref=grant_id,
                            writes=tuple(writes(taken)))

        params = {"points": points, "rebate": grant_id, "month": month, "reason": reason}
        return self._change(
            "rebate_clawback", [idm], request_id, actor, params, decide, issuer_id=issuer_id, also_read=(grant_id,),
            claims=claims,
        )

    def expire_due(self, idm: str, *, on: date, request_id: str, actor: Actor) -> dict:
        """Record every lot past its expiry on day `on` (a job's run day, not after
        today) as expired. Writes nothing when none is."""

        def decide(ctx: _Context) -> Decision | None:
            if on > ctx.day:
                raise InvalidRequest(f"cannot expire as of {on}, after today {ctx.day}")
            card = ctx.cards[idm]
            change = domain.expire(card.lots, on)
            if not change.movements:
                return None
            return Decision(
                "expire", {idm: (_moved(card, change.lots), change.movements)}, {"expired": change.total(Op.EXPIRE)}
            )

        return self._change("expire", [idm], request_id, actor, {"on": on.isoformat()}, decide, allow_closed=True)

    def void(
        self,
        idm: str,
        *,
        request_id: str,
        actor: Actor,
        reason: str,
        close_as: CardStatus | None = None,
        only_if: Callable[[Card], bool] | None = None,
    ) -> dict:
        """Take every point off the card (past lots expire, the rest are voided);
        with `close_as`, the card is closed in the same step. With `only_if`, nothing
        is written (and {} returned) unless the card as read in the write's own step
        passes it: a job's decision made on an earlier read cannot go stale."""

        def decide(ctx: _Context) -> Decision | None:
            card = ctx.cards[idm]
            if only_if is not None and not only_if(card):
                return None
            change = domain.void(card.lots, ctx.day)
            after = _moved(card, change.lots, status=close_as)
            result = {"voided": change.total(Op.VOID), "expired": change.total(Op.EXPIRE), "status": after.status.value}
            return Decision("void", {idm: (after, change.movements)}, result, reason=reason)

        params = {"reason": reason, "close_as": close_as and close_as.value}
        return self._change("void", [idm], request_id, actor, params, decide)

    def transfer(self, from_idm: str, to_idm: str, *, request_id: str, actor: Actor, reason: str) -> dict:
        """Damage reissue: move every unexpired lot, keeping its dates, to the
        replacement card and close the broken one, in one transaction."""

        def decide(ctx: _Context) -> Decision:
            source, target = ctx.cards[from_idm], ctx.cards[to_idm]
            if source.issuer != target.issuer:
                raise WrongIssuer()
            if source.idm == target.idm:
                raise InvalidRequest("a card cannot be transferred to itself")
            moved = domain.transfer(source.lots, target.lots, ctx.day, lot_prefix=str(target.seq + 1))
            activity = source.last_activity
            after_source = _moved(source, moved.source.lots, status=CardStatus.VOID)
            after_target = _moved(target, moved.target.lots, activity=activity)
            result = {
                "moved": moved.target.total(Op.TRANSFER_IN),
                "expired": moved.source.total(Op.EXPIRE),
                "balance": domain.balance(after_target.lots, ctx.day),
            }
            return Decision(
                "transfer",
                {from_idm: (after_source, moved.source.movements), to_idm: (after_target, moved.target.movements)},
                result,
                reason=reason,
            )

        params = {"to": to_idm, "reason": reason}
        return self._change("transfer", [from_idm, to_idm], request_id, actor, params, decide)

    # -- reads ----------------------------------------------------------------------
    # Thin queries for the other contexts, so none of them reaches into the store.

    def idm_for_number(self, card_number: str) -> str | None:
        """The IDm of the card with this card number (None when there is none)."""
        return self.store.idm_for_number(card_number)

    def card_record(self, idm: str) -> StoredCard | None:
        """The card as stored, with its holder's birth date (None when there is none)."""
        return self.store.get_card(idm)

    def card_records(self, idms: Iterable[str]) -> dict[str, StoredCard]:
        """The cards there are of `idms`, by IDm, in one strongly consistent read."""
        return self.store.load(idms, ()).cards

    def request_record(self, entry_id: str) -> StoredRequest | None:
        """The record of a request already carried out, by its entry id (`request_key`)."""
        return self.store.get_request(entry_id)

    def initial_grant_entry(self, idm: str) -> str | None:
        """The entry id of the card's initial grant, from its claim (None when it has none)."""
        return self.store.initial_grant_entry(idm)

    def issuer_ids(self) -> list[str]:
        """Every issuer."""
        return self.store.issuer_ids()

    def chain_heads(self, issuer_id: str) -> Iterator[tuple[str, int, str]]:
        """(IDm, seq, head) of every card of the issuer (a scan: the audit's anchor and its cards)."""
        return self.store.chain_heads(issuer_id)

    def cards_changed(self, issuer_id: str, day: date, shard_no: int) -> Iterator[str]:
        """IDms of the issuer's cards of shard `shard_no` last written on `day` (the
        by-change index, eventually consistent): the daily audit's cards, without a scan."""
        return self.store.cards_changed(issuer_id, day, shard_no)

    def cards_expiring(self, issuer_id: str, day: date) -> Iterator[str]:
        """IDms the by-expiry index lists under `day` (eventually consistent: re-read each)."""
        return self.store.cards_expiring(issuer_id, day)

    def cards_last_active(self, issuer_id: str, day: date) -> Iterator[str]:
        """IDms the by-dormancy index lists under `day` (eventually consistent: re-read each)."""
        return self.store.cards_last_active(issuer_id, day)

    def card(self, idm: str) -> Card:
        stored = self.store.get_card(idm)
        if stored is None:
            raise CardNotFound()
        return stored.card

    def balance(
        self, idm: str, *, issuer_id: str | None = None, on: date | None = None, claims: Sequence[Claim] = ()
    ) -> BalanceView:
        card = self.card(idm)
        if issuer_id is not None and card.issuer != issuer_id:
            raise WrongIssuer()
        if claims:
            self._spend_replay_claims(claims, "balance")
        day = on or self.today(card.issuer)
        return BalanceView(card, day, domain.balance(card.lots, day), domain.live_lots(card.lots, day))

    def history(self, idm: str, *, limit: int = 20, cursor: str | None = None) -> HistoryPage:
        before = int(cursor) if cursor else None
        if before is not None and before <= 1:
            return HistoryPage([], None)
        entries = [e.entry for e in self.store.entries(idm, limit=limit, before_seq=before)]
        more = len(entries) == limit and entries[-1].seq > 1
        return HistoryPage(entries, str(entries[-1].seq) if more else None)

    def totals(self, idm: str) -> Totals:
        totals = Totals()
        for stored in self.store.entries(idm, newest_first=False):
            totals.add(stored.entry.movements)
        return totals

    def verify(self, idm: str, *, through: tuple[int, str] | None = None) -> ChainReport:
        """Walk the card's chain from the start and compare it with the card's head.
        With `through` = (seq, head), as an anchor recorded them, the chain must also
        still pass through that point: history rewritten and re-chained consistently
        before the anchor passes the walk but not this."""
        stored_card = self.store.get_card(idm)
        if stored_card is None:
            raise CardNotFound()
        prev, count = GENESIS, 0
        if through is not None and through[0] == 0 and through[1] != GENESIS:
            return ChainReport(idm, False, 0, 0, "the anchored head of an empty chain is not the genesis")
        for stored in self.store.entries(idm, newest_first=False):
            count += 1
            problem = _link_problem(stored, idm, count, prev)
            if problem:
                return ChainReport(idm, False, count, count, problem)
            if through is not None and count == through[0] and stored.hash != through[1]:
                return ChainReport(idm, False, count, count, "the chain no longer passes through its anchored head")
            prev = stored.hash
        card = stored_card.card
        if card.seq != count or card.head != prev:
            return ChainReport(idm, False, count, card.seq, "the card's chain head does not match its entries")
        if through is not None and through[0] > count:
            return ChainReport(idm, False, count, through[0], "the chain is shorter than when it was anchored")
        return ChainReport(idm, True, count, seq=count, head=prev)

    def verify_since(
        self, idm: str, anchored: tuple[int, str], *, card: StoredCard | None = None
    ) -> ChainReport:
        """Check only what was written since an anchor: the entry at the anchored seq must
        still hash to the anchored head, and every later entry must link onto it, through
        the card's head. Older history is not read (the full `verify` re-hashes it): one
        Query of the new entries, and one GetItem unless the caller read the card already
        (`card`, from `card_records`: one BatchGetItem for many). The card may have moved
        on between its read and the Query: the walk must then pass through the card's
        head, and the report's head is where the walk ended."""
        stored_card = card if card is not None else self.store.get_card(idm)
        if stored_card is None:
            raise CardNotFound()
        seq, head = anchored
        if seq == 0 and head != GENESIS:
            return ChainReport(idm, False, 0, 0, "the anchored head of an empty chain is not the genesis")
        card_seq = stored_card.card.seq
        prev, count, last = head, 0, seq
        at_card = head if card_seq == seq else None  # the hash of entry card_seq, as walked
        for stored in self.store.entries(idm, newest_first=False, from_seq=max(seq, 1)):
            count += 1
            if seq > 0 and count == 1:  # the anchored entry itself: its hash, not its content
                if stored.hash != head or _seq_of(stored) != seq:
                    return ChainReport(idm, False, count, seq, "the chain no longer passes through its anchored head")
                continue
            problem = _link_problem(stored, idm, last + 1, prev)
            if problem:
                return ChainReport(idm, False, count, last + 1, problem)
            prev, last = stored.hash, last + 1
            if last == card_seq:
                at_card = prev
        if seq > 0 and count == 0:
            return ChainReport(idm, False, 0, seq, "the chain is shorter than when it was anchored")
        if at_card is None or at_card != stored_card.card.head:
            return ChainReport(idm, False, count, card_seq, "the card's chain head does not match its entries")
        return ChainReport(idm, True, count, seq=last, head=prev)

    # -- the one write path ---------------------------------------------------------

    def _change(
        self,
        kind: str,
        idms: list[str],
        request_id: str,
        actor: Actor,
        params: dict,
        decide: Callable[[_Context], Decision | None],
        *,
        issuer_id: str | None = None,
        allow_closed: bool = False,
        also_read: tuple[str, ...] = (),
        claims: Sequence[Claim] = (),
        writes: Sequence[Write] = (),
    ) -> dict:
        entry_id = keys.request_id_hash(request_id)
        request_print = fingerprint({"op": kind, "cards": idms, "actor": actor.as_dict(), **params})
        for attempt in range(self.attempts):
            snap = self.store.load(idms, [entry_id, *also_read])
            stored = [snap.cards.get(i) for i in idms]
            if any(s is None for s in stored):
                raise CardNotFound()
            cards = {s.card.idm: s.card for s in stored}
            if issuer_id is not None and any(c.issuer != issuer_id for c in cards.values()):
                raise WrongIssuer()
            if entry_id in snap.requests:
                self._spend_replay_claims(claims, entry_id)
                return _replay(snap.requests[entry_id], request_print)
            closed = [c for c in cards.values() if c.status.closed]
            if closed and not allow_closed:
                raise CardClosed(closed[0].status.value)
            issuer = self.issuer(stored[0].card.issuer)
            now = self.clock()
            decision = decide(_Context(cards, issuer, now, issuer.local_date(now), snap.requests))
            if decision is None:
                self._spend_replay_claims(claims, entry_id)
                return {}
            before = {s.card.idm: s for s in stored}
            commit = _commit(kind, decision, before, entry_id, request_print, actor, now, issuer, claims, writes,
                             self.extra_writes)
            try:
                self.store.commit(commit)
            except (VersionConflict, Contended):
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            except RequestExists:
                self._spend_replay_claims(claims, entry_id)
                original = self.store.get_request(entry_id)
                assert original is not None
                return _replay(original, request_print)
            except ClaimExists as exc:
                raise exc.claim.error() from exc
            except WriteRefused as exc:
                raise exc.write.error() from exc
            return dict(decision.result)
        raise LedgerBusy()

    def _spend_replay_claims(self, claims: Sequence[Claim], by: str) -> None:
        """A request answered without a write still spends its replay claims (its nonce)."""
        spent = [c for c in claims if c.on_replay]
        if spent:
            try:
                self.store.put_claims(spent, by)
            except ClaimExists as exc:
                raise exc.claim.error() from exc


def _moved(
    card: Card, lots: tuple[Lot, ...], *, activity: date | None = None, status: CardStatus | None = None
) -> Card:
    """The card with new lots, its last grant-or-spend day and status brought forward."""
    last = card.last_activity
    if activity is not None and (last is None or activity > last):
        last = activity
    return replace(card, lots=lots, last_activity=last, status=status or card.status)


def _commit(
    kind: str,
    decision: Decision,
    before: dict[str, StoredCard],
    entry_id: str,
    request_print: str,
    actor: Actor,
    now: datetime,
    issuer: Issuer,
    claims: Sequence[Claim],
    writes: Sequence[Write],
    extra_writes: ExtraWrites | None = None,
) -> Commit:
    cards, entries = [], []
    for idm, (after, movements) in decision.cards.items():
        prev = before[idm].card
        entry = Entry(
            card=idm,
            seq=prev.seq + 1,
            kind=kind,
            at=now,
            day=issuer.local_date(now),
            actor=actor,
            request=entry_id,
            movements=movements,
            reason=decision.reason,
            ref=decision.ref,
            result=decision.result,
        )
        entries.append(entry)
        body = canonical_json(entry.body())
        digest = link(prev.head, body)
        cards.append(
            CardWrite(
                before=before[idm],
                after=replace(after, seq=entry.seq, head=digest),
                entry=StoredEntry(body, prev.head, digest),
            )
        )
    first = cards[0].after
    request = StoredRequest(entry_id, first.idm, first.seq, kind, request_print, actor.as_dict(), decision.result)
    # The report figures (the hook's writes) move with the entries, in the same transaction.
    figures = tuple(extra_writes(issuer.issuer_id, first.idm, entries)) if extra_writes else ()
    return Commit(cards, request, (*decision.claims, *claims), (*writes, *decision.writes, *figures),
                  changed_on=issuer.local_date(now))


def _replay(original: StoredRequest, request_print: str) -> dict:
    if original.fingerprint != request_print:
        raise IdempotencyConflict()
    return dict(original.result)


def _seq_of(stored: StoredEntry) -> int | None:
    try:
        body = json.loads(stored.body)
    except ValueError:
        return None
    return body.get("seq") if isinstance(body, dict) else None


def _link_problem(stored: StoredEntry, idm: str, expected_seq: int, prev: str) -> str | None:
    try:
        body = json.loads(stored.body)
    except ValueError:
        return "the entry's content is not valid JSON"
    if not isinstance(body, dict) or body.get("card") != idm:
        return "the entry belongs to another card"
    if body.get("seq") != expected_seq:
        return f"entry {expected_seq} is missing or out of order"
    if stored.prev != prev:
        return "the entry does not follow the previous one"
    if link(prev, stored.body) != stored.hash:
        return "the entry's content does not match its hash"
    return None
