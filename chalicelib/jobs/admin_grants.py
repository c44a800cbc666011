"""Admin grants (行政ポイント, §6.4): points to a list of cards with a reason, exactly once
per (list, card) — re-running a list, or resuming one that stopped part way, grants
nobody twice, because each grant's request id is made of the list id and the card."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..job_progress import JobInterrupted
from ..ledger.domain import Actor, Source
from ..ledger.errors import LedgerError
from ..ledger.service import Ledger


@dataclass
class GrantRow:
    card_number: str
    points: int


@dataclass
class GrantListReport:
    list_id: str
    granted: int = 0  # cards granted (a re-run counts the grants it finds already made)
    points: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason in plain words)


def request_id(issuer_id: str, list_id: str, idm: str) -> str:
    return f"admin:{issuer_id}:{list_id}:{idm}"


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
        idm = ledger.idm_for_number(row.card_number)
        if idm is None:
            report.rejected.append((number, "no such card number"))
            continue
        try:
            result = ledger.grant(
                idm, row.points, request_id=request_id(issuer_id, list_id, idm), actor=actor,
                source=Source.ADMIN, reason=reason, issuer_id=issuer_id,
            )
        except LedgerError as exc:
            report.rejected.append((number, f"{exc.code}: {exc}"))
            continue
        report.granted += 1
        report.points += result["granted"]
    return report
