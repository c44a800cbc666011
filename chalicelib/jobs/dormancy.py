"""The daily dormancy sweep (§4, seed 000 Q3): 60 months counted from the day after a
card's last grant or spend, its points are voided and its registration ends — every
MyPage link to it is removed, so a resident who still holds it must register it again.
The card itself stays open: it can be granted points and linked again, and a new grant
or spend starts a new 60 months.

It finds its cards through the sparse, sharded `by-dormancy` index (see
chalicelib/ledger/store.py), which lists each open card under its last activity day L.
A card is dormant on day `on` when `on` is after `dormancy_deadline(L)`; the deadline
only grows with L, so the days to sweep are those from the day after the last one swept
while their cards are dormant on `on`. Each run reads the cards whose time has just run
out, not all cards. The index is keyed on L rather than on the deadline so that it needs
no issuer setting.

Exactly once and resumable: each card is re-read (the index is eventually consistent and
the card may have been used since) and voided with the request id
`dormant:<issuer>:<idm>:<last activity>`, so a re-run, a resumed run or a second run at
the same time is answered from the ledger's request record; removing links already
removed does nothing. The last activity day swept is kept per issuer
(JOB#dormancy#<issuer>) and only moves forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from ..job_progress import JobInterrupted, JobState
from ..ledger.domain import Actor, dormancy_deadline, is_dormant
from ..ledger.errors import CardClosed
from ..ledger.service import Ledger
from ..mypage.members import Members
from ..observability import logger

JOB = "dormancy"
ACTOR = Actor("job", JOB)
# With no progress recorded yet, the first run takes the cards whose deadline passed
# within this many days before its run day.
FIRST_RUN_LOOKBACK_DAYS = 31


@dataclass
class DormancyReport:
    issuer: str
    on: date
    days: list[date] = field(default_factory=list)  # last activity days swept, all finished
    cards: int = 0  # cards the index listed
    dormant_cards: int = 0  # of those, dormant when re-read (the others were used since)
    voided_cards: int = 0  # dormant cards that still held points
    points: int = 0  # points voided (a replayed request reports its original)
    unlinked: int = 0  # MyPage links removed


def request_id(issuer_id: str, idm: str, last_activity: date) -> str:
    return f"dormant:{issuer_id}:{idm}:{last_activity.isoformat()}"


def run_dormancy(
    ledger: Ledger,
    members: Members,
    issuer_id: str,
    *,
    on: date,
    state: JobState,
    since: date | None = None,
    fail_after: int | None = None,
) -> DormancyReport:
    """Retire, as of day `on`, every dormant card last active on a day from `since`
    (default: the day after the last day swept) onward."""
    months = ledger.issuer(issuer_id).dormancy_months
    if since is None:
        last = state.last_done(JOB, issuer_id)
        since = last + timedelta(days=1) if last else _first_day(on, months)
    report = DormancyReport(issuer_id, on)
    day = since
    while is_dormant(day, months, on):
        for idm in ledger.cards_last_active(issuer_id, day):
            report.cards += 1
            _retire(ledger, members, issuer_id, idm, months, on, report)
            if fail_after is not None and report.cards >= fail_after:
                raise JobInterrupted(f"stopped after {report.cards} cards")
        state.mark_done(JOB, issuer_id, day)
        report.days.append(day)
        day += timedelta(days=1)
    logger().info(
        "dormancy done",
        extra={"issuer": issuer_id, "on": on.isoformat(), "days": len(report.days), "cards": report.cards,
               "dormant_cards": report.dormant_cards, "voided_cards": report.voided_cards,
               "points": report.points, "unlinked": report.unlinked},
    )
    return report


def _retire(
    ledger: Ledger, members: Members, issuer_id: str, idm: str, months: int, on: date, report: DormancyReport
) -> None:
    stored = ledger.card_record(idm)
    card = stored.card if stored else None
    if card is None or card.status.closed or card.issuer != issuer_id or card.last_activity is None:
        return
    if not is_dormant(card.last_activity, months, on):
        return  # used since the index listed it: its new day lists it again
    report.dormant_cards += 1
    if any(lot.remaining > 0 for lot in card.lots):
        last = card.last_activity
        try:
            result = ledger.void(
                idm,
                request_id=request_id(issuer_id, idm, last),
                actor=ACTOR,
                reason=f"dormant: no grant or spend for {months} months after {last.isoformat()}",
                only_if=lambda now: now.last_activity == last,  # not used since it was read
            )
        except CardClosed:
            return  # closed meanwhile (returned, reissued): no longer this job's card
        if not result:
            return  # used between the read and the void: its new day lists it again
        report.voided_cards += 1
        report.points += result.get("voided", 0)
    report.unlinked += members.unlink_card(idm)


def _first_day(on: date, months: int) -> date:
    """The first last-activity day whose deadline falls within the look-back before `on`."""
    target = on - timedelta(days=FIRST_RUN_LOOKBACK_DAYS)
    index = target.year * 12 + target.month - 1 - months
    # The last day of the month before (target's month - months): its deadline is the
    # last day of the month before target's, so earlier than target.
    day = date(index // 12, index % 12 + 1, 1) - timedelta(days=1)
    while dormancy_deadline(day, months) < target:
        day += timedelta(days=1)
    return day
