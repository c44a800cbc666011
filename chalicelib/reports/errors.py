"""Report download errors: one root, one subclass per rule, each with a stable code and
a message in plain words for the operator. The root derives from the shared ChiikiError
so the one HTTP error mapping (chalicelib/http.py) serves them."""

from __future__ import annotations

from ..errors import ChiikiError


class ReportsError(ChiikiError):
    code = "reports_error"


class InvalidMonth(ReportsError):
    code = "invalid_month"

    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is not a month: give it as YYYY-MM, e.g. 2025-06")


class UnknownReport(ReportsError):
    code = "unknown_report"
    http_status = 404

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no report {name!r}; the reports are {', '.join(known)}")


class NotWrittenYet(ReportsError):
    """The month's reports (or this one of them) are not in the bucket: the schedule has
    not reached the month yet, or it failed. Say how they get written."""

    code = "reports_not_written"
    http_status = 404

    def __init__(self, issuer_id: str, month: str, name: str | None = None) -> None:
        what = f"the {name} report" if name else "reports"
        super().__init__(
            f"no {what} of {month} for {issuer_id} yet: the write-reports schedule writes last month's "
            f"reports on the 1st (00:40 JST); to write them now, run "
            f"`python -m chalicelib.reports month --issuer {issuer_id} --month {month}`"
        )


class AuditFailed(RuntimeError):
    """A chain is broken or no longer passes through its anchor: the audit job fails, so its
    alarm fires. Not an API error (no operator request raises it)."""
