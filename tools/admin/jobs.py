"""`job run NAME`: a scheduled job, now, for the issuer."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from tools.admin.parsing import command, group
from tools.admin.render import show_fields
from tools.admin.transport import Api


def job_run(api: Api, args: argparse.Namespace) -> Any:
    answer = api.call("POST", f"/jobs/{quote(args.name, safe='')}/run")
    return answer, lambda a: f"job {a['job']} done\n" + show_fields(a["report"])


def add_commands(commands) -> None:
    job = group(commands, "job", "scheduled jobs")
    command(job, "run", job_run, "run a job now for the issuer").add_argument(
        "name", choices=["expiry", "rebates", "campaigns", "dormancy", "reminders"])
