"""`settings show|set`: the issuer's settings."""

from __future__ import annotations

import argparse
from typing import Any

from tools.admin.parsing import command, group
from tools.admin.render import show_fields
from tools.admin.transport import Api, Failed


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


def add_commands(commands) -> None:
    settings = group(commands, "settings", "the issuer's settings")
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
