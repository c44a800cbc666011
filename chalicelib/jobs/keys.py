"""Key strings of the jobs context, built and parsed in one place."""

from __future__ import annotations

JOB = "JOB#"


def job_state(job: str, issuer_id: str) -> tuple[str, str]:
    """One job's progress for one issuer: a handful of items, each written once a day."""
    return f"{JOB}{job}#{issuer_id}", "STATE"


REMINDED = "REMINDED#"


def reminded(member_id: str, idm: str, lot_id: str) -> tuple[str, str]:
    """The claim that a member has been reminded of one lot of one card: one e-mail each."""
    return f"{REMINDED}{member_id}#{idm}#{lot_id}", "REMINDED"
