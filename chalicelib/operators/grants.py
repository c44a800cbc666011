"""Admin grants (行政ポイント, §6.4): points to a list of cards with a reason, exactly once
per (list, card) — re-running a list, or resuming one that stopped part way, grants
nobody twice, because each grant's request id is made of the list id and the card.

`grant_once` is the one implementation of "grant these points to this card with this
reason, once per (list, card)": the admin API's grant lists (`grant_list`, below) and
the `admin-grants` CSV import (chalicelib/imports/service.py, through the operators'
service) both call it, so a list
granted through one path is not granted again through the other, and a row is reported
in the same words by both: granted, already granted (the list granted this card these
points before, by either path), or refused with the reason in plain words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import Busy
from ..job_progress import JobInterrupted
from ..ledger.domain import Actor, Source
from ..ledger.errors import LedgerError
from ..ledger.service import Ledger


class Outcome(StrEnum):
    GRANTED = "granted"  # granted now
    ALREADY_GRANTED = "already granted"  # the list granted this card these points before
    REFUSED = "refused"  # nothing was granted; `reason` says why


@dataclass(frozen=True)
class Grant:
    outcome: Outcome
    points: int = 0  # points granted now (0 unless granted)
    reason: str | None = None  # why refused, in plain words


@dataclass
class GrantRow:
    card_number: str
    points: int


@dataclass
class GrantListReport:
    list_id: str
    granted: int = 0  # cards granted now
    points: int = 0  # points granted now
    already_granted: int = 0  # cards the list had granted these points before (a re-run, or the import)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason in plain words)


def request_id(issuer_id: str, list_id: str, idm: str) -> str:
    return f"admin:{issuer_id}:{list_id}:{idm}"


def grant_once(
    ledger: Ledger,
    issuer_id: str,
    list_id: str,
    card_number: str,
    points: int,
    *,
    reason: str,
    actor: Actor,
) -> Grant:
    """Grant `points` to the card with `card_number`, once per (list, card), whoever asks
    and by whichever path. Raises Busy (not the row's fault: try again)."""
    if not reason.strip():
        raise ValueError("an admin grant needs a reason")
    idm = ledger.idm_for_number(card_number)
    if idm is None:
        return Grant(Outcome.REFUSED, reason="no card with this card number")
    rid = request_id(issuer_id, list_id, idm)
    # Looked up before granting, so a repeat is "already granted" whoever made the grant
    # (another operator, the import): the ledger would refuse their request as another one.
    done = ledger.request_record(ledger.request_key(rid))
    if done is not None:
        granted = done.result.get("granted")
        if granted == points:
            return Grant(Outcome.ALREADY_GRANTED)
        return Grant(Outcome.REFUSED, reason=f"list {list_id} already granted this card {granted} points; "
                                             "nothing was changed")
    try:
        result = ledger.grant(idm, points, request_id=rid, actor=actor, source=Source.ADMIN, reason=reason,
                              issuer_id=issuer_id)
    except Busy:
        raise
    except LedgerError as exc:
        return Grant(Outcome.REFUSED, reason=str(exc))
    return Grant(Outcome.GRANTED, points=result["granted"])


def grant_list(
    ledger: Ledger,
    issuer_id: str,
    list_id: str,
    rows: Iterable[GrantRow],
    *,
    reason: str,
    actor: Actor,
    fail_after: int | None = None,
) -> GrantListReport:
    """Grant each row's points to its card. A row that cannot be granted is reported with
    why, and the others go on."""
    if not reason.strip():
        raise ValueError("an admin grant needs a reason")
    report = GrantListReport(list_id)
    for number, row in enumerate(rows, start=1):
        if fail_after is not None and number > fail_after:
            raise JobInterrupted(f"stopped after {fail_after} rows")
        try:
            grant = grant_once(ledger, issuer_id, list_id, row.card_number, row.points, reason=reason, actor=actor)
        except Busy as exc:  # this row only: the list is sent again to finish it
            grant = Grant(Outcome.REFUSED, reason=str(exc))
        if grant.outcome is Outcome.GRANTED:
            report.granted += 1
            report.points += grant.points
        elif grant.outcome is Outcome.ALREADY_GRANTED:
            report.already_granted += 1
        else:
            report.rejected.append((number, grant.reason or "refused"))
    return report
