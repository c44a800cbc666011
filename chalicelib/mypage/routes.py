"""The MyPage API (a Blueprint) for the resident PWA. Each route: read the session (and,
for a change, its CSRF token), validate the body, call one service function."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from chalice import Blueprint, Response

from .. import services
from ..http import json_errors
from ..schemas import BodyInvalid, parse
from .errors import InvalidInput

bp = Blueprint(__name__)

PREFIX = "/api/mypage/v1"
COOKIE = "session"
SESSION_MAX_AGE = 12 * 3600


def _body(schema: str) -> dict:
    try:
        return parse(schema, bp.current_request.raw_body)
    except BodyInvalid as exc:
        raise InvalidInput() from exc


def _cookie() -> str | None:
    for part in (bp.current_request.headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def _session(*, changing: bool):
    request = bp.current_request
    return services.mypage().authenticate(_cookie(), request.headers.get("x-csrf-token"), changing=changing)


def _set_cookie(value: str, max_age: int) -> str:
    secure = "; Secure" if services.settings().secure_cookies else ""
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"


def _logged_in(result, status: int = 200) -> Response:
    return Response(body={"csrf_token": result.csrf_token}, status_code=status,
                    headers={"Set-Cookie": _set_cookie(result.cookie, SESSION_MAX_AGE), "Cache-Control": "no-store"})


def _source_ip() -> str:
    """The resident's address, which the login and code limits count by. Behind CloudFront the
    caller API Gateway sees is a CloudFront edge, and the resident's address comes in
    CloudFront-Viewer-Address; that header is believed only from CloudFront (it carries
    the origin key), since anyone calling API Gateway directly could write any address."""
    request = bp.current_request
    viewer = request.headers.get("cloudfront-viewer-address")
    key = services.origin_key()  # the stage secret's, read at run time (cached)
    if viewer and key and hmac.compare_digest(request.headers.get("x-chiiki-origin", "").encode(), key):
        return viewer.rsplit(":", 1)[0]
    return request.context.get("identity", {}).get("sourceIp") or "unknown"


def route(path: str, method: str = "GET") -> Callable:
    def register(view: Callable) -> Callable:
        bp.route(PREFIX + path, methods=[method], content_types=["application/json"])(
            json_errors(view, japanese=True))
        return view

    return register


NO_CONTENT = Response(body="", status_code=204)


@route("/signup/start", "POST")
def signup_start():
    services.mypage().start_signup(_body("EmailRequest")["email"], _source_ip())
    return Response(body={"status": "sent"}, status_code=202)


@route("/signup/verify", "POST")
def signup_verify():
    body = _body("CodeRequest")
    return {"signup_token": services.mypage().verify_signup(body["email"], body["code"], _source_ip())}


@route("/signup/complete", "POST")
def signup_complete():
    body = _body("SignupCompleteRequest")
    result = services.mypage().complete_signup(body["signup_token"], body["card_number"], body["birth_date"],
                                               body["password"])
    return _logged_in(result, 201)


@route("/login", "POST")
def login():
    body = _body("LoginRequest")
    return _logged_in(services.mypage().login(body["email"], body["password"], _source_ip()))


@route("/logout", "POST")
def logout():
    services.mypage().logout(_session(changing=True))
    return Response(body="", status_code=204, headers={"Set-Cookie": _set_cookie("", 0)})


@route("/session")
def session():
    mypage = services.mypage()
    member = mypage.member(_session(changing=False))
    issuer = mypage.ledger.issuer(mypage.issuer_id)
    return {"csrf_token": mypage.csrf_for(_cookie()), "email": member.email, "point_name": issuer.point_name,
            "expiry_reminders": member.expiry_reminders}


@route("/cards")
def cards():
    return {"cards": services.mypage().cards(_session(changing=False))}


@route("/cards", "POST")
def link_card():
    body = _body("LinkCardRequest")
    card_id = services.mypage().link_card(_session(changing=True), body["card_number"], body["birth_date"])
    return Response(body={"card_id": card_id}, status_code=201)


@route("/cards/{card_id}")
def card(card_id: str):
    return services.mypage().card(_session(changing=False), card_id)


@route("/cards/{card_id}", "DELETE")
def unlink_card(card_id: str):
    services.mypage().unlink_card(_session(changing=True), card_id)
    return NO_CONTENT


@route("/cards/{card_id}/history")
def history(card_id: str):
    params = bp.current_request.query_params or {}
    return services.mypage().history(_session(changing=False), card_id, params.get("cursor"))


@route("/stores")
def stores():
    _session(changing=False)
    return {"stores": services.mypage().stores()}


@route("/preferences", "PUT")
def preferences():
    body = _body("PreferencesRequest")
    services.mypage().set_reminders(_session(changing=True), body["expiry_reminders"])
    return {"expiry_reminders": body["expiry_reminders"]}


@route("/password", "POST")
def password():
    body = _body("PasswordChangeRequest")
    services.mypage().change_password(_session(changing=True), body["current_password"], body["new_password"])
    return NO_CONTENT


@route("/password-reset/start", "POST")
def reset_start():
    services.mypage().start_reset(_body("EmailRequest")["email"], _source_ip())
    return Response(body={"status": "sent"}, status_code=202)


@route("/password-reset/complete", "POST")
def reset_complete():
    body = _body("ResetCompleteRequest")
    services.mypage().complete_reset(body["email"], body["code"], body["new_password"], _source_ip())
    return NO_CONTENT


@route("/withdraw", "POST")
def withdraw():
    services.mypage().withdraw(_session(changing=True), _body("WithdrawRequest")["password"])
    return Response(body="", status_code=204, headers={"Set-Cookie": _set_cookie("", 0)})
