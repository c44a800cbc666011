"""`merchant`, `terminal`, `event` and `rate`: what the issuer registers for its stores,
terminals, events and rebate rates."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tools.admin.parsing import command, group
from tools.admin.render import show_fields, show_rows
from tools.admin.transport import Api, Failed


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


def add_commands(commands) -> None:
    merchant = group(commands, "merchant", "member stores")
    sub = command(merchant, "add", merchant_add, "register or update a merchant")
    sub.add_argument("merchant_id")
    sub.add_argument("--name", required=True)
    sub.add_argument("--area", default="")
    sub.add_argument("--category", default="")
    sub.add_argument("--rebate-bps", type=int, help="the merchant's own rebate rate, basis points (100 = 1%%)")
    command(merchant, "list", merchant_list, "the issuer's merchants")

    terminal = group(commands, "terminal", "store, charging and event terminals")
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

    event = group(commands, "event", "events that grant points on check-in")
    sub = command(event, "add", event_add, "register or update an event")
    sub.add_argument("event_id")
    sub.add_argument("--name", required=True)
    sub.add_argument("--points", required=True, type=int)
    sub.add_argument("--opens", required=True, help="RFC 3339 with offset, e.g. 2024-06-01T09:00:00+09:00")
    sub.add_argument("--closes", required=True)
    sub.add_argument("--validity-months", type=int)

    rate = group(commands, "rate", "campaign periods' e-money rebate rates")
    sub = command(rate, "add", rate_add, "register a rebate rate for a period")
    sub.add_argument("rate_id")
    sub.add_argument("--bps", required=True, type=int, help="basis points (100 = 1%%)")
    sub.add_argument("--from", dest="starts_on", required=True, help="first day, YYYY-MM-DD")
    sub.add_argument("--to", dest="ends_on", required=True, help="last day, YYYY-MM-DD")
    sub.add_argument("--merchant", help="only this merchant (default: every merchant)")
