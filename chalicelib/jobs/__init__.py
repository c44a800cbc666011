"""Scheduled jobs. The functions here are what app.py's schedules call: each gets its
services from `chalicelib.services` (built on first use) and runs its job for every
issuer on the issuer's today, so importing this package costs a cold start nothing.

One issuer failing does not stop the others; the first failure is raised at the end, so
the schedule's invocation fails (and its alarm fires), and the next run catches the
issuer up: every job keeps its progress per issuer and is exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any


def daily_expiry() -> list[Any]:
    from .. import services
    from .expiry import run_expiry

    ledger, state = services.ledger(), services.job_state()
    return _for_every_issuer(lambda issuer, on: run_expiry(ledger, issuer, on=on, state=state))


def daily_rebates() -> list[Any]:
    from .. import services
    from .rebate import run_rebates

    ledger, rebates, state = services.ledger(), services.terminals().rebates, services.job_state()
    reconciliation, default = services.reconciliation(), services.settings().reconciliation
    return _for_every_issuer(lambda issuer, on: run_rebates(ledger, rebates, issuer, on=on, state=state,
                                                            reconciliation=reconciliation,
                                                            reconciliation_default=default))


def daily_campaigns() -> list[Any]:
    from .. import services
    from ..campaigns.service import run_campaigns

    campaigns, terminals, state = services.campaigns(), services.terminals(), services.job_state()
    return _for_every_issuer(lambda issuer, on: run_campaigns(campaigns, terminals, issuer, on=on, state=state))


def daily_dormancy() -> list[Any]:
    from .. import services
    from .dormancy import run_dormancy

    ledger, members = services.ledger(), services.members()  # no session key: no secret read
    state = services.job_state()
    return _for_every_issuer(lambda issuer, on: run_dormancy(ledger, members, issuer, on=on, state=state))


def daily_reminders() -> list[Any]:
    from .. import services
    from .reminders import run_reminders

    # Straight to SES, not through MyPage's queue: the job frees a reminder whose send fails.
    # MyPage's members, not MyPage: the job's role may not read the stage secret.
    ledger, members, mailer, state = services.ledger(), services.members(), services.mailer(), services.job_state()
    return _for_every_issuer(lambda issuer, on: run_reminders(ledger, members, mailer, issuer, on=on, state=state))


def daily_reports() -> list[Any]:
    """Last month's reports, written on the first run of the month (then nothing)."""
    from .. import services
    from ..reports.service import run_monthly_reports

    service = services.reports()
    return _for_every_issuer(lambda issuer, on: run_monthly_reports(service, issuer, on))


def daily_audit() -> list[Any]:
    """Anchor every chain head, then verify every chain against the previous anchor."""
    from .. import services
    from ..reports.audit import run_audit
    from ..reports.errors import AuditFailed

    ledger, store = services.ledger(), services.report_store()

    def run(issuer: str, on: date) -> Any:
        report = run_audit(ledger, store, issuer, on, now=ledger.clock())
        if not report.ok:
            raise AuditFailed(f"{issuer}: {len(report.failures)} chains fail; {report.anchor_problem or ''}")
        return report

    return _for_every_issuer(run)


def _for_every_issuer(run: Callable[[str, date], Any]) -> list[Any]:
    from .. import services

    ledger = services.ledger()
    reports: list[Any] = []
    failures: list[Exception] = []
    for issuer_id in ledger.issuer_ids():
        try:
            reports.append(run(issuer_id, ledger.today(issuer_id)))
        except Exception as exc:  # noqa: BLE001  (re-raised below, after the other issuers)
            failures.append(exc)
    if failures:
        raise failures[0]
    return reports
