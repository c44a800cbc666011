"""`python -m localdev.jobs <job>`: run a scheduled job by hand against `make run`'s
stack (moto's server on CHIIKI_MOTO_PORT, default 5005), through the very function its
schedule calls (chalicelib/jobs), for every issuer on the issuer's today. `all` runs
every job in the order the schedules fire. Each job's log lines go to stderr through the
Powertools logger with a correlation id of that run (chalicelib.observability.command)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from localdev.fake_aws import use_fake_aws
from localdev.stack import HOST, app_env

# job name → the chalicelib.jobs function its schedule calls, in schedule order
JOBS = {
    "expiry": "daily_expiry",
    "rebate": "daily_rebates",
    "campaigns": "daily_campaigns",
    "dormancy": "daily_dormancy",
    "reminders": "daily_reminders",
    "reports": "daily_reports",
    "audit": "daily_audit",
}


def summary(job: str, report: object) -> str:
    """One line per issuer: the report's figures (lists of days shown by their ends)."""
    fields = dataclasses.asdict(report)  # type: ignore[call-overload]
    issuer = fields.pop("issuer", None) or fields.pop("issuer_id")
    on = fields.pop("on", None)
    return f"{issuer}: {job}{f' as of {on}' if on else ''}: {_figures(fields)}"


def _figures(fields: dict) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = "[" + "; ".join(_figures(nested) for nested in value) + "]"  # one per campaign
        elif isinstance(value, list):
            value = f"{value[0]} … {value[-1]}" if value else "none"
        parts.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(parts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=[*JOBS, "all"])
    chosen = parser.parse_args(argv).job
    use_fake_aws(in_process=False)
    moto = f"http://{HOST}:{os.environ.get('CHIIKI_MOTO_PORT') or 5005}"
    os.environ.update(app_env(moto))

    from chalicelib import jobs, observability, services

    try:
        services.ledger().issuer_ids()
    except Exception as exc:  # noqa: BLE001 (say plainly what is wrong, then stop)
        print(f"Cannot reach the local stack at {moto} ({exc}): is `make run` running?", file=sys.stderr)
        return 2
    for job in JOBS if chosen == "all" else [chosen]:
        # The job's log lines (on stderr) carry a correlation id of their own, as in Lambda.
        with observability.command(f"localdev.jobs {job}"):
            reports = getattr(jobs, JOBS[job])()
        for report in reports:
            print(summary(job, report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
