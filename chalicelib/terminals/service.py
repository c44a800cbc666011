"""Terminal use cases: the registry, request authentication, and the operations a
store, charging or event terminal performs; and the reads of what they recorded that
another context needs (the campaign job: the cards that charged in a month, a card's
charges of some months; the reconciliation: a record, and its match to a settlement line).

An e-money payment's rebate is the rebates context's (chalicelib/rebates/): the rate it
earns is chosen by its rules, and its month's accrual is written in the record's own
transaction with the writes `Rebates` hands the store. Rebate rates are cached like
merchants.

Every operation costs at most two DynamoDB round trips with warm caches: terminals,
merchants and events are cached briefly in memory; the signature's nonce is spent in
the same transaction as the work it authorizes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..ledger.domain import Actor, Issuer, Source
from ..ledger.errors import (
    CardClosed,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NothingToTakeBack,
    WrongIssuer,
)
from ..ledger.service import Ledger
from ..rebates.domain import RebateRate, rebate_bps, rebate_owed_back, rebate_request_id
from ..rebates.errors import MonthMoved
from ..rebates.service import Rebates
from ..table import Claim, ClaimExists, Write
from ..ttl_cache import TTLCache
from . import keys
from .domain import (
    AWAITING,
    EMONEY_MAX_YEN,
    CardTxn,
    DailyLimit,
    Event,
    Merchant,
    Mode,
    MonthCharge,
    Operation,
    Terminal,
    TerminalStatus,
    TxnKind,
)
from .errors import (
    AlreadyCancelled,
    AlreadyCheckedIn,
    AmountOverLimit,
    CardDailyLimit,
    EventClosed,
    ModeNotAllowed,
    NonceReused,
    RecordConflict,
    RecordRefused,
    SignatureRejected,
    TerminalDailyLimit,
    TxnChanged,
    UnknownRecord,
)
from .signatures import MAX_SKEW, claimed_key_id, verify
from .store import (
    MONTH_ATTEMPTS,
    MonthSettled,
    OverDailyLimit,
    TerminalStore,
    TxnExists,
    txn_fingerprint,
)

# How far a reported payment or charge time may lie from the server's clock. Records
# queued offline on a terminal may arrive days late; none may come from the future.
RECORD_MAX_AGE = timedelta(days=31)
RECORD_MAX_AHEAD = timedelta(minutes=5)


@dataclass(frozen=True)
class Caller:
    """An authenticated terminal and the nonce its request must spend."""

    terminal: Terminal
    nonce: Claim

    @property
    def actor(self) -> Actor:
        return Actor("terminal", self.terminal.terminal_id, merchant=self.terminal.merchant_id)


class TerminalService:
    def __init__(
        self,
        ledger: Ledger,
        store: TerminalStore,
        *,
        clock: Callable[[], datetime] | None = None,
        cache_seconds: float = 30.0,
        reconciliation_default: bool = False,
        rebates: Rebates,
    ) -> None:
        self.ledger = ledger
        self.store = store
        # The rebates context: rates, and a payment's month written in the record's transaction.
        self.rebates = rebates
        # Whether an issuer that sets nothing requires reconciliation (Settings.reconciliation).
        self.reconciliation_default = reconciliation_default
        self.clock = clock or ledger.clock
        self._cache = TTLCache(cache_seconds)

    # -- registry -------------------------------------------------------------------

    def register_merchant(self, merchant: Merchant) -> None:
        self.ledger.issuer(merchant.issuer)
        if merchant.rebate_bps is not None and not 0 <= merchant.rebate_bps <= 10_000:
            raise InvalidRequest("rebate_bps must be between 0 and 10000")
        self.store.put_merchant(merchant)
        self._cache.forget(f"m:{merchant.issuer}:{merchant.merchant_id}")
        self._cache.forget(f"d:{merchant.issuer}")

    def register_rebate_rate(self, rate: RebateRate) -> None:
        """A campaign period's rate; it applies to payments made from its first day."""
        self.ledger.issuer(rate.issuer)
        if not 0 <= rate.bps <= 10_000 or rate.ends_on < rate.starts_on:
            raise InvalidRequest("a rebate rate needs bps between 0 and 10000 and a period that ends after it starts")
        if rate.merchant_id is not None and self.store.get_merchant(rate.issuer, rate.merchant_id) is None:
            raise InvalidRequest(f"no merchant {rate.merchant_id} of issuer {rate.issuer}")
        self.rebates.put_rate(rate)
        self._cache.forget(f"r:{rate.issuer}")

    def register_event(self, event: Event) -> None:
        self.ledger.issuer(event.issuer)
        if event.points <= 0 or event.closes_at <= event.opens_at:
            raise InvalidRequest("an event needs positive points and a window that closes after it opens")
        self.store.put_event(event)
        self._cache.forget(f"e:{event.event_id}")

    def register_terminal(self, terminal: Terminal) -> None:
        self.ledger.issuer(terminal.issuer)
        try:
            key = load_pem_public_key(terminal.public_key.encode())
        except ValueError as exc:
            raise InvalidRequest("the public key is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidRequest("the public key is not an Ed25519 key")
        if terminal.mode is Mode.STORE and terminal.merchant_id is None:
            raise InvalidRequest("a store terminal belongs to a merchant")
        if terminal.mode is Mode.EVENT and terminal.event_id is None:
            raise InvalidRequest("an event terminal belongs to an event")
        if terminal.merchant_id is not None and self.store.get_merchant(terminal.issuer, terminal.merchant_id) is None:
            raise InvalidRequest(f"no merchant {terminal.merchant_id} of issuer {terminal.issuer}")
        self.store.put_terminal(terminal)
        self._cache.forget(f"t:{terminal.terminal_id}")

    def set_terminal_status(self, terminal_id: str, status: TerminalStatus) -> Terminal:
        terminal = self.store.get_terminal(terminal_id)
        if terminal is None:
            raise UnknownRecord(f"no terminal {terminal_id}")
        terminal = replace(terminal, status=status)
        self.store.put_terminal(terminal)
        self._cache.forget(f"t:{terminal_id}")
        return terminal

    def merchants(self, issuer: str) -> list[Merchant]:
        return sorted(self.store.merchants(issuer), key=lambda m: (m.area, m.name))

    def directory(self, issuer: str) -> list[Merchant]:
        """The issuer's merchants as MyPage shows them (its store list, its history's
        labels): cached like terminals, so a page reads no directory while warm; a merchant
        registered elsewhere shows within the cache's seconds."""
        return self._cache.get(f"d:{issuer}", lambda: self.merchants(issuer))

    # -- what other contexts read (the campaign job) -----------------------------------

    def charging_cards(self, issuer: str, month: str) -> list[str]:
        """IDms of the issuer's cards that charged in `month` (the CHARGES# partitions: a
        query per shard)."""
        return list(self.store.charging_cards(issuer, month))

    def card_charges(self, idm: str, months: Sequence[str]) -> list[MonthCharge]:
        """The card's charges in `months` (YYYY-MM; charges are never cancelled), from its
        card-month briefs: one query of at most len(months) small items, whatever the
        card's history. (Charges recorded before the briefs existed are in them once
        `brief_month` has run for their months: the deploy's one-off backfill.)"""
        if not months:
            return []
        wanted = set(months)
        found = self.store.card_months(idm, min(months), max(months))
        return [c for month, listed in found.items() if month in wanted for c in listed]

    def brief_month(self, issuer: str, month: str) -> int:
        """Write the brief of every card that charged in the issuer's `month` from its TXN
        items, where the brief lacks some (recorded before the briefs existed); safe to run
        while terminals record, and again. Returns how many cards' briefs it wrote."""
        return sum(self.store.rebuild_card_month(idm, month) for idm in self.store.charging_cards(issuer, month))

    def card_txns(self, idm: str) -> list[CardTxn]:
        """Every e-money payment and charge recorded for the card, cancelled ones too (one
        strongly consistent query of its TXN# items)."""
        return self.store.card_txns(idm)

    # -- what the reconciliation reads and writes --------------------------------------------

    def record(self, idm: str, card_seq: int) -> CardTxn | None:
        """The card's record with that sequence number, or None (strongly consistent)."""
        found = self.store.get_txn(idm, card_seq)
        return found[0] if found else None

    def match_txn(self, txn: CardTxn, line_id: str, *, arrival_month: str, writes: Sequence[Write] = ()) -> None:
        """Mark the record matched by settlement line `line_id` and move it into what earns a
        rebate, with the caller's `writes`, in one transaction. Raises TxnChanged when it was
        cancelled or matched meanwhile."""
        self.store.match_txn(txn, line_id, arrival_month=arrival_month, book=self.rebates, writes=writes)

    def _terminal(self, terminal_id: str) -> Terminal | None:
        return self._cache.get(f"t:{terminal_id}", lambda: self.store.get_terminal(terminal_id))

    def _merchant(self, terminal: Terminal) -> Merchant | None:
        if terminal.merchant_id is None:
            return None
        return self._cache.get(
            f"m:{terminal.issuer}:{terminal.merchant_id}",
            lambda: self.store.get_merchant(terminal.issuer, terminal.merchant_id),
        )

    def _rebate_rates(self, issuer: str) -> list[RebateRate]:
        return self._cache.get(f"r:{issuer}", lambda: self.rebates.rates(issuer))

    def _event(self, event_id: str) -> Event | None:
        return self._cache.get(f"e:{event_id}", lambda: self.store.get_event(event_id))

    # -- authentication ---------------------------------------------------------------

    def authenticate(
        self, *, method: str, path: str, headers: Mapping[str, str], body: bytes, operation: Operation
    ) -> Caller:
        try:
            signed = verify(
                method=method, path=path, headers=headers, body=body, find_terminal=self._terminal, now=self.clock()
            )
        except SignatureRejected as exc:
            exc.key_id = claimed_key_id(headers)  # for the operators' log
            raise
        if not signed.terminal.allows(operation):
            raise ModeNotAllowed(signed.terminal.mode.value, operation.value)
        nonce = Claim(
            *keys.nonce(signed.terminal.terminal_id, signed.nonce),
            error=functools.partial(NonceReused, signed.terminal.terminal_id),
            expires_at=signed.created + 2 * MAX_SKEW,
            on_replay=True,
        )
        return Caller(signed.terminal, nonce)

    # -- operations ---------------------------------------------------------------------

    def balance(self, caller: Caller, idm: str) -> dict:
        view = self.ledger.balance(idm, issuer_id=caller.terminal.issuer, claims=[caller.nonce])
        return {
            "balance": view.balance,
            "as_of": view.day.isoformat(),
            "lots": [{"points": lot.remaining, "expires_on": lot.expires_on.isoformat()} for lot in view.lots],
        }

    def point_payment(self, caller: Caller, *, request_id: str, idm: str, amount: int, allow_shortfall: bool) -> dict:
        result = self.ledger.spend(
            idm,
            amount,
            request_id=_payment_id(caller.terminal, request_id),
            actor=caller.actor,
            allow_shortfall=allow_shortfall,
            issuer_id=caller.terminal.issuer,
            claims=[caller.nonce],
        )
        return _public(result, "requested", "spent", "shortfall", "balance")

    def point_payment_cancel(self, caller: Caller, *, request_id: str, idm: str, payment_request_id: str) -> dict:
        result = self.ledger.cancel_spend(
            idm,
            spend_request_id=_payment_id(caller.terminal, payment_request_id),
            request_id=f"{_payment_id(caller.terminal, request_id)}:cancel",
            actor=caller.actor,
            issuer_id=caller.terminal.issuer,
            claims=[caller.nonce],
        )
        return _public(result, "cancelled", "expired", "balance")

    def emoney_payment(self, caller: Caller, *, request_id: str, idm: str, amount: int, paid_at: datetime,
                       card_seq: int) -> dict:
        return self._record(caller, TxnKind.EMONEY_PAYMENT, request_id, idm, amount, paid_at, card_seq, None)

    def charge(self, caller: Caller, *, request_id: str, idm: str, amount: int, charged_at: datetime,
               card_seq: int, kind: str) -> dict:
        return self._record(caller, TxnKind.CHARGE, request_id, idm, amount, charged_at, card_seq, kind)

    def emoney_payment_cancel(self, caller: Caller, *, request_id: str, idm: str, card_seq: int) -> dict:
        found = self.store.get_txn(idm, card_seq)
        txn = found[0] if found else None
        if (
            txn is None
            or txn.kind is not TxnKind.EMONEY_PAYMENT
            or txn.issuer != caller.terminal.issuer
            or txn.merchant_id != caller.terminal.merchant_id
        ):
            raise UnknownRecord("no e-money payment of this merchant with that card sequence number")
        result = {"cancelled": txn.amount, "month": txn.month, "card_seq": card_seq}
        if txn.cancelled:
            if txn.cancel_request_id == request_id:
                self._spend_nonce(caller)
                return result
            raise AlreadyCancelled()
        issuer = self.ledger.issuer(txn.issuer)
        today = issuer.local_date(self.clock())
        # Cancelled the day it was recorded, a payment leaves that day's totals again
        # (a clerk's mistake undone does not use up the store's limit); a past day's are moot.
        give_back = _daily_limits(issuer, txn.terminal_id, idm, txn.kind, today) if txn.counted_on == today else ()
        try:
            self._cancel(caller, txn, request_id, give_back)
        except (TxnChanged, IdempotencyConflict) as exc:
            raise AlreadyCancelled() from exc
        except ClaimExists as exc:
            raise exc.claim.error() from exc
        return result

    def _cancel(self, caller: Caller, txn: CardTxn, request_id: str, give_back: tuple[DailyLimit, ...]) -> None:
        """Take the payment out of its month. In a month the rebate job has already
        settled (rare: a cancel weeks later), the rebate it earned is taken back at once
        from what remains of that month's rebate lot, in the cancel's own transaction,
        and only the rest is carried into later rebates (§6.2). That costs three more
        round trips: the settled month is found by the refused first write, then read."""
        try:
            self.store.cancel_txn(txn, request_id, [caller.nonce], book=self.rebates, give_back=give_back,
                                  unless_settled=True)
            return
        except MonthSettled as settled:
            weighted: int | None = settled.weighted
        for _ in range(MONTH_ATTEMPTS):
            owed = rebate_owed_back(weighted, txn) if weighted is not None else 0
            if owed <= 0:
                break
            try:
                self.ledger.take_back_rebate(
                    txn.idm,
                    owed,
                    rebate_request_id=rebate_request_id(txn.issuer, txn.month, txn.idm),
                    month=txn.month,
                    request_id=f"rebate-back:{txn.issuer}:{txn.idm}:{txn.card_seq}:{request_id}",
                    actor=caller.actor,
                    reason=f"e-money rebate for {txn.month} taken back: a payment of {txn.amount} yen was cancelled",
                    issuer_id=txn.issuer,
                    claims=[caller.nonce],
                    writes=functools.partial(self.store.settled_cancel_writes, txn, request_id, weighted,
                                             give_back=give_back, book=self.rebates),
                )
                return
            except (NothingToTakeBack, CardClosed):
                break
            except MonthMoved:
                weighted = self.rebates.settled_weighted(txn)
        # Nothing of the lot to take (spent, expired, never granted): all is carried.
        self.store.cancel_txn(txn, request_id, [caller.nonce], book=self.rebates, give_back=give_back)

    def checkin(self, caller: Caller, *, request_id: str, idm: str) -> dict:
        terminal = caller.terminal
        event = self._event(terminal.event_id or "")
        if event is None or event.issuer != terminal.issuer:
            raise UnknownRecord("this terminal's event is not registered")
        if not event.is_open(self.clock()):
            raise EventClosed()
        result = self.ledger.grant(
            idm,
            event.points,
            request_id=f"checkin:{terminal.terminal_id}:{request_id}",
            actor=caller.actor,
            source=Source.EVENT,
            validity_months=event.validity_months,
            reason=f"event {event.event_id}",
            issuer_id=terminal.issuer,
            claims=[Claim(*keys.checkin(event.event_id, idm), error=AlreadyCheckedIn), caller.nonce],
        )
        return {"event": event.name, **_public(result, "granted", "expires_on", "balance")}

    # -- records of e-money payments and charges -------------------------------------------

    def _record(self, caller: Caller, kind: TxnKind, request_id: str, idm: str, amount: int, at: datetime,
                card_seq: int, charge_kind: str | None) -> dict:
        if isinstance(amount, bool) or amount <= 0:
            raise InvalidAmount(amount)
        if amount > EMONEY_MAX_YEN:
            raise _refused(AmountOverLimit(EMONEY_MAX_YEN), caller)
        now = self.clock()
        if not now - RECORD_MAX_AGE <= at <= now + RECORD_MAX_AHEAD:
            raise InvalidRequest("the transaction time is too far from now")
        terminal = caller.terminal
        card = self.ledger.card(idm)
        if card.issuer != terminal.issuer:
            raise WrongIssuer()
        if card.status.closed:
            raise CardClosed(card.status.value)
        issuer = self.ledger.issuer(terminal.issuer)
        today = issuer.local_date(now)
        limits = _daily_limits(issuer, terminal.terminal_id, idm, kind, today)
        for limit in limits:
            if not limit.admits(amount):
                raise _refused(_over(limit), caller)
        merchant = self._merchant(terminal)
        day = issuer.local_date(at)
        rate = None
        if kind is TxnKind.EMONEY_PAYMENT:
            rate = rebate_bps(issuer.rebate_bps, merchant, self._rebate_rates(issuer.issuer_id), day)
        # Under reconciliation an e-money payment earns nothing until the acquirer's
        # settlement file matches it (chalicelib/reconciliation/).
        awaiting = kind is TxnKind.EMONEY_PAYMENT and issuer.requires_reconciliation(self.reconciliation_default)
        txn = CardTxn(
            kind=kind,
            issuer=terminal.issuer,
            idm=idm,
            card_seq=card_seq,
            amount=amount,
            at=at,
            month=day.strftime("%Y-%m"),
            terminal_id=terminal.terminal_id,
            merchant_id=terminal.merchant_id,
            request_id=request_id,
            charge_kind=charge_kind,
            rebate_bps=rate,
            counted_on=today,
            reconcile=AWAITING if awaiting else None,
        )
        print_ = txn_fingerprint(txn)
        result = {"recorded": kind.value, "card_seq": card_seq, "amount": amount, "month": txn.month}
        arrival_month = issuer.local_date(now).strftime("%Y-%m")
        try:
            self.store.record_txn(txn, print_, [caller.nonce], arrival_month=arrival_month, book=self.rebates,
                                  limits=limits)
        except OverDailyLimit as exc:
            raise _refused(_over(exc.limit), caller) from exc
        except TxnExists as exc:
            if exc.fingerprint != print_:
                raise RecordConflict("another transaction with this card sequence number is recorded") from exc
            self._spend_nonce(caller)
            return {**result, "duplicate": True}
        except ClaimExists as exc:
            raise exc.claim.error() from exc
        return {**result, "duplicate": False}

    def _spend_nonce(self, caller: Caller) -> None:
        try:
            self.store.put_claims([caller.nonce], "repeat")
        except ClaimExists as exc:
            raise exc.claim.error() from exc


def _daily_limits(issuer: Issuer, terminal_id: str, idm: str, kind: TxnKind, today: date) -> tuple[DailyLimit, ...]:
    return (
        DailyLimit("terminal", terminal_id, kind, today, issuer.emoney_terminal_daily_yen),
        DailyLimit("card", idm, kind, today, issuer.emoney_card_daily_yen),
    )


def _over(limit: DailyLimit) -> RecordRefused:
    return TerminalDailyLimit(limit.limit) if limit.scope == "terminal" else CardDailyLimit(limit.limit)


def _refused(exc: RecordRefused, caller: Caller) -> RecordRefused:
    exc.terminal = caller.terminal.terminal_id
    return exc


def _payment_id(terminal: Terminal, request_id: str) -> str:
    """Point payments are named per merchant, so only their merchant can find them to cancel."""
    return f"pay:{terminal.issuer}:{terminal.merchant_id}:{request_id}"


def _public(result: dict, *fields: str) -> dict:
    return {f: result[f] for f in fields}
