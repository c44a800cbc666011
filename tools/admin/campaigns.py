"""`campaign add|list|enrol`: charge-reward campaigns."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from tools.admin.parsing import command, group
from tools.admin.render import show_fields, show_rows
from tools.admin.transport import Api


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


def add_commands(commands) -> None:
    campaign = group(commands, "campaign", "charge-reward campaigns")
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
