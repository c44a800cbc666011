"""The MyPage API through chalice.test.Client on moto (DynamoDB and SES): signup by
e-mail code, limits at their edges, sessions, CSRF, linked cards and what a member may
see, preferences, password change and reset, withdrawal, and logs free of personal data."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from chalicelib.ledger.domain import Actor, Source
from chalicelib.mypage import domain

P = "/api/mypage/v1"
EMAIL = "hanako@example.jp"
CARD = {"idm": "0123456789abcdef", "number": "JW123456789012345", "birth": "1948-03-15"}
FAMILY = {"idm": "0123456789abcd00", "number": "JW123456789012300", "birth": "1975-07-07"}
JSON = {"Content-Type": "application/json"}
ORIGIN_KEY = "what-cloudfront-sends"


@pytest.fixture(autouse=True)
def behind_cloudfront(monkeypatch):
    """The API as deployed: CloudFront in front, sending the origin key."""
    from dataclasses import replace

    from chalicelib import services

    settings = replace(services.settings(), origin_key=ORIGIN_KEY.encode())
    monkeypatch.setattr(services, "settings", lambda: settings)


@pytest.fixture
def cards(api, ledger):
    for card, points in ((CARD, 5000), (FAMILY, 1200)):
        ledger.open_card(idm=card["idm"], card_number=card["number"], issuer_id="niimi", birth_date=card["birth"])
        ledger.grant(
            card["idm"],
            points,
            request_id=f"import:{card['idm']}",
            actor=Actor("operator", "ops"),
            source=Source.INITIAL,
        )
    return ledger


class Browser:
    """A resident's browser: keeps the session cookie and the CSRF token."""

    def __init__(self, api, ip: str = "203.0.113.7", origin_key: str = ORIGIN_KEY) -> None:
        self.api = api
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.ip = ip
        self.origin_key = origin_key  # what CloudFront adds; "" for a call around it

    def call(self, method: str, path: str, body: dict | None = None, *, csrf: bool = True):
        headers = dict(JSON)
        if self.cookie:
            headers["Cookie"] = f"session={self.cookie}"
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        headers["CloudFront-Viewer-Address"] = f"{self.ip}:443"
        if self.origin_key:
            headers["X-Chiiki-Origin"] = self.origin_key
        response = self.api.http.request(
            method, P + path, headers=headers, body=json.dumps(body) if body is not None else b""
        )
        set_cookie = {k.lower(): v for k, v in response.headers.items()}.get("set-cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";")[0].split("=", 1)[1] or None
        answer = json.loads(response.body) if response.body else None
        if isinstance(answer, dict) and "csrf_token" in answer:
            self.csrf = answer["csrf_token"]
        if set_cookie:
            self.last_set_cookie = set_cookie
        return response.status_code, answer


def sign_up(api, outbox, email=EMAIL, card=CARD, password="correct horse 1") -> Browser:
    b = Browser(api)
    assert b.call("POST", "/signup/start", {"email": email})[0] == 202
    status, answer = b.call("POST", "/signup/verify", {"email": email, "code": outbox.code_for(email)})
    assert status == 200, answer
    status, answer = b.call(
        "POST",
        "/signup/complete",
        {
            "signup_token": answer["signup_token"],
            "card_number": card["number"],
            "birth_date": card["birth"],
            "password": password,
        },
    )
    assert status == 201, answer
    return b


# -- signup ------------------------------------------------------------------------------


def test_signup_by_code_then_the_card_shows_its_balance_and_expiry(api, cards, outbox):
    b = sign_up(api, outbox)
    assert "HttpOnly" in b.last_set_cookie and "Secure" in b.last_set_cookie and "SameSite=Strict" in b.last_set_cookie
    status, me = b.call("GET", "/session")
    assert (status, me["email"], me["point_name"]) == (200, EMAIL, "にーみんポイント")
    status, listing = b.call("GET", "/cards")
    (card,) = listing["cards"]
    assert (card["balance"], card["card_number_masked"]) == (5000, "JW••••••••••••345")
    status, detail = b.call("GET", f"/cards/{card['card_id']}")
    assert detail["balance"] == 5000
    assert detail["lots"][0]["points"] == 5000 and detail["lots"][0]["expires_on"] > detail["as_of"]
    assert detail["expiring_soon"]["points"] == 0


def test_the_answer_is_the_same_for_known_and_unknown_addresses(api, cards, outbox):
    sign_up(api, outbox)
    known = Browser(api).call("POST", "/signup/start", {"email": EMAIL})
    unknown = Browser(api).call("POST", "/signup/start", {"email": "someone@example.jp"})
    assert known == unknown == (202, {"status": "sent"})
    assert "登録済み" in outbox.last_to(EMAIL).body  # the registered address is told, with no code
    assert Browser(api).call("POST", "/password-reset/start", {"email": "nobody@example.jp"}) == (
        202,
        {"status": "sent"},
    )
    assert Browser(api).call("POST", "/password-reset/start", {"email": EMAIL}) == (202, {"status": "sent"})


def test_the_fifth_try_of_a_code_is_allowed(api, cards, outbox):
    b = Browser(api)
    b.call("POST", "/signup/start", {"email": EMAIL})
    right = outbox.code_for(EMAIL)
    wrong = f"{(int(right) + 1) % 10000:04d}"
    for tries_left in (4, 3, 2, 1):
        status, answer = b.call("POST", "/signup/verify", {"email": EMAIL, "code": wrong})
        assert (status, answer["code"]) == (400, "code_invalid")
        assert f"あと{tries_left}回" in answer["message"]
    assert b.call("POST", "/signup/verify", {"email": EMAIL, "code": right})[0] == 200


def test_the_sixth_try_is_refused_even_with_the_right_code(api, cards, outbox):
    b = Browser(api)
    b.call("POST", "/signup/start", {"email": EMAIL})
    right = outbox.code_for(EMAIL)
    wrong = f"{(int(right) + 1) % 10000:04d}"
    for _ in range(5):
        assert b.call("POST", "/signup/verify", {"email": EMAIL, "code": wrong})[0] == 400
    status, answer = b.call("POST", "/signup/verify", {"email": EMAIL, "code": right})
    assert (status, answer["code"]) == (429, "too_many_attempts")


def test_a_code_lasts_ten_minutes(api, cards, outbox, clock):
    b = Browser(api)
    b.call("POST", "/signup/start", {"email": EMAIL})
    clock.advance(minutes=10, seconds=1)
    status, answer = b.call("POST", "/signup/verify", {"email": EMAIL, "code": outbox.code_for(EMAIL)})
    assert (status, answer["code"]) == (400, "code_invalid")


def test_five_codes_an_hour_per_address_and_the_sixth_is_refused(api, cards, outbox, clock):
    b = Browser(api)
    for _ in range(5):
        assert b.call("POST", "/signup/start", {"email": EMAIL})[0] == 202
    status, answer = b.call("POST", "/signup/start", {"email": EMAIL})
    assert (status, answer["code"]) == (429, "too_many_attempts")
    assert len([m for m in outbox.messages() if EMAIL in m.destinations["ToAddresses"]]) == 5
    clock.advance(hours=1, seconds=1)
    assert b.call("POST", "/signup/start", {"email": EMAIL})[0] == 202


def test_codes_and_addresses_are_stored_only_as_keyed_hashes(api, cards, outbox, store):
    Browser(api).call("POST", "/signup/start", {"email": EMAIL})
    code = outbox.code_for(EMAIL)
    client = store.table.connection.client
    items = client.scan(TableName=store.table.name)["Items"]
    stored = json.dumps(items, ensure_ascii=False)
    assert EMAIL not in stored
    code_items = [i for i in items if i["pk"]["S"].startswith("CODE#")]
    assert code_items and all(code not in json.dumps(i) for i in code_items)


def test_signup_needs_the_matching_birth_date_and_a_good_password(api, cards, outbox):
    b = Browser(api)
    b.call("POST", "/signup/start", {"email": EMAIL})
    token = b.call("POST", "/signup/verify", {"email": EMAIL, "code": outbox.code_for(EMAIL)})[1]["signup_token"]
    status, answer = b.call(
        "POST",
        "/signup/complete",
        {"signup_token": token, "card_number": CARD["number"], "birth_date": "1948-03-16", "password": "long enough"},
    )
    assert (status, answer["code"]) == (400, "card_mismatch")
    status, answer = b.call(
        "POST",
        "/signup/complete",
        {"signup_token": token, "card_number": CARD["number"], "birth_date": CARD["birth"], "password": "short"},
    )
    assert (status, answer["code"]) == (400, "weak_password")
    assert (
        b.call(
            "POST",
            "/signup/complete",
            {"signup_token": token, "card_number": CARD["number"], "birth_date": CARD["birth"], "password": "sorairo8"},
        )[0]
        == 201
    )
    status, answer = Browser(api).call(
        "POST",
        "/signup/complete",
        {"signup_token": token, "card_number": CARD["number"], "birth_date": CARD["birth"], "password": "komorebi 9"},
    )
    assert (status, answer["code"]) == (400, "signup_expired")  # a token finishes one signup


# -- login and sessions -------------------------------------------------------------------


def test_login_failures_from_one_source_make_that_source_wait(api, cards, outbox):
    sign_up(api, outbox)
    b = Browser(api)
    for _ in range(domain.LOGIN_FREE_FAILURES):
        assert b.call("POST", "/login", {"email": EMAIL, "password": "wrong password"})[0] == 401
    status, answer = b.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})
    assert (status, answer["code"]) == (429, "too_many_attempts")


def test_login_is_throttled_per_source_ip(api, cards, outbox, monkeypatch):
    sign_up(api, outbox)
    monkeypatch.setattr(domain, "LOGIN_FAILURES_PER_IP", 3)  # the same rule with a smaller number
    b = Browser(api, ip="198.51.100.9")
    for i in range(3):
        assert b.call("POST", "/login", {"email": f"guess{i}@example.jp", "password": "x" * 8})[0] == 401
    assert b.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})[0] == 429
    assert (
        Browser(api, ip="192.0.2.1").call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})[0] == 200
    )


def test_an_address_written_by_a_caller_going_around_cloudfront_is_not_believed(api, cards, outbox, monkeypatch):
    sign_up(api, outbox)
    monkeypatch.setattr(domain, "LOGIN_FAILURES_PER_IP", 3)
    for i, key in enumerate(("", "a-guess", "", "")):  # a new address each time, never the origin key
        b = Browser(api, ip=f"198.51.100.{i + 1}", origin_key=key)
        status = b.call("POST", "/login", {"email": f"guess{i}@example.jp", "password": "x" * 8})[0]
        assert status == (401 if i < 3 else 429)  # counted against the one address API Gateway saw
    resident = Browser(api, ip="192.0.2.1")  # through CloudFront: its own address
    assert resident.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})[0] == 200


def test_sessions_end_after_30_idle_minutes_or_12_hours(api, cards, outbox, clock):
    b = sign_up(api, outbox)
    clock.advance(minutes=29)
    assert b.call("GET", "/session")[0] == 200  # activity moves the idle deadline
    clock.advance(minutes=29)
    assert b.call("GET", "/session")[0] == 200
    clock.advance(minutes=31)
    assert b.call("GET", "/session")[0] == 401

    b = Browser(api)
    assert b.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})[0] == 200
    for _ in range(12 * 3):
        clock.advance(minutes=20)
        status = b.call("GET", "/session")[0]
    assert status == 401  # active all along, but 12 hours have passed


def test_logout_ends_the_session(api, cards, outbox):
    b = sign_up(api, outbox)
    cookie = b.cookie
    assert b.call("POST", "/logout")[0] == 204
    b.cookie = cookie  # a copy of the cookie kept from before does not open the session again
    assert b.call("GET", "/session")[0] == 401


def test_every_change_needs_the_csrf_token(api, cards, outbox):
    b = sign_up(api, outbox)
    token = b.csrf
    for method, path, body in [
        ("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]}),
        ("PUT", "/preferences", {"expiry_reminders": False}),
        ("POST", "/logout", None),
    ]:
        status, answer = b.call(method, path, body, csrf=False)
        assert (status, answer["code"]) == (403, "csrf_failed")
        b.csrf = "0" * 64
        assert b.call(method, path, body)[0] == 403
        b.csrf = token


# -- linked cards ---------------------------------------------------------------------------


def test_family_cards_link_and_unlink(api, cards, outbox):
    b = sign_up(api, outbox)
    status, answer = b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})
    assert status == 201
    assert sorted(c["balance"] for c in b.call("GET", "/cards")[1]["cards"]) == [1200, 5000]
    assert b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})[0] == 409
    assert b.call("DELETE", f"/cards/{answer['card_id']}")[0] == 204
    assert [c["balance"] for c in b.call("GET", "/cards")[1]["cards"]] == [5000]
    assert cards.balance(FAMILY["idm"]).balance == 1200  # unlinking leaves the points alone


def test_five_failed_links_lock_linking_for_the_day(api, cards, outbox, clock):
    b = sign_up(api, outbox)
    for _ in range(5):
        status, answer = b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": "2000-01-01"})
        assert (status, answer["code"]) == (400, "card_mismatch")
    status, answer = b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})
    assert (status, answer["code"]) == (429, "link_locked")
    clock.advance(days=1)
    b.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})
    assert b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})[0] == 201


def test_a_member_cannot_see_a_card_she_has_not_linked(api, cards, outbox):
    hanako = sign_up(api, outbox)
    taro = sign_up(api, outbox, email="taro@example.jp", card=FAMILY)
    hanako_card = hanako.call("GET", "/cards")[1]["cards"][0]["card_id"]
    for path in (f"/cards/{hanako_card}", f"/cards/{hanako_card}/history"):
        status, answer = taro.call("GET", path)
        assert (status, answer["code"]) == (404, "card_not_found")
    assert taro.call("DELETE", f"/cards/{hanako_card}")[0] == 404
    for guess in (CARD["idm"], CARD["number"], "1", "../cards", hanako_card[:-1] + "x"):
        status, answer = taro.call("GET", f"/cards/{guess}")
        assert status in (400, 403, 404) and "balance" not in (answer or {})
    assert Browser(api).call("GET", f"/cards/{hanako_card}")[0] == 401
    assert hanako.call("GET", f"/cards/{hanako_card}")[0] == 200


def test_history_after_a_point_payment_newest_first_with_a_cursor(api, cards, outbox, terminal_service):
    from tests.terminals import register_demo

    b = sign_up(api, outbox)
    card_id = b.call("GET", "/cards")[1]["cards"][0]["card_id"]
    till = register_demo(terminal_service, api)["store"]
    for i in range(3):
        till.post("/api/terminal/v1/point-payments", {"request_id": f"p{i}", "idm": CARD["idm"], "amount": 100})
    status, page = b.call("GET", f"/cards/{card_id}/history")
    assert status == 200
    assert [e["points"] for e in page["entries"]] == [-100, -100, -100, 5000]
    assert page["entries"][0]["label"] == "ポイント利用（新見精肉店）"
    assert page["entries"][-1]["label"] == "ポイント付与（カード発行）"
    assert b.call("GET", f"/cards/{card_id}")[1]["balance"] == 4700


def test_history_pages(api, cards, outbox, mypage_service):
    b = sign_up(api, outbox)
    card_id = b.call("GET", "/cards")[1]["cards"][0]["card_id"]
    for i in range(25):
        cards.grant(CARD["idm"], 1, request_id=f"g{i}", actor=Actor("job", "x"), source=Source.EVENT)
    status, first = b.call("GET", f"/cards/{card_id}/history")
    assert len(first["entries"]) == 20 and first["next_cursor"]
    status, second = b.call("GET", f"/cards/{card_id}/history?cursor={first['next_cursor']}")
    assert len(second["entries"]) == 6 and second["next_cursor"] is None
    assert b.call("GET", f"/cards/{card_id}/history?cursor=abc")[0] == 400


def test_history_pages_read_the_merchant_directory_once_while_warm(api, cards, outbox, terminal_service):
    """Two history pages: the directory (a query of the issuer's merchants) is read for the
    first only, from then on the terminals' TTL cache answers; each page is its session,
    its link and its entries."""
    from tests.terminals import register_demo

    b = sign_up(api, outbox)
    card_id = b.call("GET", "/cards")[1]["cards"][0]["card_id"]
    register_demo(terminal_service, api)  # a merchant in the directory
    calls: list[tuple[str, str]] = []
    events = cards.store.connection.client.meta.events

    def counted(model, params, **_):
        calls.append((model.name, str(params.get("body", ""))))  # the request as sent

    events.register("before-call.dynamodb", counted, unique_id="history-calls")
    try:
        pages = []
        for _ in range(2):
            calls.clear()
            assert b.call("GET", f"/cards/{card_id}/history")[0] == 200
            pages.append(list(calls))
    finally:
        events.unregister("before-call.dynamodb", unique_id="history-calls")
    directory = [c for page in pages for c in page if "MERCHANTS#" in c[1]]
    assert len(directory) == 1 and directory[0] in pages[0]
    assert len(pages[1]) == len(pages[0]) - 1 <= 3, pages


def test_points_expiring_within_30_days_are_shown(api, cards, outbox, clock):
    b = sign_up(api, outbox)
    card_id = b.call("GET", "/cards")[1]["cards"][0]["card_id"]
    clock.advance(days=160)  # the 6-month lot now expires within 30 days
    b.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})
    detail = b.call("GET", f"/cards/{card_id}")[1]
    assert detail["expiring_soon"]["points"] == 5000
    assert b.call("GET", "/cards")[1]["cards"][0]["expiring_soon"] == 5000


def test_store_directory(api, cards, outbox, terminal_service):
    from tests.terminals import register_demo

    register_demo(terminal_service, api)
    b = sign_up(api, outbox)
    stores = b.call("GET", "/stores")[1]["stores"]
    assert {s["name"] for s in stores} == {"新見精肉店", "まんなか書店"}  # Niimi's only
    assert all(set(s) == {"name", "area", "category"} for s in stores)


# -- account ---------------------------------------------------------------------------------


def test_preferences_password_change_and_reset(api, cards, outbox):
    b = sign_up(api, outbox)
    other = Browser(api)
    other.call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})
    assert b.call("PUT", "/preferences", {"expiry_reminders": False}) == (200, {"expiry_reminders": False})
    assert b.call("GET", "/session")[1]["expiry_reminders"] is False
    status, answer = b.call("POST", "/password", {"current_password": "nope nope", "new_password": "new secret 2"})
    assert (status, answer["code"]) == (401, "login_failed")
    assert (
        b.call("POST", "/password", {"current_password": "correct horse 1", "new_password": "new secret 2"})[0] == 204
    )
    assert b.call("GET", "/session")[0] == 200  # this session stays
    assert other.call("GET", "/session")[0] == 401  # every other session ends

    r = Browser(api)
    assert r.call("POST", "/password-reset/start", {"email": EMAIL})[0] == 202
    code = outbox.code_for(EMAIL)
    assert (
        r.call("POST", "/password-reset/complete", {"email": EMAIL, "code": code, "new_password": "third one 3"})[0]
        == 204
    )
    assert b.call("GET", "/session")[0] == 401
    assert r.call("POST", "/login", {"email": EMAIL, "password": "third one 3"})[0] == 200


def test_withdrawal_unlinks_cards_and_leaves_the_points(api, cards, outbox):
    b = sign_up(api, outbox)
    status, answer = b.call("POST", "/withdraw", {"password": "wrong one!"})
    assert status == 401
    assert b.call("POST", "/withdraw", {"password": "correct horse 1"})[0] == 204
    assert b.call("GET", "/cards")[0] == 401
    assert Browser(api).call("POST", "/login", {"email": EMAIL, "password": "correct horse 1"})[0] == 401
    assert cards.balance(CARD["idm"]).balance == 5000
    sign_up(api, outbox)  # the address and the card can sign up again


def test_no_personal_data_in_any_log_line(api, cards, outbox, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    b = sign_up(api, outbox)
    Browser(api).call("POST", "/login", {"email": EMAIL, "password": "wrong password"})
    b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": "1999-09-09"})
    b.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})
    card_id = b.call("GET", "/cards")[1]["cards"][0]["card_id"]
    b.call("GET", f"/cards/{card_id}/history")
    captured = capsys.readouterr()
    logs = "\n".join([r.getMessage() + " " + json.dumps(r.__dict__, default=str) for r in caplog.records])
    logs += captured.out + captured.err
    assert "code sent" in logs and "login failed" in logs  # the log is there to be read
    for secret in (
        EMAIL,
        "hanako",
        CARD["birth"],
        FAMILY["birth"],
        "1999-09-09",
        CARD["number"],
        FAMILY["number"],
        CARD["idm"],
        FAMILY["idm"],
    ):
        assert secret not in logs, secret


def test_session_timeouts_are_the_documented_ones():
    assert domain.SESSION_IDLE == timedelta(minutes=30) and domain.SESSION_MAX == timedelta(hours=12)
