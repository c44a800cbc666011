"""The jobs' own items in the application table:

    JOB#<job>#<issuer>   STATE   last_done: the last day whose work the job finished
    REMINDED#<member>#<idm>#<lot>   REMINDED   the reminder about that lot went out (TTL)

Everything else a job reads or writes goes through the ledger or the MyPage store.
"""

from __future__ import annotations

from datetime import date, datetime

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError

from ..table import ClaimItem, Table, TableItem
from . import keys


class JobStateItem(TableItem, discriminator="job_state"):
    last_done = UnicodeAttribute(null=True)  # ISO date: sorts as it compares


class JobState:
    """Where each daily job left off, per issuer, so a missed day is caught up."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def last_done(self, job: str, issuer_id: str) -> date | None:
        try:
            item = JobStateItem.get(*keys.job_state(job, issuer_id), consistent_read=True)
        except JobStateItem.DoesNotExist:
            return None
        return date.fromisoformat(item.last_done) if item.last_done else None

    def mark_done(self, job: str, issuer_id: str, day: date) -> bool:
        """Record `day` as done unless a later day already is (two runs at once never
        move it backwards). Returns whether it moved."""
        done = day.isoformat()
        item = JobStateItem(*keys.job_state(job, issuer_id), last_done=done)
        try:
            item.save(condition=JobStateItem.last_done.does_not_exist() | (JobStateItem.last_done < done))
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def claim_once(pk: str, sk: str, *, by: str, expires_at: datetime) -> bool:
    """Put a claim unless it exists (one conditional put, no transaction needed for one
    item). Returns whether this caller got it."""
    try:
        ClaimItem(pk, sk, by=by, expires_at=expires_at).save(condition=TableItem.pk.does_not_exist())
    except PutError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def release_claim(pk: str, sk: str) -> None:
    ClaimItem(pk, sk).delete()
