"""The jobs' own items in the application table:

    REMINDED#<member>#<idm>#<lot>   REMINDED   the reminder about that lot went out (TTL)

Each job's progress (JOB#<job>#<issuer>) is kept by chalicelib/job_progress.py, which the
campaigns' daily job shares. Everything else a job reads or writes goes through the
ledger or the MyPage store.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PutError

from ..table import ClaimItem, TableItem


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
