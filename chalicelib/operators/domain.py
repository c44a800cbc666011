"""The operators' rules, pure: who an operator is, what a return's reason is, how an
operator's request id becomes a ledger request id, and how a card and its history read
to an operator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ..ledger.domain import Card, Entry, Lot, Op
from .errors import NoOperatorIdentity

# Who acts under `make run`, where `chalice local` checks no IAM and API Gateway adds no
# principal. Never used in Lambda (see operator_arn).
LOCAL_OPERATOR = "local-operator"

JOBS = ("expiry", "rebates", "campaigns", "dormancy", "reminders")

POINTS_IN = frozenset({Op.GRANT, Op.TRANSFER_IN, Op.CANCEL})


class ReturnReason(StrEnum):
    """Why a card is handed back (返却): the holder died, moved out of the issuer's
    area, or another reason told in the note."""

    DEATH = "death"
    MOVING = "moving"
    OTHER = "other"


def operator_arn(identity: Mapping[str, Any] | None, *, deployed: bool) -> str:
    """The operator behind a request: the IAM principal API Gateway authorized.

    Deployed, a request without one is refused: it means the route has no IAM
    authorizer or the function was invoked around API Gateway, and an entry must never
    name a placeholder. Locally (`make run`, tests) the placeholder stands in."""
    arn = (identity or {}).get("userArn")
    if isinstance(arn, str) and arn:
        return arn
    if deployed:
        raise NoOperatorIdentity()
    return LOCAL_OPERATOR


def ledger_request_id(issuer_id: str, request_id: str) -> str:
    """The ledger request id of an operator's request: scoped to the admin API and the
    issuer, so it never meets a terminal's or a job's id. The same id reused for a
    different change is refused by the ledger (its fingerprint differs)."""
    return f"operator:{issuer_id}:{request_id}"


def return_reason(reason: ReturnReason, note: str) -> str:
    """The reason recorded on a return's entry: the kind first, for reports to count."""
    note = note.strip()
    return f"return ({reason.value}): {note}" if note else f"return ({reason.value})"


def void_reason(note: str) -> str:
    return f"void: {note.strip()}"


def reissue_reason(note: str) -> str:
    note = note.strip()
    return f"damage reissue: {note}" if note else "damage reissue"


def lot_view(lot: Lot, day: date) -> dict:
    if lot.is_past(day):
        state = "expired"  # past its last day; the expiry job records it
    elif lot.valid_from > day:
        state = "not yet valid"
    else:
        state = "live"
    return {
        "lot": lot.lot_id,
        "points": lot.remaining,
        "granted": lot.amount,
        "source": lot.source.value,
        "valid_from": lot.valid_from.isoformat(),
        "expires_on": lot.expires_on.isoformat(),
        "state": state,
    }


def entry_view(entry: Entry) -> dict:
    """One history entry as an operator reads it: what, who, why, and the points it
    added (positive) or took (negative)."""
    points = sum(m.amount if m.op in POINTS_IN else -m.amount for m in entry.movements)
    view = {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "day": entry.day.isoformat(),
        "kind": entry.kind,
        "points": points,
        "actor": entry.actor.as_dict(),
    }
    if entry.reason is not None:
        view["reason"] = entry.reason
    return view


def card_view(card: Card, day: date, balance: int, history: Iterable[Entry]) -> dict:
    return {
        "card_number": card.card_number,
        "idm": card.idm,
        "issuer": card.issuer,
        "status": card.status.value,
        "as_of": day.isoformat(),
        "balance": balance,
        "last_activity": card.last_activity.isoformat() if card.last_activity else None,
        "lots": [lot_view(lot, day) for lot in sorted(card.lots, key=lambda x: (x.expires_on, x.granted_at))
                 if lot.remaining > 0],
        "history": [entry_view(e) for e in history],
    }


def plain(value: Any) -> Any:
    """A job's or a list's report as JSON-ready data: dates as ISO strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value
