"""What every daily job shares, whichever context holds the job: where it left off per
issuer, and the error a run stopped part way raises.

    JOB#<job>#<issuer>   STATE   last_done: the last day whose work the job finished

Beside table.py rather than in chalicelib/jobs/: the campaigns' daily job uses it too,
and the jobs package calls the campaigns' service, so the arrows run jobs -> campaigns
-> job_progress and never back.
"""

from __future__ import annotations

from datetime import date

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError

from .table import TableItem

JOB = "JOB#"


class JobInterrupted(Exception):
    """Raised by a job's `fail_after`: a run stopped part way, as a killed Lambda would."""


def job_state_key(job: str, issuer_id: str) -> tuple[str, str]:
    """One job's progress for one issuer: a handful of items, each written once a day."""
    return f"{JOB}{job}#{issuer_id}", "STATE"


class JobStateItem(TableItem, discriminator="job_state"):
    last_done = UnicodeAttribute(null=True)  # ISO date: sorts as it compares


class JobState:
    """Where each daily job left off, per issuer, so a missed day is caught up. Its items
    reach the table through their model, bound once to the settings' table (table.py)."""

    def last_done(self, job: str, issuer_id: str) -> date | None:
        try:
            item = JobStateItem.get(*job_state_key(job, issuer_id), consistent_read=True)
        except JobStateItem.DoesNotExist:
            return None
        return date.fromisoformat(item.last_done) if item.last_done else None

    def mark_done(self, job: str, issuer_id: str, day: date) -> bool:
        """Record `day` as done unless a later day already is (two runs at once never
        move it backwards). Returns whether it moved."""
        done = day.isoformat()
        item = JobStateItem(*job_state_key(job, issuer_id), last_done=done)
        try:
            item.save(condition=JobStateItem.last_done.does_not_exist() | (JobStateItem.last_done < done))
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False
            raise
        return True
