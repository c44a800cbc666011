"""`report list|get`: the monthly reports' CSV files, downloaded byte for byte."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tools.admin.parsing import command, group
from tools.admin.render import show_rows
from tools.admin.transport import CSV, Api, Failed


def reports_path(month: str, name: str | None = None) -> str:
    return f"/reports/{quote(month, safe='')}" + (f"/{quote(name, safe='')}" if name else "")


def report_list(api: Api, args: argparse.Namespace) -> Any:
    return api.call("GET", reports_path(args.month)), show_report_files


def show_report_files(a: dict) -> str:
    head = f"reports of {a['month']} for {a['issuer']}"
    if not a["complete"]:
        head += " (the month's run has not finished: some may be missing)"
    return head + "\n" + show_rows(a["files"], ("name", "file", "size", "written_at"))


def report_get(api: Api, args: argparse.Namespace) -> Any:
    """Every file is downloaded before any is written, so a refusal leaves no partial set."""
    names = args.names or [f["name"] for f in api.call("GET", reports_path(args.month))["files"]]
    out = Path(args.out)
    files = []
    for name in names:
        answer = api.send("GET", reports_path(args.month, name), accept=CSV)
        # The API names the file (Content-Disposition); only its last part is used, never a folder.
        files.append((out / Path(answer.headers.get_filename() or f"{name}.csv").name, answer.body))
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, body in files:
            path.write_bytes(body)  # as the API sent it: the BOM and CRLF kept for Excel
    except OSError as exc:
        raise Failed(f"cannot write the reports to {out}: {exc}", 2) from exc
    written = [{"path": str(path), "size": len(body)} for path, body in files]
    return {"month": args.month, "written": written}, lambda a: "\n".join(
        f"wrote {w['path']} ({w['size']:,} bytes)" for w in a["written"])


def add_commands(commands) -> None:
    report = group(commands, "report", "the monthly reports (CSV)")
    command(report, "list", report_list, "a month's report files").add_argument("month", help="YYYY-MM")
    sub = command(report, "get", report_get, "download a month's reports, byte for byte (UTF-8 with BOM)")
    sub.add_argument("month", help="YYYY-MM")
    sub.add_argument("names", nargs="*", metavar="NAME",
                     help="settlement, outstanding, expired, grants, campaigns, reconciliation (default: every file "
                          "of the month)")
    sub.add_argument("--out", default=".", help="the folder to write them in (default: the current one)")
