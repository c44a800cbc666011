"""Scheduled jobs. The functions here are what app.py's schedules call: each builds its
services on first use and runs its job for every issuer, so importing this package
costs a cold start nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .expiry import ExpiryReport


def daily_expiry() -> list[ExpiryReport]:
    """Expire, for every issuer, the lots past their expiry on the issuer's today.
    One issuer failing does not stop the others; the first failure is raised at the end
    (the schedule's retry, or tomorrow's run, catches the issuer up)."""
    from .. import services
    from .expiry import run_expiry

    ledger = services.ledger()
    reports: list[ExpiryReport] = []
    failures: list[Exception] = []
    for issuer_id in ledger.store.issuer_ids():
        try:
            reports.append(run_expiry(ledger, issuer_id, on=ledger.today(issuer_id)))
        except Exception as exc:  # noqa: BLE001  (re-raised below, after the other issuers)
            failures.append(exc)
    if failures:
        raise failures[0]
    return reports
