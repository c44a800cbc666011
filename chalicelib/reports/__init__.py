"""Operator reports and the audit (§10): the services the schedules in `chalicelib.jobs`,
the admin API's download routes (routes.py) and the CLI build, on first use, so importing
this package costs a cold start nothing.

Operators run the same by hand: `python -m chalicelib.reports --help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Reports
    from .store import ReportStore


class AuditFailed(RuntimeError):
    """A chain is broken or no longer passes through its anchor: the job fails, so its alarm fires."""


def report_store() -> ReportStore:
    from .. import services
    from .store import ReportStore

    s = services.settings()
    return ReportStore(services.table(), services.s3(), s.reports_bucket, anchors_bucket=s.anchors_bucket)


def reports() -> Reports:
    from .. import services
    from ..reconciliation.service import Reconciliation
    from ..reconciliation.store import ReconciliationStore
    from ..terminals.store import TerminalStore
    from .service import Reports

    directory = TerminalStore(services.table())
    ledger = services.ledger()
    reconciliation = Reconciliation(ledger, directory, ReconciliationStore(services.table()))
    return Reports(report_store(), lambda issuer: {m.merchant_id: m.name for m in directory.merchants(issuer)},
                   lambda issuer, month: reconciliation.report_rows(ledger.issuer(issuer), month))
