"""The daily expiry job: an `expire` entry for every lot past its `expires_on`.

Reads already ignore expired lots (§5.3); this job writes the entries that account for
them. It finds its cards through the sparse, sharded `by-expiry` index (see
chalicelib/ledger/store.py): a card is listed under the earliest expiry among its lots
that still hold points, so the cards due before day `on` are exactly those listed under
the days before `on`, and the job's reads follow the lots due, not the number of cards.

Exactly once and resumable: the run for day `on` expires each card with the request id
`expire:<issuer>:<on>:<idm>`, so a re-run, a resumed run or a second run at the same
time is answered from the ledger's request record (or finds nothing left to expire) and
writes nothing twice. The last day swept is kept per issuer (JOB#expiry#<issuer>) and
only moves forward; the next run starts the day after it, so a missed day is caught up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from ..job_progress import JobInterrupted, JobState
from ..ledger.domain import Actor
from ..ledger.service import Ledger
from ..observability import logger

JOB = "expiry"
ACTOR = Actor("job", JOB)
# With no progress recorded yet (a new issuer or table), the first run looks this far back.
FIRST_RUN_LOOKBACK_DAYS = 31


@dataclass
class ExpiryReport:
    issuer: str
    on: date
    days: list[date] = field(default_factory=list)  # the days swept, all finished
    cards: int = 0  # cards the index listed, each expired or found with nothing due
    expired_cards: int = 0  # cards whose expiry (for run day `on`) expired points
    points: int = 0  # points those expiries took (a replayed request reports its original)


def request_id(issuer_id: str, on: date, idm: str) -> str:
    return f"expire:{issuer_id}:{on.isoformat()}:{idm}"


def run_expiry(
    ledger: Ledger,
    issuer_id: str,
    *,
    on: date,
    state: JobState,
    since: date | None = None,
    fail_after: int | None = None,
) -> ExpiryReport:
    """Expire, as of day `on`, the lots of every card listed under a day d with
    since <= d < on. `since` defaults to the day after the last day done."""
    if since is None:
        last = state.last_done(JOB, issuer_id)
        since = last + timedelta(days=1) if last else on - timedelta(days=FIRST_RUN_LOOKBACK_DAYS)
    report = ExpiryReport(issuer_id, on)
    day = since
    while day < on:
        for idm in ledger.cards_expiring(issuer_id, day):
            result = ledger.expire_due(idm, on=on, request_id=request_id(issuer_id, on, idm), actor=ACTOR)
            report.cards += 1
            if result.get("expired"):
                report.expired_cards += 1
                report.points += result["expired"]
            if fail_after is not None and report.cards >= fail_after:
                raise JobInterrupted(f"stopped after {report.cards} cards")
        state.mark_done(JOB, issuer_id, day)
        report.days.append(day)
        day += timedelta(days=1)
    logger().info(
        "expiry done",
        extra={"issuer": issuer_id, "on": on.isoformat(), "days": len(report.days), "cards": report.cards,
               "expired_cards": report.expired_cards, "points": report.points},
    )
    return report
