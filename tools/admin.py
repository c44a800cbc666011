"""The operators' command line for the admin API.

    python -m tools.admin --api URL --issuer niimi card show JW123456789012345
    python -m tools.admin card return JW123456789012345 --reason moving --note "転出"
    python -m tools.admin card reissue JW123456789012345 --new-number JW… --new-idm 0123456789abcdef
    python -m tools.admin card void JW123456789012345 --note "issued in error" --close
    python -m tools.admin merchant add M-1 --name 新見精肉店 --area 新見 --category 食料品
    python -m tools.admin merchant list
    python -m tools.admin terminal add T-1 --mode store --merchant M-1 --key terminal.pub.pem
    python -m tools.admin terminal disable T-1        (enable T-1; add --replace-key rotates a key)
    python -m tools.admin event add E-1 --name 健康ウォーク --points 500 --opens … --closes …
    python -m tools.admin rate add R-1 --bps 200 --from 2024-07-01 --to 2024-07-31
    python -m tools.admin campaign add|list|enrol …
    python -m tools.admin grant-list volunteers.csv --reason "volunteering 2024-06"
    python -m tools.admin import cards cards.csv      (merchants, terminals, events, admin-grants,
                                                       emoney-settlements)
    python -m tools.admin report list 2025-06
    python -m tools.admin report get 2025-06 [settlement …] [--out DIR]
    python -m tools.admin job run expiry

`--api` (or CHIIKI_ADMIN_API) is the API's base URL: the execute-api URL with its stage
for a deployed stack (https://<id>.execute-api.<region>.amazonaws.com/api), or
http://127.0.0.1:8000 under `make run`. `--issuer` (or CHIIKI_ADMIN_ISSUER) picks the
issuer. Every request is signed with AWS Signature Version 4 (service execute-api) with
credentials from the default chain (environment, profile, SSO, instance role); API
Gateway checks the signature and the caller's IAM policy, and the ledger records the
caller's ARN. Under `make run` nothing checks the signature, and without credentials
the CLI signs with a placeholder for a loopback address only.

Card changes carry a request id (a new one unless --request-id is given): when an answer
is lost, repeat the command with the id it printed, and the change is made once.

`import` posts the file (at most 1,000 rows) to the import route, prints the summary and
each rejected row with its reason, and saves the result file beside the input
(cards.csv -> cards.result.csv). Rejected rows are the file's to fix, not a failure: the
import is done. When time runs out first, the rows so far are done: run the same command
again to go on (the rows already done come back unchanged). `report get` writes a month's
CSV files (all of them unless named) byte for byte as the reports schedule wrote them,
UTF-8 with a BOM so that Excel opens them, under the names the API gives them
(<issuer>-<month>-<name>.csv).

Exit status: 0 done, 1 refused by the API, 2 not sent, no answer or a local file not
read or written, 3 an import stopped part way (run the same command again).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from email.message import Message
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

DEFAULT_REGION = "ap-northeast-1"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
IMPORT_KINDS = ("cards", "merchants", "terminals", "events", "admin-grants", "emoney-settlements")
PARTLY_DONE = 3  # exit status: an import stopped part way; the same command goes on
GRANT_LIST_CHUNK = 200  # rows per request: the API's limit (its 16 KB body bound), well inside API Gateway's 29 s
JSON, CSV = "application/json", "text/csv"
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


class Failed(Exception):
    """The API refused the request (exit 1) or was not reached (exit 2)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- signing and sending ----------------------------------------------------------------


def region_for(url: str, given: str | None) -> str:
    if given:
        return given
    match = EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    if match:
        return match.group(1)
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def credentials_for(url: str):
    import botocore.session
    from botocore.credentials import Credentials

    found = botocore.session.get_session().get_credentials()
    if found is not None:
        return found
    if urlsplit(url).hostname in LOOPBACK:
        return Credentials("local", "local")  # `make run` checks no signature
    raise Failed("no AWS credentials found (environment, profile or role): the admin API needs them", 2)


def signed_request(method: str, url: str, body: bytes | None, *, region: str, credentials, content_type: str = JSON,
                   accept: str = JSON) -> urllib.request.Request:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    headers = {"Content-Type": content_type, "Accept": accept}
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    prepared = request.prepare()
    return urllib.request.Request(prepared.url, data=body if method != "GET" else None,
                                  headers=dict(prepared.headers.items()), method=method)


class Answer(NamedTuple):
    status: int
    headers: Message
    body: bytes


class Api:
    def __init__(self, base: str, issuer: str, region: str | None = None, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.issuer = issuer
        self.region = region_for(self.base, region)
        self.timeout = timeout
        self._credentials = None

    def call(self, method: str, path: str, body: dict | None = None, *, request_id: str | None = None) -> Any:
        """Send a JSON body (or none) and return the JSON answer."""
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        retry = f"; repeat the command with --request-id {request_id} to make the change once" if request_id else ""
        return json.loads(self.send(method, path, data, retry=retry).body or b"null")

    def send(self, method: str, path: str, data: bytes | None = None, *, content_type: str = JSON,
             accept: str = JSON, retry: str = "") -> Answer:
        """The answer as it came; `retry` ends the message of a failure."""
        url = f"{self.base}/api/admin/v1/issuers/{quote(self.issuer, safe='')}{path}"
        if self._credentials is None:
            self._credentials = credentials_for(url)
        request = signed_request(method, url, data, region=self.region, credentials=self._credentials,
                                 content_type=content_type, accept=accept)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (our URL)
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            raise refused(exc.code, exc.read(), retry) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Failed(f"no answer from {self.base}: {reason}{retry}", 2) from exc


def refused(status: int, raw: bytes, retry: str) -> Failed:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("message"):
        code = f" ({answer['code']})" if answer.get("code") else ""
        message = f"{answer['message']}{code}"
    else:
        message = raw.decode("utf-8", "replace").strip()[:300] or "no details"
    if status >= 500:
        return Failed(f"the API failed (HTTP {status}): {message}{retry}", 2)
    return Failed(f"refused (HTTP {status}): {message}")


# -- printing ---------------------------------------------------------------------------


def pts(n: int) -> str:
    return f"{n:,} pt"


def show_card(card: dict) -> str:
    lines = [
        f"Card {card['card_number']}  IDm {card['idm']}  issuer {card['issuer']}  status {card['status']}",
        f"Balance {pts(card['balance'])} as of {card['as_of']}; last grant or spend {card['last_activity'] or '-'}",
    ]
    lines.append("Lots:" if card["lots"] else "Lots: none with points")
    for lot in card["lots"]:
        lines.append(f"  lot {lot['lot']:<6} {pts(lot['points']):>12}  valid {lot['valid_from']} to "
                     f"{lot['expires_on']}  {lot['source']:<9} {lot['state']}")
    lines.append("Recent history, newest first:" if card["history"] else "History: none")
    for entry in card["history"]:
        who = entry["actor"].get("id", "")
        why = f"  ({entry['reason']})" if entry.get("reason") else ""
        lines.append(f"  {entry['day']}  {entry['kind']:<13} {entry['points']:>+10,}  {entry['actor']['kind']} "
                     f"{who}{why}")
    return "\n".join(lines)


def show_fields(data: dict) -> str:
    width = max((len(k) for k in data), default=0)
    return "\n".join(f"{k:<{width}}  {_value(v)}" for k, v in data.items())


def _value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if v is None:
        return "-"
    return str(v)


def show_rows(rows: list[dict], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    table = [list(columns)] + [[_value(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


# -- grant lists ------------------------------------------------------------------------


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
    total = {"list_id": list_id, "granted": 0, "points": 0, "rejected": rejected}
    for start in range(0, len(rows), GRANT_LIST_CHUNK):
        part = rows[start:start + GRANT_LIST_CHUNK]
        answer = api.call("POST", "/grant-lists", {"list_id": list_id, "reason": reason, "rows": [r for _, r in part]})
        total["granted"] += answer["granted"]
        total["points"] += answer["points"]
        total["rejected"] += [{"row": part[r["row"] - 1][0], "reason": r["reason"]} for r in answer["rejected"]]
    total["rejected"].sort(key=lambda r: r["row"])
    return total


def list_id_for(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:40] or "list"


# -- the commands -----------------------------------------------------------------------


def _request_id(args: argparse.Namespace) -> str:
    return args.request_id or uuid.uuid4().hex


def _card_change(api: Api, args: argparse.Namespace, path: str, body: dict) -> Any:
    request_id = _request_id(args)
    answer = api.call("POST", path, {"request_id": request_id, **body}, request_id=request_id)
    return {**answer, "request_id": request_id}, show_fields


def card_show(api: Api, args: argparse.Namespace) -> Any:
    return api.call("POST", "/cards/lookup", {"card_number": args.card_number}), show_card


def card_return(api: Api, args: argparse.Namespace) -> Any:
    body = {"card_number": args.card_number, "reason": args.reason, "note": args.note or ""}
    return _card_change(api, args, "/cards/return", body)


def card_reissue(api: Api, args: argparse.Namespace) -> Any:
    body = {"card_number": args.card_number, "new_card_number": args.new_number, "new_idm": args.new_idm.lower(),
            "note": args.note or ""}
    return _card_change(api, args, "/cards/reissue", body)


def card_void(api: Api, args: argparse.Namespace) -> Any:
    return _card_change(api, args, "/cards/void", {"card_number": args.card_number, "note": args.note,
                                                   "close": args.close})


def settings_show(api: Api, args: argparse.Namespace) -> Any:
    return api.call("GET", "/settings"), show_fields


# --reconciliation: required (records earn only once matched in the settlement file),
# off, or default (the stage's: required when deployed).
RECONCILIATION_CHOICES = {"required": True, "off": False, "default": None}


def settings_set(api: Api, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {k: v for k, v in (("point_name", args.point_name), ("rebate_bps", args.rebate_bps),
                                              ("emoney_terminal_daily_yen", args.terminal_daily_yen),
                                              ("emoney_card_daily_yen", args.card_daily_yen))
                            if v is not None}
    if args.add_closure or args.remove_closure:
        closures = set(api.call("GET", "/settings")["closures"]) | set(args.add_closure)
        body["closures"] = sorted(closures - set(args.remove_closure))
    if args.reconciliation is not None:
        body["reconciliation"] = RECONCILIATION_CHOICES[args.reconciliation]
    if not body:
        raise Failed("nothing to change: give --point-name, --rebate-bps, --terminal-daily-yen, --card-daily-yen, "
                     "--add-closure, --remove-closure or --reconciliation", 2)
    return api.call("POST", "/settings", body), show_fields


def merchant_add(api: Api, args: argparse.Namespace) -> Any:
    body = {"merchant_id": args.merchant_id, "name": args.name, "area": args.area, "category": args.category,
            "rebate_bps": args.rebate_bps}
    return api.call("POST", "/merchants", body), show_fields


def merchant_list(api: Api, args: argparse.Namespace) -> Any:
    answer = api.call("GET", "/merchants")
    columns = ("merchant_id", "name", "area", "category", "rebate_bps")
    return answer, lambda a: show_rows(a["merchants"], columns)


def terminal_add(api: Api, args: argparse.Namespace) -> Any:
    try:
        key = Path(args.key).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failed(f"cannot read the public key file {args.key}: {exc}", 2) from exc
    body = {"terminal_id": args.terminal_id, "mode": args.mode, "public_key": key, "replace_key": args.replace_key}
    body.update({k: v for k, v in (("merchant_id", args.merchant), ("event_id", args.event)) if v})
    return api.call("POST", "/terminals", body), show_fields


def terminal_status(action: str) -> Callable[[Api, argparse.Namespace], Any]:
    def run(api: Api, args: argparse.Namespace) -> Any:
        return api.call("POST", f"/terminals/{quote(args.terminal_id, safe='')}/{action}"), show_fields

    return run


def event_add(api: Api, args: argparse.Namespace) -> Any:
    body = {"event_id": args.event_id, "name": args.name, "points": args.points, "opens_at": args.opens,
            "closes_at": args.closes, "validity_months": args.validity_months}
    return api.call("POST", "/events", body), show_fields


def rate_add(api: Api, args: argparse.Namespace) -> Any:
    body = {"rate_id": args.rate_id, "bps": args.bps, "starts_on": args.starts_on, "ends_on": args.ends_on}
    if args.merchant:
        body["merchant_id"] = args.merchant
    return api.call("POST", "/rebate-rates", body), show_fields


def campaign_add(api: Api, args: argparse.Namespace) -> Any:
    body = {"campaign_id": args.campaign_id, "name": args.name, "rate_bps": args.rate_bps, "cap": args.cap,
            "threshold": args.threshold, "grant_day": args.grant_day, "starts_on": args.starts_on,
            "ends_on": args.ends_on, "excluded_kinds": args.exclude, "validity_months": args.validity_months}
    return api.call("POST", "/campaigns", body), show_fields


def campaign_list(api: Api, args: argparse.Namespace) -> Any:
    columns = ("campaign_id", "name", "rate_bps", "cap", "threshold", "grant_day", "starts_on", "ends_on")
    return api.call("GET", "/campaigns"), lambda a: show_rows(a["campaigns"], columns)


def campaign_enrol(api: Api, args: argparse.Namespace) -> Any:
    body = {"card_number": args.card_number, "enrolled_on": args.on}
    return api.call("POST", f"/campaigns/{quote(args.campaign_id, safe='')}/enrolments", body), show_fields


def grant_list(api: Api, args: argparse.Namespace) -> Any:
    path = Path(args.file)
    if not path.is_file():
        raise Failed(f"no such file: {path}", 2)
    answer = send_grant_list(api, path, args.list_id or list_id_for(path), args.reason)

    def show(a: dict) -> str:
        lines = [f"list {a['list_id']}: {a['granted']} cards granted, {pts(a['points'])}"]
        lines += [f"  row {r['row']}: {r['reason']}" for r in a["rejected"]]
        return "\n".join(lines)

    return answer, show


def job_run(api: Api, args: argparse.Namespace) -> Any:
    answer = api.call("POST", f"/jobs/{quote(args.name, safe='')}/run")
    return answer, lambda a: f"job {a['job']} done\n" + show_fields(a["report"])


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.admin", description="The Chiiki Points admin API, signed with "
                                "SigV4 (credentials from the default AWS chain).")
    p.add_argument("--api", default=os.environ.get("CHIIKI_ADMIN_API"),
                   help="base URL (env CHIIKI_ADMIN_API), e.g. https://<id>.execute-api.<region>.amazonaws.com/api")
    p.add_argument("--issuer", default=os.environ.get("CHIIKI_ADMIN_ISSUER"),
                   help="issuer id (env CHIIKI_ADMIN_ISSUER)")
    p.add_argument("--region", help="signing region (default: from the URL, else AWS_REGION, else ap-northeast-1)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer as it is")
    commands = p.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(group, name: str, run: Callable, help: str) -> argparse.ArgumentParser:  # noqa: A002
        sub = group.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    def changing(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--request-id", help="repeat a change whose answer was lost (printed by the first try)")

    card = commands.add_parser("card", help="look up, return, reissue or void a card").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    command(card, "show", card_show, "status, balance, lots and recent history").add_argument("card_number")
    sub = command(card, "return", card_return, "返却: void all points, close the card, unlink it from MyPage")
    sub.add_argument("card_number")
    sub.add_argument("--reason", required=True, choices=["death", "moving", "other"])
    sub.add_argument("--note", help="free text (required with --reason other)")
    changing(sub)
    sub = command(card, "reissue", card_reissue, "障害再発行: move the lots, with their expiry, to a replacement card")
    sub.add_argument("card_number", help="the broken card's number")
    sub.add_argument("--new-number", required=True, help="the replacement card's number")
    sub.add_argument("--new-idm", required=True, help="the replacement card's IDm (16 hex digits)")
    sub.add_argument("--note")
    changing(sub)
    sub = command(card, "void", card_void, "抹消: void all points with a reason")
    sub.add_argument("card_number")
    sub.add_argument("--note", required=True, help="why (recorded on the entry)")
    sub.add_argument("--close", action="store_true", help="also close the card as void and unlink it from MyPage")
    changing(sub)

    settings = commands.add_parser("settings", help="the issuer's settings").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    command(settings, "show", settings_show, "the points' name, rates, validity, time zone and closure days")
    sub = command(settings, "set", settings_set,
                  "change the points' name, the default rebate rate, the daily e-money limits or closure days")
    sub.add_argument("--point-name")
    sub.add_argument("--rebate-bps", type=int, help="default e-money rebate rate for payments from now on "
                                                     "(basis points, 100 = 1%%)")
    sub.add_argument("--terminal-daily-yen", type=int, help="e-money one terminal may record per day, in yen "
                                                             "(default 1,000,000; 0 stops all records)")
    sub.add_argument("--card-daily-yen", type=int, help="e-money payments (and charges apart) one card may have "
                                                         "recorded per day, in yen (default 100,000)")
    sub.add_argument("--add-closure", action="append", default=[], metavar="YYYY-MM-DD",
                     help="a day the city office is closed (not a business day for the rebate); repeatable")
    sub.add_argument("--remove-closure", action="append", default=[], metavar="YYYY-MM-DD")
    sub.add_argument("--reconciliation", choices=sorted(RECONCILIATION_CHOICES),
                     help="required: e-money records earn a rebate only once matched in the acquirer's "
                          "settlement file; off; default: the stage's (required when deployed)")

    merchant = commands.add_parser("merchant", help="member stores").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    sub = command(merchant, "add", merchant_add, "register or update a merchant")
    sub.add_argument("merchant_id")
    sub.add_argument("--name", required=True)
    sub.add_argument("--area", default="")
    sub.add_argument("--category", default="")
    sub.add_argument("--rebate-bps", type=int, help="the merchant's own rebate rate, basis points (100 = 1%%)")
    command(merchant, "list", merchant_list, "the issuer's merchants")

    terminal = commands.add_parser("terminal", help="store, charging and event terminals").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    sub = command(terminal, "add", terminal_add, "register a terminal with its public key")
    sub.add_argument("terminal_id")
    sub.add_argument("--mode", required=True, choices=["store", "charger", "event"])
    sub.add_argument("--key", required=True, help="the terminal's Ed25519 public key, a PEM file")
    sub.add_argument("--merchant")
    sub.add_argument("--event")
    sub.add_argument("--replace-key", action="store_true", help="rotate the key of a registered terminal")
    command(terminal, "disable", terminal_status("disable"), "refuse the terminal's key").add_argument("terminal_id")
    command(terminal, "enable", terminal_status("enable"), "accept the terminal's key again").add_argument(
        "terminal_id")

    event = commands.add_parser("event", help="events that grant points on check-in").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    sub = command(event, "add", event_add, "register or update an event")
    sub.add_argument("event_id")
    sub.add_argument("--name", required=True)
    sub.add_argument("--points", required=True, type=int)
    sub.add_argument("--opens", required=True, help="RFC 3339 with offset, e.g. 2024-06-01T09:00:00+09:00")
    sub.add_argument("--closes", required=True)
    sub.add_argument("--validity-months", type=int)

    rate = commands.add_parser("rate", help="campaign periods' e-money rebate rates").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    sub = command(rate, "add", rate_add, "register a rebate rate for a period")
    sub.add_argument("rate_id")
    sub.add_argument("--bps", required=True, type=int, help="basis points (100 = 1%%)")
    sub.add_argument("--from", dest="starts_on", required=True, help="first day, YYYY-MM-DD")
    sub.add_argument("--to", dest="ends_on", required=True, help="last day, YYYY-MM-DD")
    sub.add_argument("--merchant", help="only this merchant (default: every merchant)")

    campaign = commands.add_parser("campaign", help="charge-reward campaigns").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    sub = command(campaign, "add", campaign_add, "create a campaign")
    sub.add_argument("campaign_id")
    sub.add_argument("--name", required=True)
    sub.add_argument("--rate-bps", required=True, type=int)
    sub.add_argument("--cap", required=True, type=int)
    sub.add_argument("--threshold", required=True, type=int)
    sub.add_argument("--grant-day", required=True, type=int)
    sub.add_argument("--from", dest="starts_on", required=True)
    sub.add_argument("--to", dest="ends_on", required=True)
    sub.add_argument("--exclude", action="append", default=[], help="a charge kind that does not count (repeatable)")
    sub.add_argument("--validity-months", type=int)
    command(campaign, "list", campaign_list, "the issuer's campaigns")
    sub = command(campaign, "enrol", campaign_enrol, "enrol a card from a date")
    sub.add_argument("campaign_id")
    sub.add_argument("card_number")
    sub.add_argument("--on", required=True, help="enrolment date, YYYY-MM-DD")

    sub = command(commands, "grant-list", grant_list, "admin grants (行政ポイント) from a CSV of card_number,points")
    sub.add_argument("file")
    sub.add_argument("--reason", required=True)
    sub.add_argument("--list-id", help="the list's id (default: the file's name); a list is granted once per card")

    report = commands.add_parser("report", help="the monthly reports (CSV)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    command(report, "list", report_list, "a month's report files").add_argument("month", help="YYYY-MM")
    sub = command(report, "get", report_get, "download a month's reports, byte for byte (UTF-8 with BOM)")
    sub.add_argument("month", help="YYYY-MM")
    sub.add_argument("names", nargs="*", metavar="NAME",
                     help="settlement, outstanding, expired, grants, campaigns, reconciliation (default: every file "
                          "of the month)")
    sub.add_argument("--out", default=".", help="the folder to write them in (default: the current one)")

    sub = command(commands, "import", import_file, "import a CSV file (at most 1,000 rows; larger files go to "
                  "the imports bucket); the result file is saved beside it as NAME.result.csv")
    sub.add_argument("kind", choices=IMPORT_KINDS)
    sub.add_argument("file")

    job = commands.add_parser("job", help="scheduled jobs").add_subparsers(dest="action", required=True,
                                                                            metavar="ACTION")
    command(job, "run", job_run, "run a job now for the issuer").add_argument(
        "name", choices=["expiry", "rebates", "campaigns", "dormancy", "reminders"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.api:
        print("error: give the API's URL with --api or CHIIKI_ADMIN_API", file=sys.stderr)
        return 2
    if not args.issuer:
        print("error: give the issuer with --issuer or CHIIKI_ADMIN_ISSUER", file=sys.stderr)
        return 2
    api = Api(args.api, args.issuer, args.region)
    try:
        outcome = args.run(api, args)
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    answer, show, *code = outcome  # a command may end with its own exit status
    print(json.dumps(answer, ensure_ascii=False, indent=2) if args.json else show(answer))
    return code[0] if code else 0


if __name__ == "__main__":
    sys.exit(main())
