"""Key strings of the jobs context, built and parsed in one place. (A job's progress,
JOB#<job>#<issuer>, is keyed in chalicelib/job_progress.py.)"""

from __future__ import annotations

REMINDED = "REMINDED#"


def reminded(member_id: str, idm: str, lot_id: str) -> tuple[str, str]:
    """The claim that a member has been reminded of one lot of one card: one e-mail each."""
    return f"{REMINDED}{member_id}#{idm}#{lot_id}", "REMINDED"
