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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..job_progress import JobState
from ..ledger import keys
from ..ledger.business_days import BusinessCalendar, next_month, rebate_grant_date
from ..ledger.domain import Actor
from ..ledger.service import Ledger
from ..observability import RECONCILIATION_LATE, count, logger
from ..rebates.domain import Accrual, RebateAccount
from ..rebates.service import Rebates
from ..reconciliation.domain import rebate_day
from ..reconciliation.service import Reconciliation
from .runner import MemoryQueue, Runner, Stop

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


class RebateJob:
    """The rebate as the runner (chalicelib/jobs/runner.py) runs it: its work "days" are
    months (their first day), from the one after the last settled while their grant day
    has come (and, under reconciliation, their file lets them go); its keys each shard's
    open accruals of a month, read with their cards' rebate accounts 100 at a time."""

    name = JOB
    batch = BATCH

    def __init__(self, ledger: Ledger, rebates: Rebates, state: JobState, reconciliation: Reconciliation,
                 reconciliation_default: bool = False) -> None:
        self.ledger = ledger
        self.rebates = rebates
        self.state = state
        self.reconciliation = reconciliation
        self.reconciliation_default = reconciliation_default
        self.waiting: str | None = None
        self.late = False

    def shards(self, issuer_id: str) -> int:
        return keys.SHARDS

    def days(self, issuer_id: str, on: date, since: date | None) -> list[date]:
        """The months due by `on`, in order, as their first days (`since` is not used)."""
        issuer = self.ledger.issuer(issuer_id)
        calendar = BusinessCalendar(issuer.closures)
        last = self.state.last_done(JOB, issuer_id)
        if last is not None:
            year, month = next_month(last.year, last.month)
        else:
            year, month = on.year, on.month
            for _ in range(FIRST_RUN_LOOKBACK_MONTHS):
                year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        received = self.reconciliation if issuer.requires_reconciliation(self.reconciliation_default) else None
        months: list[date] = []
        while rebate_grant_date(calendar, year, month) <= on:
            name = f"{year:04d}-{month:02d}"
            if received is not None:
                received_on = received.received_on(issuer_id, name)
                grant_day = rebate_day(calendar, year, month, received_on)
                if (grant_day is None or grant_day > on) and (received_on or received.has_awaiting(issuer_id, name)):
                    self.waiting, self.late = name, received_on is None
                    if last is None:
                        # No month settled yet: fix the cursor before the waiting month, so a
                        # later first-run look-back cannot step over it.
                        before = date(year, month, 1) - timedelta(days=1)
                        self.state.mark_done(JOB, issuer_id, before.replace(day=1))
                    if received_on is None:
                        count(RECONCILIATION_LATE)
                        logger().warning("rebate waits for the settlement file",
                                         extra={"issuer": issuer_id, "month": name})
                    break
            months.append(date(year, month, 1))
            year, month = next_month(year, month)
        return months

    @staticmethod
    def next_day(month: date) -> date:
        year, number = next_month(month.year, month.month)
        return date(year, number, 1)

    def keys(self, issuer_id: str, month: date, shard: int, after: str | None) -> Iterable[Accrual]:
        return (a for a in self.rebates.accruals(issuer_id, f"{month:%Y-%m}", shard, after) if not a.closed)

    @staticmethod
    def cursor(accrual: Accrual) -> str:
        return accrual.idm

    def prepare(self, issuer_id: str, accruals: list[Accrual]) -> dict[str, RebateAccount]:
        return self.rebates.rebate_accounts([a.idm for a in accruals])

    def run(self, issuer_id: str, on: date, month: date, accrual: Accrual, report: RebateReport,
            accounts: dict[str, RebateAccount] | None = None) -> None:
        account = (accounts or {}).get(accrual.idm) or self.rebates.rebate_accounts([accrual.idm])[accrual.idm]
        _settle(self.ledger, self.rebates, issuer_id, accrual, account, report)
        report.cards += 1

    def report(self, issuer_id: str, on: date) -> RebateReport:
        return RebateReport(issuer_id, on, waiting=self.waiting, late=self.late)

    @staticmethod
    def day_done(report: RebateReport, month: date) -> None:
        report.months.append(f"{month:%Y-%m}")

    def finished(self, report: RebateReport) -> None:
        logger().info(
            "rebate done",
            extra={"issuer": report.issuer, "on": report.on.isoformat(), "months": report.months,
                   "cards": report.cards, "points": report.points, "withheld": report.withheld,
                   "waiting": report.waiting},
        )


def run_rebates(
    ledger: Ledger, rebates: Rebates, issuer_id: str, *, on: date, state: JobState, reconciliation: Reconciliation,
    reconciliation_default: bool = False, runner: Runner | None = None, stop: Stop | None = None, workers: int = 1,
) -> RebateReport:
    """Settle every month due by `on`. `reconciliation` says when a month's settlement file
    came, for an issuer under reconciliation. Runs here, through the job runner (by
    default on a queue in this process)."""
    runner = runner or Runner({JOB: lambda: RebateJob(ledger, rebates, state, reconciliation,
                                                      reconciliation_default)}, MemoryQueue(), state)
    return runner.run_here(JOB, issuer_id, on, workers=workers, stop=stop)


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
