"""Every bad input is a 4xx with a stable code and writes nothing (SPEC §7, issue 12
item 7): JSON bodies too large or nested too deep on every route that reads one
(MyPage, terminal, admin), terminal nonces and request ids out of bounds, a signature
whose `expires` has passed, MyPage history cursors that are not 1-10 ASCII digits.
Each test ends with the ledger invariants checked (the `ledger` fixture)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib import schemas
from chalicelib.ledger.domain import Actor, Source
from tests.members import PASSWORD, sign_up
from tests.operators import ARN, AdminClient, operators, with_identity  # noqa: F401  (fixtures)
from tests.terminals import register_demo

# chalice's local gateway warns that it checks no IAM: with_identity stands in for it
pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

V1 = "/api/terminal/v1"
MYPAGE = "/api/mypage/v1"
IDM, NUMBER, BIRTH = "0123456789abcdef", "JW123456789012345", "1948-03-15"
JSON = {"Content-Type": "application/json"}
JAPANESE = {"body_too_large": "送信された内容が大きすぎます。",
            "body_too_deep": "送信された内容の形式が正しくありません。"}


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def padded(body: dict, size: int) -> bytes:
    """`body` with a padding field that brings it to `size` bytes."""
    raw = json.dumps({**body, "pad": ""}).encode()
    return json.dumps({**body, "pad": "x" * (size - len(raw))}).encode()


@pytest.fixture
def card(ledger):
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi", birth_date=BIRTH)
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    return IDM


@pytest.fixture
def tills(api, terminal_service, card):
    return register_demo(terminal_service, api)


def entries(ledger) -> int:
    return ledger.card(IDM).seq


def nonces(ledger) -> int:
    found = ledger.store.table.connection.client.scan(
        TableName=ledger.store.table.name, FilterExpression="begins_with(pk, :n)",
        ExpressionAttributeValues={":n": {"S": "NONCE#"}},
    )
    return found["Count"]


# -- bodies: one bound for every route that reads JSON ----------------------------------------


def test_the_bounds_themselves():
    assert (schemas.MAX_BODY_BYTES, schemas.MAX_DEPTH) == (16_384, 32)
    assert schemas.parse("BalanceRequest", json.dumps({"idm": IDM}).encode()) == {"idm": IDM}
    for levels, refused in ((32, False), (33, True), (5000, True)):
        try:
            schemas.parse("BalanceRequest", deep(levels))
        except schemas.BodyTooDeep:
            assert refused, levels
        except schemas.BodyInvalid:
            assert not refused, levels  # 32 levels parse, and then fail the schema
    # brackets inside strings are text, not nesting
    assert schemas.parse("EmailRequest", json.dumps({"email": "[" * 200 + "@x.jp"}).encode())
    with pytest.raises(schemas.BodyTooLarge):
        schemas.parse("EmailRequest", padded({"email": "a@x.jp"}, 16_385))


@pytest.mark.parametrize("path", ["/login", "/signup/start", "/password-reset/start", "/signup/verify",
                                  "/password-reset/complete"])
def test_mypage_refuses_deep_and_large_bodies_in_japanese(api, card, path):
    for raw, status, code in ((deep(5000), 400, "body_too_deep"), (deep(33), 400, "body_too_deep"),
                              (padded({"email": "hanako@example.jp"}, 16_385), 413, "body_too_large")):
        response = api.http.post(MYPAGE + path, headers=JSON, body=raw)
        answer = json.loads(response.body)
        assert (response.status_code, answer) == (status, {"code": code, "message": JAPANESE[code]}), path
        assert response.headers.get("Cache-Control") == "no-store"


def test_a_body_just_inside_the_bounds_is_read_as_usual(api, card):
    raw = padded({"email": "hanako@example.jp", "password": "x"}, 16_384)
    response = api.http.post(MYPAGE + "/login", headers=JSON, body=raw)
    assert (response.status_code, json.loads(response.body)["code"]) == (400, "invalid_request")  # the pad


def test_mypage_refuses_them_on_a_logged_in_change_and_changes_nothing(api, mypage_service, outbox, card, ledger):
    sign_up(mypage_service, outbox, "hanako@example.jp", NUMBER, BIRTH)
    logged_in = mypage_service.login("hanako@example.jp", PASSWORD, "203.0.113.7")
    headers = {**JSON, "Cookie": f"session={logged_in.cookie}", "X-CSRF-Token": logged_in.csrf_token}
    for raw, status in ((deep(100), 400), (padded({"password": PASSWORD}, 20_000), 413)):
        response = api.http.post(MYPAGE + "/withdraw", headers=headers, body=raw)
        assert response.status_code == status
    assert api.http.get(MYPAGE + "/cards", headers=headers).status_code == 200  # still a member
    assert len(json.loads(api.http.get(MYPAGE + "/cards", headers=headers).body)["cards"]) == 1


@pytest.mark.parametrize("path", [f"{V1}/point-payments", f"{V1}/balance"])
def test_the_terminal_api_refuses_them_and_spends_no_nonce(tills, ledger, path):
    before = entries(ledger)
    for raw, status, code in ((deep(5000), 400, "body_too_deep"),
                              (padded({"request_id": "p1", "idm": IDM, "amount": 100}, 16_385), 413,
                               "body_too_large")):
        answer = tills["store"].post(path, raw)
        assert (answer[0], answer[1]["code"]) == (status, code)
        assert "message" in answer[1] and answer[1]["message"].isascii()
    assert (entries(ledger), nonces(ledger)) == (before, 0)


def test_the_admin_api_refuses_them(api, operators, with_identity, card, ledger):  # noqa: F811
    admin = AdminClient(api)
    before = entries(ledger)
    for path in ("/cards/void", "/merchants", "/grant-lists", "/settings"):
        for raw, status, code in ((deep(1000), 400, "body_too_deep"),
                                  (padded({"request_id": "r1", "card_number": NUMBER, "note": "x"}, 16_385), 413,
                                   "body_too_large")):
            response = api.http.post(f"/api/admin/v1/issuers/niimi{path}", body=raw,
                                     headers={**JSON, "x-test-user-arn": ARN})
            assert (response.status_code, json.loads(response.body)["code"]) == (status, code), path
    assert entries(ledger) == before
    assert admin.post("/cards/lookup", {"card_number": NUMBER})[0] == 200


def test_a_grant_list_of_the_largest_size_fits_in_a_body(api, operators, with_identity, card):  # noqa: F811
    maximum = schemas.document()["components"]["schemas"]["AdminGrantList"]["properties"]["rows"]["maxItems"]
    body = {"list_id": "L" * 40, "reason": "ボ" * 500,
            "rows": [{"card_number": NUMBER, "points": 10_000_000}] * maximum}
    assert len(json.dumps(body).encode()) <= schemas.MAX_BODY_BYTES  # as any client sends it (\\u escapes)
    from tools.admin import grants

    assert grants.GRANT_LIST_CHUNK == maximum


# -- terminal API: nonces, request ids, expires -------------------------------------------------


@pytest.mark.parametrize("nonce", ["n" * 129, "n" * 1500, "a nonce", "n/1", "n%00", "n@x", "n\\1"])
def test_a_nonce_out_of_bounds_is_refused_and_nothing_is_written(tills, ledger, nonce):
    before = entries(ledger)
    req = tills["store"].prepare(f"{V1}/point-payments", {"request_id": "p1", "idm": IDM, "amount": 100},
                                 nonce=nonce)
    status, answer = tills["store"].send(req)
    assert (status, answer["code"]) == (401, "bad_nonce")
    assert (entries(ledger), nonces(ledger), ledger.balance(IDM).balance) == (before, 0, 5000)


def test_a_nonce_of_128_allowed_characters_is_accepted(tills, ledger):
    nonce = ("Az09._:-" * 16)[:128]
    req = tills["store"].prepare(f"{V1}/point-payments", {"request_id": "p1", "idm": IDM, "amount": 100},
                                 nonce=nonce)
    assert tills["store"].send(req)[0] == 200
    assert ledger.balance(IDM).balance == 4900


@pytest.mark.parametrize("request_id", ["r" * 129, "r" * 1500, "a b", "r/1", "リクエスト", ""])
def test_a_request_id_out_of_bounds_is_refused(tills, ledger, request_id):
    before = entries(ledger)
    for path, body in ((f"{V1}/point-payments", {"request_id": request_id, "idm": IDM, "amount": 100}),
                       (f"{V1}/point-payments/cancel", {"request_id": "c1", "idm": IDM,
                                                         "payment_request_id": request_id})):
        status, answer = tills["store"].post(path, body)
        assert (status, answer["code"]) == (400, "invalid_request"), path
    assert (entries(ledger), nonces(ledger)) == (before, 0)


def test_a_signature_whose_expires_has_passed_is_refused(tills, ledger, terminal_service):
    before = entries(ledger)
    now = terminal_service.clock.now
    body = {"request_id": "p1", "idm": IDM, "amount": 100}
    req = tills["store"].prepare(f"{V1}/point-payments", body, expires=now - timedelta(seconds=1))
    status, answer = tills["store"].send(req)
    assert (status, answer["code"]) == (401, "expired_signature")
    assert (entries(ledger), nonces(ledger)) == (before, 0)
    # signed to expire in 30 s: accepted now, refused once the server's clock has passed it
    later = tills["store"].prepare(f"{V1}/balance", {"idm": IDM}, expires=now + timedelta(seconds=30))
    terminal_service.clock.advance(seconds=31)
    assert tills["store"].send(later)[1]["code"] == "expired_signature"
    terminal_service.clock.advance(seconds=-31)
    assert tills["store"].post_signed(f"{V1}/point-payments", body, expires=now + timedelta(seconds=30))[0] == 200
    assert ledger.balance(IDM).balance == 4900


# -- MyPage history cursors ---------------------------------------------------------------------


@pytest.fixture
def member(api, mypage_service, outbox, card):
    sign_up(mypage_service, outbox, "hanako@example.jp", NUMBER, BIRTH)
    logged_in = mypage_service.login("hanako@example.jp", PASSWORD, "203.0.113.7")
    headers = {**JSON, "Cookie": f"session={logged_in.cookie}"}
    (summary,) = json.loads(api.http.get(MYPAGE + "/cards", headers=headers).body)["cards"]
    return headers, summary["card_id"]


@pytest.mark.parametrize("cursor", ["1" * 5000, "1" * 11, "12345678901", "%EF%BC%95", "%C2%B2", "-1", "1.5",
                                    "%20", "0x10", "1e3", ""])
def test_a_history_cursor_that_is_not_1_to_10_ascii_digits_is_refused(api, member, cursor):
    headers, card_id = member
    response = api.http.get(f"{MYPAGE}/cards/{card_id}/history?cursor={cursor}", headers=headers)
    answer = json.loads(response.body)
    assert (response.status_code, answer["code"]) == (400, "invalid_request"), cursor


def test_a_history_cursor_of_ten_digits_is_read(api, member):
    headers, card_id = member
    for cursor in ("2", "9999999999"):
        response = api.http.get(f"{MYPAGE}/cards/{card_id}/history?cursor={cursor}", headers=headers)
        assert response.status_code == 200, cursor
    whole = json.loads(api.http.get(f"{MYPAGE}/cards/{card_id}/history", headers=headers).body)
    assert [e["kind"] for e in whole["entries"]] == ["grant"]


# -- path parameters and key ids: never a DynamoDB key over its size limit ----------------------


LONG = "x" * 3000


def test_the_key_limit_stand_in_refuses_as_dynamodb_does(ledger, dynamodb_key_limits):
    from pynamodb.exceptions import GetError

    with pytest.raises(GetError):
        ledger.store.get_card(LONG)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/api/admin/v1/issuers/{LONG}/settings"),
    ("GET", f"/api/admin/v1/issuers/{LONG}/merchants"),
    ("POST", f"/api/admin/v1/issuers/niimi/terminals/{LONG}/disable"),
    ("POST", f"/api/admin/v1/issuers/niimi/jobs/{LONG}/run"),
    ("GET", f"/api/issuers/{LONG}"),
])
def test_an_over_long_path_parameter_is_a_400_on_admin_and_public_routes(api, operators, with_identity,  # noqa: F811
                                                                       card, dynamodb_key_limits, method, path):
    response = api.http.request(method, path, headers={**JSON, "x-test-user-arn": ARN}, body=b"")
    answer = json.loads(response.body)
    assert (response.status_code, answer["code"]) == (400, "invalid_request"), answer
    assert "longer than 128 characters" in answer["message"]


def test_an_over_long_card_id_is_a_400_in_japanese_on_mypage(api, member, dynamodb_key_limits):
    headers, card_id = member
    for method, path in (("GET", f"{MYPAGE}/cards/{LONG}"), ("GET", f"{MYPAGE}/cards/{LONG}/history"),
                         ("DELETE", f"{MYPAGE}/cards/{LONG}")):
        response = api.http.request(method, path, headers=headers, body=b"")
        assert (response.status_code, json.loads(response.body)) == (
            400, {"code": "invalid_request", "message": "入力内容を確認してください。"}), path
    assert api.http.get(f"{MYPAGE}/cards/{card_id}", headers=headers).status_code == 200
    assert api.http.get(f"{MYPAGE}/cards/{'x' * 128}", headers=headers).status_code == 404


@pytest.mark.parametrize("key_id", [LONG, "T STORE", "T/STORE", "t" * 65])
def test_a_signature_naming_an_impossible_terminal_id_is_refused_without_a_lookup(api, card, ledger, key_id,
                                                                                  dynamodb_key_limits):
    from tests.terminals import SignedTerminal, new_key

    status, answer = SignedTerminal(api, key_id, new_key()).post(f"{V1}/balance", {"idm": IDM})
    assert (status, answer["code"]) == (401, "unknown_key")
    assert nonces(ledger) == 0
