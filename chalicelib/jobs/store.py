"""The jobs' own items in the application table:

    REMINDED#<member>#<idm>#<lot>   REMINDED   the reminder about that lot went out (TTL)
    JOBRUN#<job>#<issuer>#<on>      DAY#<day>  a work day split in parts: the parts done (TTL)
    JOBRUN#<job>#<issuer>#<on>      PART#<day>#<part>  a part's checkpoint: shard and key (TTL)

Each job's progress (JOB#<job>#<issuer>) is kept by chalicelib/job_progress.py, which the
campaigns' daily job shares. Everything else a job reads or writes goes through the
ledger or the MyPage store.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from pynamodb.attributes import NumberAttribute, NumberSetAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from ..table import ClaimItem, TableItem
from . import keys


class Piece(Protocol):
    """What the store needs of a job runner's piece (chalicelib/jobs/runner.py)."""

    job: str
    issuer: str
    on: date
    day: date
    part: int
    parts: int

# A run's bookkeeping goes this long after its run day (only a catch-up reads it, next day).
RUN_ITEMS_DAYS = 14


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


class JobDayItem(TableItem, discriminator="job_day"):
    parts = NumberAttribute()
    done = NumberSetAttribute(null=True)


class JobCheckpointItem(TableItem, discriminator="job_checkpoint"):
    shard = NumberAttribute()
    key = UnicodeAttribute()


def _expires(on: date) -> datetime:
    return datetime.combine(on + timedelta(days=RUN_ITEMS_DAYS), time.min, tzinfo=UTC)


def parts_done(job: str, issuer_id: str, on: date, day: date) -> set[int]:
    """The parts of a work day done (one strongly consistent read)."""
    try:
        item = JobDayItem.get(*keys.job_day(job, issuer_id, on, day), consistent_read=True)
    except JobDayItem.DoesNotExist:
        return set()
    return {int(n) for n in item.done or ()}


def part_done(piece: Piece) -> bool:
    """Record a piece's part done (one UpdateItem, idempotent); whether its day now is."""
    item = JobDayItem(*keys.job_day(piece.job, piece.issuer, piece.on, piece.day))
    item.update(actions=[
        JobDayItem.done.add({piece.part}),
        JobDayItem.parts.set(piece.parts),
        JobDayItem.type.set(JobDayItem),
        JobDayItem.expires_at.set(_expires(piece.on)),
    ])
    return len(item.done or ()) >= piece.parts


def checkpoint(piece: Piece) -> tuple[int, str] | None:
    try:
        item = JobCheckpointItem.get(*keys.job_checkpoint(piece.job, piece.issuer, piece.on, piece.day, piece.part),
                                     consistent_read=True)
    except JobCheckpointItem.DoesNotExist:
        return None
    return int(item.shard), item.key


def save_checkpoint(piece: Piece, cursor: tuple[int, str]) -> None:
    JobCheckpointItem(*keys.job_checkpoint(piece.job, piece.issuer, piece.on, piece.day, piece.part),
                      shard=cursor[0], key=cursor[1], expires_at=_expires(piece.on)).save()
