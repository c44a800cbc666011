"""Key strings of the jobs context, built and parsed in one place."""

from __future__ import annotations

JOB = "JOB#"


def job_state(job: str, issuer_id: str) -> tuple[str, str]:
    """One job's progress for one issuer: a handful of items, each written once a day."""
    return f"{JOB}{job}#{issuer_id}", "STATE"
