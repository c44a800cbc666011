"""Operator reports (§10): each built from the aggregate items the ledger keeps in its
own transactions (reports/domain.py says what they count), written to S3 as CSV that
Excel opens, and returned as its S3 key.

    settlement   points spent per merchant in a month, net of cancels (what the city pays)
    outstanding  points still on cards by expiry month, as of the run (the liability)
    expired      points expired and voided (and moved by damage reissue) in a month
    grants       points granted in a month by source: the rebates, and every other source
    campaigns    campaign grants in a month, per campaign
    reconciliation  the month's e-money records no settlement line matched and the
                 settlement lines that matched no record (chalicelib/reconciliation/),
                 and the day the month's settlement file arrived; written with the
                 others and written again, fresh, each time it is downloaded (files
                 arrive and match after the month's other reports are written)

A report costs one query per shard of the figures (keys.AGGREGATE_SHARDS, 128;
`expired` and `grants` one BatchGetItem per 100 shards, 2), whatever the number of
entries; `settlement` adds one query of the merchant directory.

Operators download the files through the admin API (reports/routes.py): a month's list
is one S3 listing, a file one GET, returned as stored (BOM and CRLF kept).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from . import domain, keys
from .errors import NotWrittenYet, UnknownReport
from .store import ReportStore

REPORTS = ("settlement", "outstanding", "expired", "grants", "campaigns", "reconciliation")
# The rows of a month's reconciliation report, by issuer and month (reconciliation/service.py).
ReconciliationRows = Callable[[str, str], list[list[object]]]


@dataclass
class MonthlyRun:
    issuer_id: str
    month: str
    written: dict[str, str] = field(default_factory=dict)  # report name -> S3 key
    skipped: bool = False  # the month's reports were already there


class Reports:
    def __init__(self, store: ReportStore, merchant_names: Callable[[str], Mapping[str, str]],
                 reconciliation: ReconciliationRows | None = None) -> None:
        self.store = store
        self.merchant_names = merchant_names
        self.reconciliation = reconciliation

    # -- figures ----------------------------------------------------------------------

    def settlement_lines(self, issuer_id: str, month: str) -> list[domain.SettlementLine]:
        by_merchant = self.store.month_lines(issuer_id, month, keys.MERCHANT)
        return domain.settlement_lines(by_merchant, self.merchant_names(issuer_id))

    def outstanding(self, issuer_id: str) -> dict[str, int]:
        return {m: n for m, n in self.store.outstanding(issuer_id).items() if n}

    def month_totals(self, issuer_id: str, month: str) -> dict[str, int]:
        return dict(self.store.month_totals(issuer_id, month))

    def campaign_totals(self, issuer_id: str, month: str) -> dict[str, int]:
        lines = self.store.month_lines(issuer_id, month, keys.CAMPAIGN)
        return {name: c[domain.GRANTED] for name, c in lines.items() if c[domain.GRANTED]}

    # -- files ------------------------------------------------------------------------

    def write_settlement(self, issuer_id: str, month: str) -> str:
        body = domain.settlement_csv(month, self.settlement_lines(issuer_id, month))
        return self._put(issuer_id, month, "settlement", body)

    def write_outstanding(self, issuer_id: str, month: str, *, as_of: str) -> str:
        """The liability as the figures stand now (`as_of` names the moment), filed under `month`."""
        return self._put(issuer_id, month, "outstanding", domain.outstanding_csv(as_of, self.outstanding(issuer_id)))

    def write_expired(self, issuer_id: str, month: str) -> str:
        body = domain.expired_voided_csv(month, self.month_totals(issuer_id, month))
        return self._put(issuer_id, month, "expired", body)

    def write_grants(self, issuer_id: str, month: str) -> str:
        return self._put(issuer_id, month, "grants", domain.grants_csv(month, self.month_totals(issuer_id, month)))

    def write_campaigns(self, issuer_id: str, month: str) -> str:
        body = domain.campaigns_csv(month, self.campaign_totals(issuer_id, month))
        return self._put(issuer_id, month, "campaigns", body)

    def write_reconciliation(self, issuer_id: str, month: str) -> str:
        return self._put(issuer_id, month, "reconciliation", self._reconciliation_csv(issuer_id, month))

    def _reconciliation_csv(self, issuer_id: str, month: str) -> bytes:
        from ..reconciliation.domain import HEADER

        assert self.reconciliation is not None
        return domain.to_csv(HEADER, self.reconciliation(issuer_id, month))

    def write_month(self, issuer_id: str, month: str, *, as_of: str) -> dict[str, str]:
        """Every report of `month`; then the month's manifest, which marks it done."""
        written = {
            "settlement": self.write_settlement(issuer_id, month),
            "outstanding": self.write_outstanding(issuer_id, month, as_of=as_of),
            "expired": self.write_expired(issuer_id, month),
            "grants": self.write_grants(issuer_id, month),
            "campaigns": self.write_campaigns(issuer_id, month),
        }
        if self.reconciliation is not None:
            written["reconciliation"] = self.write_reconciliation(issuer_id, month)
        manifest = {"issuer": issuer_id, "month": month, "as_of": as_of, "reports": written}
        self.store.put_object(
            keys.report_manifest(issuer_id, month), json.dumps(manifest).encode(), "application/json"
        )
        return written

    # -- downloads ----------------------------------------------------------------------

    def month_files(self, issuer_id: str, month: str) -> dict:
        """The month's report files as written (name, size, when), in REPORTS order, and
        whether the run finished (its manifest is there); NotWrittenYet when there are none."""
        month = domain.checked_month(month)
        found = self.store.list_objects(keys.report_prefix(issuer_id, month))
        by_name = {keys.report_name(o.key, issuer_id, month): o for o in found}
        files = [
            {"name": name, "file": domain.download_name(issuer_id, month, name), "size": o.size,
             "written_at": o.modified.isoformat()}
            for name in REPORTS if (o := by_name.get(name)) is not None
        ]
        if not files:
            raise NotWrittenYet(issuer_id, month)
        complete = any(o.key == keys.report_manifest(issuer_id, month) for o in found)
        return {"issuer": issuer_id, "month": month, "complete": complete, "files": files}

    def report_file(self, issuer_id: str, month: str, name: str) -> tuple[str, bytes]:
        """One report's file name for download and its bytes exactly as stored."""
        month = domain.checked_month(month)
        if name not in REPORTS:
            raise UnknownReport(name, REPORTS)
        if name == "reconciliation" and self.reconciliation is not None:
            # As it stands now (settlement files arrive after the 1st), computed for the
            # download and not stored: the API's role writes no bucket.
            return domain.download_name(issuer_id, month, name), self._reconciliation_csv(issuer_id, month)
        body = self.store.read_if_present(keys.report_object(issuer_id, month, name))
        if body is None:
            raise NotWrittenYet(issuer_id, month, name)
        return domain.download_name(issuer_id, month, name), body

    def _put(self, issuer_id: str, month: str, name: str, body: bytes) -> str:
        return self.store.put_object(keys.report_object(issuer_id, month, name), body, "text/csv; charset=utf-8")


def run_monthly_reports(reports: Reports, issuer_id: str, on: date, *, force: bool = False) -> MonthlyRun:
    """Write last month's reports on any day of this month, once: a daily schedule
    writes them on the 1st and later runs find the manifest and do nothing (a missed
    1st is caught up the next day). `force` rewrites them (same figures, except the
    outstanding report, which is always as of its run)."""
    month = domain.previous_month(on)
    run = MonthlyRun(issuer_id, month)
    if not force and reports.store.exists(keys.report_manifest(issuer_id, month)):
        run.skipped = True
        return run
    run.written = reports.write_month(issuer_id, month, as_of=on.isoformat())
    return run
