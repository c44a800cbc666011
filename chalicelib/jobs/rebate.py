"""The monthly e-money rebate (§6.2): the payments a card made at member stores in
month M earn floor(Σ amount × rate) points, granted on the last business day of M+1.

The job runs daily. On day `on` it settles, in order, every month after the last one
settled whose grant day has come, so a missed run is caught up by the next. It finds
its cards in the month's sharded accrual partitions (through the Rebates service,
chalicelib/rebates/), which hold only the cards that paid that month: the work follows
the payments, not the number of cards.

Per card, the month's accrual is settled once (`Rebates.settle`). The grant, the
accrual marked settled (under the sums as read) and the card's rebate account (under its
revision) are one transaction, so a payment or cancel recorded meanwhile, or a second
run, makes it re-read, and nothing is granted twice. A payment or cancel recorded after
its month is settled moves the account instead (chalicelib/rebates/service.py): the
difference is carried into the next rebate, never below zero (`rebate_to_grant`,
rebates/domain.py). A cancel first takes what it can back at once from that month's
rebate lot (chalicelib/terminals/service.py), lowering the account's `granted` by as
much, so only the rest is carried. A late payment also lists its card in the month it
arrives (an accrual of nothing), so that next rebate comes even for a card that pays
nothing more.

Under reconciliation (the issuer's setting, by default the stage's) a record earns only
once a line of the acquirer's settlement file matches it (chalicelib/reconciliation/),
and month M is granted only once its file has arrived: on its rebate day if the file
came before, otherwise on the first business day after the file came. A month none of
whose records awaits a line needs no file (chalicelib/reconciliation/domain.py). Months are
settled in order, so a month waiting for its file holds back the months after it; they
go the same day its file lets it go (each on its own rebate day, if that is later). So
no month is skipped, and a later month is held only while an earlier one's file is
missing, which the operators are told by the metric `ReconciliationLate`, counted on
every run from M's rebate day while its file is missing (the reconciliation-late alarm).
A match landing after M is settled is carried into the next rebate like a late record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice

from ..job_progress import JobInterrupted, JobState
from ..ledger.business_days import BusinessCalendar, next_month, rebate_grant_date
from ..ledger.domain import Actor
from ..ledger.service import Ledger
from ..observability import RECONCILIATION_LATE, count, logger
from ..rebates.domain import Accrual, RebateAccount
from ..rebates.service import Rebates
from ..reconciliation.domain import rebate_day
from ..reconciliation.service import Reconciliation

JOB = "rebate"
ACTOR = Actor("job", JOB)
# With no progress recorded yet, the first run settles months from this far back.
FIRST_RUN_LOOKBACK_MONTHS = 2
# Cards whose rebate accounts are read in one BatchGetItem.
BATCH = 100


@dataclass
class RebateReport:
    issuer: str
    on: date
    months: list[str] = field(default_factory=list)  # the months settled, all finished
    cards: int = 0  # accruals settled by this run
    granted_cards: int = 0
    points: int = 0  # points granted by this run
    withheld: int = 0  # points earned but kept back to make up for cancels (carry-forward)
    closed_cards: int = 0  # returned or void cards: settled with nothing granted
    waiting: str | None = None  # under reconciliation: the month held back for its settlement file
    late: bool = False  # ... past its rebate day without the file (ReconciliationLate counted)


def run_rebates(
    ledger: Ledger, rebates: Rebates, issuer_id: str, *, on: date, state: JobState, reconciliation: Reconciliation,
    fail_after: int | None = None, reconciliation_default: bool = False,
) -> RebateReport:
    """Settle every month due by `on`. `reconciliation` says when a month's settlement file
    came, for an issuer under reconciliation."""
    issuer = ledger.issuer(issuer_id)
    calendar = BusinessCalendar(issuer.closures)
    last = state.last_done(JOB, issuer_id)
    if last is not None:
        year, month = next_month(last.year, last.month)
    else:
        year, month = on.year, on.month
        for _ in range(FIRST_RUN_LOOKBACK_MONTHS):
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    report = RebateReport(issuer_id, on)
    reconciled = issuer.requires_reconciliation(reconciliation_default)
    received = reconciliation if reconciled else None
    while rebate_grant_date(calendar, year, month) <= on:
        name = f"{year:04d}-{month:02d}"
        if received is not None:
            received_on = received.received_on(issuer_id, name)
            grant_day = rebate_day(calendar, year, month, received_on)
            if (grant_day is None or grant_day > on) and (received_on or received.has_awaiting(issuer_id, name)):
                report.waiting, report.late = name, received_on is None
                if last is None:
                    # No month settled yet: fix the cursor before the waiting month, so a
                    # later first-run look-back cannot step over it.
                    before = date(year, month, 1) - timedelta(days=1)
                    state.mark_done(JOB, issuer_id, before.replace(day=1))
                if received_on is None:
                    count(RECONCILIATION_LATE)
                    logger().warning("rebate waits for the settlement file", extra={"issuer": issuer_id, "month": name})
                break
        open_accruals = (a for a in rebates.accruals(issuer_id, name) if not a.closed)
        for chunk in _chunks(open_accruals, BATCH):
            accounts = rebates.rebate_accounts([a.idm for a in chunk])
            for accrual in chunk:
                _settle(ledger, rebates, issuer_id, accrual, accounts[accrual.idm], report)
                report.cards += 1
                if fail_after is not None and report.cards >= fail_after:
                    raise JobInterrupted(f"stopped after {report.cards} cards")
        state.mark_done(JOB, issuer_id, date(year, month, 1))
        report.months.append(name)
        year, month = next_month(year, month)
    logger().info(
        "rebate done",
        extra={"issuer": issuer_id, "on": on.isoformat(), "months": report.months, "cards": report.cards,
               "points": report.points, "withheld": report.withheld, "waiting": report.waiting},
    )
    return report


def _settle(
    ledger: Ledger, rebates: Rebates, issuer_id: str, accrual: Accrual, account: RebateAccount,
    report: RebateReport,
) -> None:
    settled = rebates.settle(ledger, issuer_id, accrual, account, actor=ACTOR)
    if settled is None:
        return  # another run settled it
    report.points += settled.granted
    report.granted_cards += settled.granted > 0
    report.closed_cards += settled.granted < settled.grant
    report.withheld += max(0, settled.due - settled.grant) if settled.granted == settled.grant else 0


def _chunks(items: Iterable[Accrual], size: int) -> Iterator[list[Accrual]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
