"""The operators' admin API (a Blueprint). Every route is IAM-authorized: API Gateway
checks the caller's SigV4 signature and IAM policy before the function runs, and the
principal it authorized is the operator every change names. Each route: parse the
body, call one service function, return its result. Errors become JSON in
chalicelib/http.py.

Card numbers travel in request bodies, never in paths, so that access logs of the API
hold no card number. The issuer is in the path, so an IAM policy can scope an operator
to one issuer (execute-api:Invoke on .../api/admin/v1/issuers/<issuer>/*)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from chalice import Blueprint

from .. import services
from ..admin_http import IAM, operator_of
from ..http import json_errors
from ..schemas import BodyInvalid, parse
from . import domain
from .errors import InvalidBody

if TYPE_CHECKING:
    from .service import Operator, Operators

bp = Blueprint(__name__)

PREFIX = "/api/admin/v1/issuers/{issuer_id}"


def admin_route(path: str, method: str = "POST", schema: str | None = None):
    """Register an IAM-authorized route; the handler gets the service, the operator and
    the validated body (None for a read), then the path's other parameters."""

    def register(handler: Callable[..., object]):
        def view(issuer_id: str, **params: str) -> object:
            from .service import Operator

            request = bp.current_request
            arn = operator_of(request)
            body = None
            if schema is not None:
                try:
                    body = parse(schema, request.raw_body or b"{}")
                except BodyInvalid as exc:
                    raise InvalidBody(str(exc)) from exc
            return handler(services.operators(), Operator(arn, issuer_id), body, **params)

        view.__name__ = handler.__name__
        bp.route(PREFIX + path, methods=[method], authorizer=IAM, content_types=["application/json"])(
            json_errors(view)
        )
        return handler

    return register


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidBody(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidBody(f"{text!r} is not a time (RFC 3339)") from exc
    if value.tzinfo is None:
        raise InvalidBody("times need a UTC offset")
    return value


# -- cards -------------------------------------------------------------------------------


@admin_route("/cards/lookup", schema="AdminCardLookup")
def card_lookup(ops: Operators, op: Operator, body: dict) -> dict:
    return ops.card(op, body["card_number"])


@admin_route("/cards/return", schema="AdminCardReturn")
def card_return(ops: Operators, op: Operator, body: dict) -> dict:
    return ops.return_card(op, body["card_number"], request_id=body["request_id"],
                           reason=domain.ReturnReason(body["reason"]), note=body.get("note", ""))


@admin_route("/cards/reissue", schema="AdminCardReissue")
def card_reissue(ops: Operators, op: Operator, body: dict) -> dict:
    return ops.reissue(op, body["card_number"], request_id=body["request_id"], new_card_number=body["new_card_number"],
                       new_idm=body["new_idm"], note=body.get("note", ""))


@admin_route("/cards/void", schema="AdminCardVoid")
def card_void(ops: Operators, op: Operator, body: dict) -> dict:
    return ops.void_card(op, body["card_number"], request_id=body["request_id"], note=body["note"],
                         close=body.get("close", False))


# -- the issuer's settings ---------------------------------------------------------------


@admin_route("/settings", "GET")
def settings_show(ops: Operators, op: Operator, body: None) -> dict:
    return ops.settings(op)


@admin_route("/settings", schema="AdminSettings")
def settings_change(ops: Operators, op: Operator, body: dict) -> dict:
    if "closures" in body:
        body = {**body, "closures": [_day(text) for text in body["closures"]]}
    return ops.change_settings(op, body)


# -- registry ----------------------------------------------------------------------------


@admin_route("/merchants", "GET")
def merchant_list(ops: Operators, op: Operator, body: None) -> dict:
    return {"merchants": ops.merchants(op)}


@admin_route("/merchants", schema="AdminMerchant")
def merchant_register(ops: Operators, op: Operator, body: dict) -> dict:
    from ..terminals.domain import Merchant

    return ops.register_merchant(op, Merchant(issuer=op.issuer, **body))


@admin_route("/terminals", schema="AdminTerminal")
def terminal_register(ops: Operators, op: Operator, body: dict) -> dict:
    from ..terminals.domain import Mode, Terminal

    replace_key = body.pop("replace_key", False)
    terminal = Terminal(issuer=op.issuer, **{**body, "mode": Mode(body["mode"])})
    return ops.register_terminal(op, terminal, replace_key=replace_key)


@admin_route("/terminals/{terminal_id}/disable")
def terminal_disable(ops: Operators, op: Operator, body: None, terminal_id: str) -> dict:
    from ..terminals.domain import TerminalStatus

    return ops.set_terminal_status(op, terminal_id, TerminalStatus.DISABLED)


@admin_route("/terminals/{terminal_id}/enable")
def terminal_enable(ops: Operators, op: Operator, body: None, terminal_id: str) -> dict:
    from ..terminals.domain import TerminalStatus

    return ops.set_terminal_status(op, terminal_id, TerminalStatus.ACTIVE)


@admin_route("/events", schema="AdminEvent")
def event_register(ops: Operators, op: Operator, body: dict) -> dict:
    from ..terminals.domain import Event

    times = {"opens_at": _instant(body["opens_at"]), "closes_at": _instant(body["closes_at"])}
    return ops.register_event(op, Event(issuer=op.issuer, **{**body, **times}))


@admin_route("/rebate-rates", schema="AdminRebateRate")
def rebate_rate_register(ops: Operators, op: Operator, body: dict) -> dict:
    from ..rebates.domain import RebateRate

    days = {"starts_on": _day(body["starts_on"]), "ends_on": _day(body["ends_on"])}
    return ops.register_rebate_rate(op, RebateRate(issuer=op.issuer, **{**body, **days}))


@admin_route("/campaigns", "GET")
def campaign_list(ops: Operators, op: Operator, body: None) -> dict:
    return {"campaigns": ops.campaign_list(op)}


@admin_route("/campaigns", schema="AdminCampaign")
def campaign_create(ops: Operators, op: Operator, body: dict) -> dict:
    from ..campaigns.domain import Campaign

    fields = {"starts_on": _day(body["starts_on"]), "ends_on": _day(body["ends_on"]),
              "excluded_kinds": frozenset(body.get("excluded_kinds", ()))}
    return ops.create_campaign(op, Campaign(issuer=op.issuer, **{**body, **fields}))


@admin_route("/campaigns/{campaign_id}/enrolments", schema="AdminEnrolment")
def campaign_enrol(ops: Operators, op: Operator, body: dict, campaign_id: str) -> dict:
    return ops.enrol(op, campaign_id, body["card_number"], _day(body["enrolled_on"]))


# -- grants and jobs ---------------------------------------------------------------------


@admin_route("/grant-lists", schema="AdminGrantList")
def grant_list(ops: Operators, op: Operator, body: dict) -> dict:
    from .grants import GrantRow

    rows = [GrantRow(row["card_number"], row["points"]) for row in body["rows"]]
    return ops.grant_list(op, body["list_id"], rows, reason=body["reason"])


@admin_route("/jobs/{job}/run")
def job_run(ops: Operators, op: Operator, body: None, job: str) -> dict:
    return ops.run_job(op, job)
