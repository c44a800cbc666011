"""The signed terminal API (a Blueprint). Each route: authenticate, validate, call one
service function, return its result. Errors become JSON in chalicelib/http.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from chalice import Blueprint

from .. import services
from ..http import json_errors
from ..schemas import BodyInvalid, parse
from .domain import EMONEY_MAX_YEN, Operation
from .errors import AmountOverLimit, InvalidBody

if TYPE_CHECKING:
    from .service import Caller, TerminalService

bp = Blueprint(__name__)

PREFIX = "/api/terminal/v1"
# The bodies whose amount is capped at EMONEY_MAX_YEN by the schema: over it is a refused
# record (its own code, counted for the alarm), not a malformed body.
RECORDS = frozenset({"EmoneyPaymentRequest", "ChargeRequest"})


def signed_route(path: str, operation: Operation, schema: str):
    """Register a POST route whose request must carry a valid terminal signature."""

    def register(handler: Callable[[TerminalService, Caller, dict], dict]):
        def view() -> dict:
            request = bp.current_request
            raw = request.raw_body or b""
            terminals = services.terminals()
            caller = terminals.authenticate(
                method=request.method, path=PREFIX + path, headers=request.headers, body=raw, operation=operation
            )
            try:
                body = parse(schema, raw)
            except BodyInvalid as exc:
                if schema in RECORDS and exc.field == "data.amount" and exc.rule == "maximum":
                    refused = AmountOverLimit(EMONEY_MAX_YEN)
                    refused.terminal = caller.terminal.terminal_id
                    raise refused from exc
                raise InvalidBody(str(exc)) from exc
            return handler(terminals, caller, body)

        view.__name__ = handler.__name__
        bp.route(PREFIX + path, methods=["POST"], content_types=["application/json"])(json_errors(view))
        return handler

    return register


def instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise InvalidBody("times need a UTC offset")
    return value


@signed_route("/balance", Operation.BALANCE, "BalanceRequest")
def balance(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.balance(caller, body["idm"])


@signed_route("/point-payments", Operation.POINT_PAYMENT, "PointPaymentRequest")
def point_payment(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.point_payment(
        caller, request_id=body["request_id"], idm=body["idm"], amount=body["amount"],
        allow_shortfall=body.get("allow_shortfall", False),
    )


@signed_route("/point-payments/cancel", Operation.POINT_PAYMENT_CANCEL, "PointPaymentCancelRequest")
def point_payment_cancel(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.point_payment_cancel(
        caller, request_id=body["request_id"], idm=body["idm"], payment_request_id=body["payment_request_id"]
    )


@signed_route("/emoney-payments", Operation.EMONEY_PAYMENT, "EmoneyPaymentRequest")
def emoney_payment(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.emoney_payment(
        caller, request_id=body["request_id"], idm=body["idm"], amount=body["amount"],
        paid_at=instant(body["paid_at"]), card_seq=body["card_seq"],
    )


@signed_route("/emoney-payments/cancel", Operation.EMONEY_PAYMENT_CANCEL, "EmoneyPaymentCancelRequest")
def emoney_payment_cancel(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.emoney_payment_cancel(
        caller, request_id=body["request_id"], idm=body["idm"], card_seq=body["card_seq"]
    )


@signed_route("/charges", Operation.CHARGE, "ChargeRequest")
def charge(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.charge(
        caller, request_id=body["request_id"], idm=body["idm"], amount=body["amount"], kind=body["kind"],
        charged_at=instant(body["charged_at"]), card_seq=body["card_seq"],
    )


@signed_route("/checkins", Operation.CHECKIN, "CheckinRequest")
def checkin(terminals: TerminalService, caller: Caller, body: dict) -> dict:
    return terminals.checkin(caller, request_id=body["request_id"], idm=body["idm"])
