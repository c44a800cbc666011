"""The daily expiry reminders (§8): members who asked get one e-mail per lot of each of
their linked cards, 30 days before the lot's `expires_on` — never twice.

Cost follows the members who asked, not the number of cards: the REMINDEES partitions
(chalicelib/mypage/store.py) list exactly the members with reminders on, 16 shards per
issuer. Per member, one query reads the member with its links and one BatchGetItem its
cards; then one conditional put and one e-mail per lot due. Members with reminders off,
and cards nobody linked, are never read.

At most once per (member, card, lot): before sending, the run puts the claim
REMINDED#<member>#<idm>#<lot> under attribute_not_exists, and only the run that put it
sends, so a re-run, a resumed run or two runs at once send nothing twice. When a send
fails the claim is removed and the run leaves its day undone, so the next run tries that
lot again. A run killed between its claim and its send leaves a claim with no e-mail:
that reminder is lost. We choose a missed reminder over a double one; the member still
sees the lot highlighted on MyPage. Claims remove themselves (TTL) after their lot expires.

Catching up: the last run day done is kept per issuer (JOB#reminders#<issuer>). A run
reminds the lots whose reminder day (expires_on - 30) lies from the day after it up to
`on`, so a missed day is caught up, late — but never more than CATCH_UP_DAYS late, so a
send that keeps failing cannot make every later run re-read an ever longer window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from ..job_progress import JobInterrupted, JobState
from ..ledger.domain import Card, Lot
from ..ledger.service import Ledger
from ..mypage.domain import REMIND_BEFORE, Link, reminder_mail
from ..mypage.members import Members
from ..observability import logger
from . import keys
from .store import claim_once, release_claim

JOB = "reminders"
CATCH_UP_DAYS = 7


class Sender(Protocol):
    """What the job needs of chalicelib.mail.Mailer."""

    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass
class ReminderReport:
    issuer: str
    on: date
    days: list[date] = field(default_factory=list)  # the reminder days covered
    members: int = 0  # members listed with reminders on
    sent: int = 0  # e-mails sent by this run
    already: int = 0  # lots due whose reminder an earlier (or concurrent) run claimed
    failed: int = 0  # sends that failed: their claims were removed, the day left undone


def run_reminders(
    ledger: Ledger,
    members: Members,
    mailer: Sender,
    issuer_id: str,
    *,
    on: date,
    state: JobState,
    since: date | None = None,
    fail_after: int | None = None,
) -> ReminderReport:
    """Remind, on run day `on`, of every lot whose reminder day d has since <= d <= on.
    `since` defaults to the day after the last day done (`on` itself on a first run),
    and to no earlier than CATCH_UP_DAYS before `on`."""
    if since is None:
        last = state.last_done(JOB, issuer_id)
        if last is None:
            # A first run starts at its own day, and records the day before as its start,
            # so if it fails part way the next run still comes back for that day.
            last = on - timedelta(days=1)
            state.mark_done(JOB, issuer_id, last)
        since = max(last + timedelta(days=1), on - timedelta(days=CATCH_UP_DAYS))
    report = ReminderReport(issuer_id, on, [since + timedelta(days=n) for n in range((on - since).days + 1)])
    if not report.days:
        return report
    point_name = ledger.issuer(issuer_id).point_name
    for member_id in members.remindees(issuer_id):
        report.members += 1
        member, links = members.member_and_links(member_id)
        if member is None or not member.expiry_reminders:
            continue  # the listing lags a withdrawal or a change of mind: the member item decides
        for link, lot in _lots_due(ledger, issuer_id, links, since, on):
            claim = keys.reminded(member_id, link.idm, lot.lot_id)
            if not claim_once(*claim, by=f"{JOB}:{on.isoformat()}", expires_at=_after(lot.expires_on)):
                report.already += 1
                continue
            subject, body = reminder_mail(point_name, link.card_number_masked, lot.remaining, lot.expires_on)
            try:
                mailer.send(member.email, subject, body)
            except Exception as exc:  # noqa: BLE001  (any failure to send: free the lot for the next run)
                release_claim(*claim)
                report.failed += 1
                # The error's text can hold the address: log its type only.
                logger().warning("reminder not sent", extra={"issuer": issuer_id, "error": type(exc).__name__})
                continue
            report.sent += 1
            if fail_after is not None and report.sent >= fail_after:
                raise JobInterrupted(f"stopped after {report.sent} e-mails")
    if not report.failed:
        state.mark_done(JOB, issuer_id, on)
    logger().info(
        "reminders done",
        extra={"issuer": issuer_id, "on": on.isoformat(), "days": len(report.days), "members": report.members,
               "sent": report.sent, "already": report.already, "failed": report.failed},
    )
    return report


def _lots_due(ledger: Ledger, issuer_id: str, links: list[Link], since: date, on: date) -> Iterator[tuple[Link, Lot]]:
    """Each linked card's lots with points, live on `on`, whose reminder day lies in [since, on]."""
    if not links:
        return
    cards = ledger.card_records({link.idm for link in links})
    for link in links:
        stored = cards.get(link.idm)
        card: Card | None = stored.card if stored else None
        if card is None or card.issuer != issuer_id or card.status.closed:
            continue
        for lot in card.lots:
            if lot.remaining > 0 and lot.is_live(on) and since <= lot.expires_on - REMIND_BEFORE <= on:
                yield link, lot


def _after(day: date) -> datetime:
    """When a claim about a lot expiring on `day` may go: no run reminds of it by then."""
    return datetime.combine(day + timedelta(days=2), time.min, tzinfo=UTC)
