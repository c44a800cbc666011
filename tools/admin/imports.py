"""`import KIND FILE`: a CSV file posted to the import route; the result file saved
beside it; exit 3 when time ran out part way (the same command goes on)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tools.admin.parsing import command
from tools.admin.render import pts
from tools.admin.transport import CSV, Api, Failed

IMPORT_KINDS = ("cards", "merchants", "terminals", "events", "admin-grants", "emoney-settlements")
PARTLY_DONE = 3  # exit status: an import stopped part way; the same command goes on


def result_path(path: Path) -> Path:
    """Where `import` saves the result file: beside the input, cards.csv -> cards.result.csv."""
    return path.with_name(f"{path.stem if path.suffix.lower() == '.csv' else path.name}.result.csv")


def import_file(api: Api, args: argparse.Namespace) -> Any:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Failed(f"cannot read {path}: {exc}", 2) from exc
    again = "; run the same command again: rows already done come back unchanged"
    answer = api.send("POST", f"/imports/{quote(args.kind, safe='')}", data, content_type=CSV, retry=again)
    body = json.loads(answer.body)
    saved = result_path(path)
    try:
        saved.write_bytes(("\ufeff" + body["csv"]).encode("utf-8"))  # with its BOM, as Excel wants it
    except OSError as exc:
        raise Failed(f"the import is done but its result file cannot be written to {saved}: {exc}", 2) from exc
    result = {**body["result"], "result_file": str(saved)}

    def show(r: dict) -> str:
        points = f", {pts(r['points'])} granted" if r["points"] else ""
        lines = [f"{r['kind']} from {path.name}: {r['imported']} imported, {r['unchanged']} unchanged (already "
                 f"imported), {r['rejected']} rejected{points}"]
        lines += [f"  row {x['row']}: {x['reason']}" for x in r["rejections"]]
        lines.append(f"result file: {r['result_file']}")
        if not r["complete"]:
            lines.append(f"time ran out after {r['rows'] + r['blank']} of {r['rows_total']} rows: the rows so far "
                         "are done; run the same command again to go on (rows already done come back unchanged)")
        return "\n".join(lines)

    return result, show, 0 if result["complete"] else PARTLY_DONE


def add_commands(commands) -> None:
    sub = command(commands, "import", import_file, "import a CSV file (at most 1,000 rows; larger files go to "
                  "the imports bucket); the result file is saved beside it as NAME.result.csv")
    sub.add_argument("kind", choices=IMPORT_KINDS)
    sub.add_argument("file")
