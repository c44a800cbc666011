"""`card show|return|reissue|void`. Changes carry a request id (a new one unless
--request-id is given): when an answer is lost, the same id makes the change once."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from tools.admin.parsing import command, group
from tools.admin.render import show_card, show_fields
from tools.admin.transport import Api


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


def changing(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--request-id", help="repeat a change whose answer was lost (printed by the first try)")


def add_commands(commands) -> None:
    card = group(commands, "card", "look up, return, reissue or void a card")
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
