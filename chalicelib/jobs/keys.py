"""Key strings of the jobs context, built and parsed in one place. (A job's progress,
JOB#<job>#<issuer>, is keyed in chalicelib/job_progress.py.)"""

from __future__ import annotations

from datetime import date

REMINDED = "REMINDED#"


def reminded(member_id: str, idm: str, lot_id: str) -> tuple[str, str]:
    """The claim that a member has been reminded of one lot of one card: one e-mail each."""
    return f"{REMINDED}{member_id}#{idm}#{lot_id}", "REMINDED"


JOBRUN = "JOBRUN#"


def job_run(job: str, issuer_id: str, on: date) -> str:
    """The partition of one job's run day for one issuer: its work days' parts done."""
    return f"{JOBRUN}{job}#{issuer_id}#{on.isoformat()}"


def job_day(job: str, issuer_id: str, on: date, day: date) -> tuple[str, str]:
    """A work day of a run split in parts: the parts done so far."""
    return job_run(job, issuer_id, on), f"DAY#{day.isoformat()}"


def job_checkpoint(job: str, issuer_id: str, on: date, day: date, part: int) -> tuple[str, str]:
    """A part's cursor, written every so many keys (a killed worker's successor reads it)."""
    return job_run(job, issuer_id, on), f"PART#{day.isoformat()}#{part:03d}"
