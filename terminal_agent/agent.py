"""The terminal's use cases, without any UI: what a tap does for each operation.

Two kinds of operation, and the network decides differently for them:

- Point payments, their cancels, balance checks and event check-ins are decided by the
  server (the balance lives there). Without the network they cannot be done: they raise,
  and nothing is kept for later. A point payment accepted offline could spend points the
  card no longer has. One exception keeps the money right: a point payment whose answer
  was lost (it may have been made) is reversed by a cancel queued for later.
- E-money payments, their cancels and charges have already happened on the card (the
  certified reader moved the money); the server only records them for rebates and
  campaigns. Without the network they are queued durably (`OfflineQueue`) and sent
  later, in order, and the clerk carries on.

Every mutating request carries a request id made here and kept in its body, so the
client's retries and the queue's resends are recognised by the server as the same
request (SPEC §7). E-money payments and charges are also keyed by the card's own
transaction sequence number, which makes a payment recorded twice (a clerk who pressed
again, a resend with a new request id) one record.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .card import CardRead
from .client import ApiClient, ApiError, Offline
from .config import AgentConfig
from .queue import KEEP_ON, FlushReport, OfflineQueue

API = "/api/terminal/v1"
BALANCE = f"{API}/balance"
POINT_PAYMENTS = f"{API}/point-payments"
POINT_PAYMENT_CANCELS = f"{API}/point-payments/cancel"
EMONEY_PAYMENTS = f"{API}/emoney-payments"
EMONEY_PAYMENT_CANCELS = f"{API}/emoney-payments/cancel"
CHARGES = f"{API}/charges"
CHECKINS = f"{API}/checkins"

MAX_AMOUNT = 10_000_000  # the API's limit on points and yen (openapi.json)
CHARGE_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")  # as the API's ChargeRequest.kind
RECENT_KEPT = 50  # point payments remembered for the cancel menu


class AgentError(Exception):
    """Refused on the terminal, before or instead of asking the server. `code` keys
    `messages.MESSAGES`."""

    code = "agent_error"


class PointPaymentNeedsNetwork(AgentError):
    """No point payment offline. If the request may have reached the server before the
    network failed, its reversal was queued (`reversal_queued`): the payment, if it was
    made, is cancelled as soon as the network is back, since the customer paid otherwise."""

    code = "point_payment_offline"

    def __init__(self, request_id: str | None = None, *, reversal_queued: bool = False) -> None:
        super().__init__("point payments need the network: the balance is on the server, so none is taken offline")
        self.request_id = request_id
        self.reversal_queued = reversal_queued


class NoCardHistory(AgentError):
    code = "no_card_history"

    def __init__(self) -> None:
        super().__init__(
            "the card has no readable e-money history (no transaction sequence number), so this cannot be recorded"
        )


class InvalidAmount(AgentError):
    code = "invalid_amount"

    def __init__(self, amount: object) -> None:
        super().__init__(f"amount must be an integer from 1 to {MAX_AMOUNT:,}, got {amount!r}")


class InvalidChargeKind(AgentError):
    code = "invalid_charge_kind"

    def __init__(self, kind: object) -> None:
        super().__init__(f"a charge kind is a lowercase word like cash or point-charge, got {kind!r}")


@dataclass(frozen=True)
class Recorded:
    """The outcome of an e-money or charge record: sent (with the server's answer) or
    queued for later. `reason` says why it was queued (`offline`, an error code, or
    `queued_behind` when older records are still waiting)."""

    queued: bool
    result: dict | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PointPayment:
    """A point payment this terminal made, kept so the clerk can pick it to cancel."""

    request_id: str
    idm: str
    amount: int
    spent: int
    at: datetime


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        client: ApiClient | None = None,
        queue: OfflineQueue | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = client if client is not None else ApiClient(config)
        self.queue = queue if queue is not None else OfflineQueue(config.queue_path, clock=self.clock)
        self._recent: deque[PointPayment] = deque(maxlen=RECENT_KEPT)

    def close(self) -> None:
        self.client.close()
        self.queue.close()

    # -- decided by the server: needs the network ----------------------------------------

    def balance(self, card: CardRead) -> dict:
        """Points balance and lots from the server, with the e-money balance read from the
        card itself (None when the card has no readable history)."""
        result = self.client.post(BALANCE, {"idm": card.idm})
        return {**result, "emoney_balance": card.emoney_balance}

    def pay_points(self, card: CardRead, amount: int, allow_shortfall: bool = False) -> dict:
        """Pay `amount` with points. With `allow_shortfall`, spend what the card has and
        return the `shortfall` to take in cash. The answer includes this payment's
        `request_id`, which its cancel needs."""
        _check_amount(amount)
        # Queued requests go first: a waiting reversal gives back points this payment may
        # need. Found offline doing so: fail now rather than wait out the timeouts again.
        if self.queue.count() and self.flush_queue().stopped_by == "offline":
            raise PointPaymentNeedsNetwork()
        request_id = _new_request_id()
        body = {"request_id": request_id, "idm": card.idm, "amount": amount, "allow_shortfall": allow_shortfall}
        try:
            result = self.client.post(POINT_PAYMENTS, body)
        except Offline as exc:
            if not exc.maybe_delivered:
                raise PointPaymentNeedsNetwork(request_id) from exc
            # The server may have spent the points and only the answer was lost; the
            # clerk is told the payment failed, so it must not stand. The queue sends
            # the cancel (in order, before any later request) once the network is back.
            reversal = {"request_id": _new_request_id(), "idm": card.idm, "payment_request_id": request_id}
            self.queue.put(POINT_PAYMENT_CANCELS, reversal, failed_with=f"reversal of an unanswered payment: {exc}")
            raise PointPaymentNeedsNetwork(request_id, reversal_queued=True) from exc
        self._recent.append(PointPayment(request_id, card.idm, amount, result.get("spent", amount), self.clock()))
        return {**result, "request_id": request_id}

    def cancel_points(self, card: CardRead, payment_request_id: str) -> dict:
        """Cancel a point payment of this merchant; raises Offline without the network
        (the points return to their lots on the server, so nothing is kept for later)."""
        body = {"request_id": _new_request_id(), "idm": card.idm, "payment_request_id": payment_request_id}
        result = self.client.post(POINT_PAYMENT_CANCELS, body)
        self._forget(payment_request_id)
        return result

    def point_payments_of(self, card: CardRead) -> list[PointPayment]:
        """This session's point payments on the card, newest first."""
        return [p for p in reversed(self._recent) if p.idm == card.idm]

    def checkin(self, card: CardRead) -> dict:
        return self.client.post(CHECKINS, {"request_id": _new_request_id(), "idm": card.idm})

    # -- records of what happened on the card: queued when offline ----------------------

    def record_emoney(self, card: CardRead, amount: int, paid_at: datetime | None = None) -> Recorded:
        """Record an e-money payment the certified reader took from the card; the card's
        newest history record is that payment, so its sequence number keys the record."""
        _check_amount(amount)
        body = {
            "request_id": _new_request_id(),
            "idm": card.idm,
            "amount": amount,
            "paid_at": _instant(paid_at or self.clock()),
            "card_seq": _card_seq(card),
        }
        return self._record(EMONEY_PAYMENTS, body)

    def cancel_emoney(self, card: CardRead, card_seq: int) -> Recorded:
        """Record the cancel of the e-money payment with sequence number `card_seq`.
        Queued like the payments, so it is sent after the payment it cancels."""
        if isinstance(card_seq, bool) or not isinstance(card_seq, int) or not 0 <= card_seq <= 0xFFFF:
            raise ValueError(f"a card sequence number is 0-65535, got {card_seq!r}")
        body = {"request_id": _new_request_id(), "idm": card.idm, "card_seq": card_seq}
        return self._record(EMONEY_PAYMENT_CANCELS, body)

    def record_charge(
        self, card: CardRead, amount: int, kind: str = "cash", charged_at: datetime | None = None
    ) -> Recorded:
        """Record a cash (or other `kind`) charge the charging machine loaded onto the card."""
        _check_amount(amount)
        if not CHARGE_KIND.fullmatch(kind):
            # Checked here: queued offline, a bad kind would only be refused later.
            raise InvalidChargeKind(kind)
        body = {
            "request_id": _new_request_id(),
            "idm": card.idm,
            "amount": amount,
            "kind": kind,
            "charged_at": _instant(charged_at or self.clock()),
            "card_seq": _card_seq(card),
        }
        return self._record(CHARGES, body)

    def flush_queue(self) -> FlushReport:
        return self.queue.flush(self.client)

    def _record(self, path: str, body: dict) -> Recorded:
        if self.queue.count():
            report = self.flush_queue()
            if report.remaining:
                # Older records are still waiting (offline, or another flush is sending
                # them): this one goes behind them, so order is kept.
                self.queue.put(path, body)
                return Recorded(queued=True, reason="queued_behind")
        try:
            return Recorded(queued=False, result=self.client.post(path, body))
        except Offline as exc:
            self.queue.put(path, body, failed_with=f"offline: {exc}")
            return Recorded(queued=True, reason="offline")
        except ApiError as exc:
            # A server failure or the terminal's clock says nothing against the record
            # itself, and the money has moved on the card: keep it for later.
            if exc.status >= 500 or exc.code in KEEP_ON:
                self.queue.put(path, body, failed_with=f"{exc.status} {exc.code}: {exc.message}")
                return Recorded(queued=True, reason=exc.code)
            raise
        # A second queued copy of one card transaction (a clerk pressing again) is
        # harmless: the server keys records by card sequence number and answers the copy
        # as a duplicate, or refuses a different amount as a conflict, which the queue
        # keeps in `rejected` for the operator.

    def _forget(self, payment_request_id: str) -> None:
        kept = [p for p in self._recent if p.request_id != payment_request_id]
        self._recent.clear()
        self._recent.extend(kept)


def _new_request_id() -> str:
    return str(uuid.uuid4())


def _check_amount(amount: object) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        raise InvalidAmount(amount)


def _card_seq(card: CardRead) -> int:
    if card.last_seq is None:
        raise NoCardHistory()
    return card.last_seq


def _instant(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("a transaction time needs its UTC offset")
    return at.isoformat()
