"""`grant-list`: admin grants (行政ポイント) from a CSV of card_number,points, sent in
parts under one list id."""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path
from typing import Any

from tools.admin.parsing import command
from tools.admin.render import pts
from tools.admin.transport import Api, Failed

GRANT_LIST_CHUNK = 200  # rows per request: the API's limit (its 16 KB body bound), well inside API Gateway's 29 s


def read_grant_list(path: Path) -> tuple[list[tuple[int, dict]], list[dict]]:
    """Rows of a grant list CSV (UTF-8, with or without BOM; columns card_number, points;
    the header line optional), numbered as a spreadsheet shows them, and the rows that
    cannot be sent, with why."""
    rows, bad = [], []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for line_no, cells in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in cells]
            if not any(cells):
                continue
            if line_no == 1 and cells and cells[0].lower() in ("card_number", "card number", "カード番号"):
                continue
            if len(cells) < 2:
                bad.append({"row": line_no, "reason": "needs a card number and points"})
            elif not cells[1].isdigit() or int(cells[1]) <= 0:
                bad.append({"row": line_no, "reason": f"points must be a positive whole number, not {cells[1]!r}"})
            else:
                rows.append((line_no, {"card_number": cells[0], "points": int(cells[1])}))
    return rows, bad


def send_grant_list(api: Api, path: Path, list_id: str, reason: str) -> dict:
    """Sent in parts of GRANT_LIST_CHUNK rows under one list id: each (list, card) is
    granted once, so sending the file again after a failure is safe."""
    rows, rejected = read_grant_list(path)
    total = {"list_id": list_id, "granted": 0, "points": 0, "already_granted": 0, "rejected": rejected}
    for start in range(0, len(rows), GRANT_LIST_CHUNK):
        part = rows[start:start + GRANT_LIST_CHUNK]
        answer = api.call("POST", "/grant-lists", {"list_id": list_id, "reason": reason, "rows": [r for _, r in part]})
        total["granted"] += answer["granted"]
        total["points"] += answer["points"]
        total["already_granted"] += answer.get("already_granted", 0)
        total["rejected"] += [{"row": part[r["row"] - 1][0], "reason": r["reason"]} for r in answer["rejected"]]
    total["rejected"].sort(key=lambda r: r["row"])
    return total


def list_id_for(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:40] or "list"


def grant_list(api: Api, args: argparse.Namespace) -> Any:
    path = Path(args.file)
    if not path.is_file():
        raise Failed(f"no such file: {path}", 2)
    answer = send_grant_list(api, path, args.list_id or list_id_for(path), args.reason)

    def show(a: dict) -> str:
        already = f", {a['already_granted']} already granted" if a["already_granted"] else ""
        lines = [f"list {a['list_id']}: {a['granted']} cards granted, {pts(a['points'])}{already}"]
        lines += [f"  row {r['row']}: {r['reason']}" for r in a["rejected"]]
        return "\n".join(lines)

    return answer, show


def add_commands(commands) -> None:
    sub = command(commands, "grant-list", grant_list, "admin grants (行政ポイント) from a CSV of card_number,points")
    sub.add_argument("file")
    sub.add_argument("--reason", required=True)
    sub.add_argument("--list-id", help="the list's id (default: the file's name); a list is granted once per card")
