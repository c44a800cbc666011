"""MyPage's attempt limits (SPEC §8), each tried as an attacker would through the API,
its stores in memory (tests/fakes/) and its mail on moto: birth dates ground down over
many addresses, reset codes ground down over a day, a stranger locking the owner out,
common passwords, malformed addresses, and answers that tell a registered address from
an unknown one. Each test failed on d5007d4."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from chalicelib.mypage import domain
from tests.fakes import fixtures as fakes
from tests.integration import test_mypage_api as base
from tests.integration.test_mypage_api import CARD, EMAIL, FAMILY, JSON, ORIGIN_KEY, Browser, P, sign_up
from tests.integration.test_observability import emf, metric_values

cards = base.cards  # the same fixtures: two issued cards, the API behind CloudFront
behind_cloudfront = base.behind_cloudfront
# The limits are rules, not DynamoDB: the services run on the in-memory stores
# (tests/fakes/fixtures.py); `store` (the moto table) is still there for the test of
# requests racing for one counter.
unchecked_ledger = fakes.unchecked_ledger
terminal_service = fakes.terminal_service
mypage_service = fakes.mypage_service

PASSWORD = "correct horse 1"
NOTICE = "確認コードの受け付けを本日停止しました"


def call(api, method: str, path: str, body: dict, ip: str = "203.0.113.7"):
    """One request through CloudFront from `ip`; the whole response (headers too)."""
    headers = {**JSON, "CloudFront-Viewer-Address": f"{ip}:443", "X-Chiiki-Origin": ORIGIN_KEY}
    response = api.http.request(method, P + path, headers=headers, body=json.dumps(body))
    answer = json.loads(response.body) if response.body else None
    return response.status_code, answer, {k.lower(): v for k, v in response.headers.items()}


def mails_to(outbox, address: str) -> list:
    return [m for m in outbox.messages() if address in m.destinations["ToAddresses"]]


def notices_to(outbox, address: str) -> int:
    return sum(1 for m in mails_to(outbox, address) if NOTICE in m.subject)


def signup_token(api, outbox, email: str, ip: str = "203.0.113.7") -> str:
    assert call(api, "POST", "/signup/start", {"email": email}, ip)[0] == 202
    status, answer, _ = call(api, "POST", "/signup/verify", {"email": email, "code": outbox.code_for(email)}, ip)
    assert status == 200, answer
    return answer["signup_token"]


def birth_date_guesses(right: str, position: int, count: int) -> list[str]:
    """`count` birth dates, the right one at `position` (1-based), the others wrong."""
    day = datetime.fromisoformat(right)
    wrong = [(day + timedelta(days=i)).date().isoformat() for i in range(1, count + 1)]
    return wrong[: position - 1] + [right] + wrong[position - 1 : count - 1]


# -- item 2: card linking can't be guessed ----------------------------------------------------


def test_plus_addresses_cannot_grind_down_a_cards_birth_date(api, cards, outbox, clock):
    """Today's demo: five plus-addresses x five tries found the birth date on guess 24."""
    guesses = iter(birth_date_guesses(FAMILY["birth"], 24, 25))
    answers = []
    for n in range(1, 6):
        token = signup_token(api, outbox, f"m+{n}@example.jp", ip=f"198.51.100.{n}")
        for _ in range(5):
            body = {"signup_token": token, "card_number": FAMILY["number"], "birth_date": next(guesses),
                    "password": "hidamari 8"}
            status, answer, headers = call(api, "POST", "/signup/complete", body, ip=f"198.51.100.{n}")
            answers.append((status, answer["code"] if answer and "code" in answer else None))
    assert answers[:5] == [(400, "card_mismatch")] * 5
    assert answers[5:] == [(429, "link_locked")] * 20  # the right date (guess 24) among them
    assert int(headers["retry-after"]) > 0 and "本日は登録できません" in answer["message"]

    # The card stays locked for a member's family linking too, whatever the address.
    taro = sign_up(api, outbox, email="taro@example.jp", card=CARD)
    status, answer = taro.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})
    assert (status, answer["code"]) == (429, "link_locked")
    # Other cards are not locked by it, and the next JST day the card links again.
    clock.set(clock.now.astimezone(domain_zone()).date() + timedelta(days=1))
    taro.call("POST", "/login", {"email": "taro@example.jp", "password": PASSWORD})
    assert taro.call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})[0] == 201


def domain_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Tokyo")


def test_failed_links_are_counted_per_card_across_members(api, cards, outbox):
    """Members taking turns on one card share its five failures."""
    members = [sign_up(api, outbox, email=f"member{i}@example.jp", card=CARD) for i in range(3)]
    wrong = birth_date_guesses(FAMILY["birth"], 6, 6)[:5]
    for i, guess in enumerate(wrong):
        status, _ = members[i % 3].call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": guess})
        assert status == 400
    status, answer = members[2].call("POST", "/cards", {"card_number": FAMILY["number"], "birth_date": FAMILY["birth"]})
    assert (status, answer["code"]) == (429, "link_locked")


def test_a_right_birth_date_does_not_use_up_the_cards_tries(api, cards, outbox):
    """Family members linking the card the right way are never locked out by each other."""
    for i in range(domain.LINK_FAILURES_PER_DAY + 2):
        sign_up(api, outbox, email=f"family{i}@example.jp", card=FAMILY)


def test_the_cards_members_are_told_when_another_account_links_it(api, cards, outbox):
    sign_up(api, outbox, email=EMAIL, card=CARD)  # hanako holds CARD
    assert len(mails_to(outbox, EMAIL)) == 1  # her signup code, nothing else yet

    taro = sign_up(api, outbox, email="taro@example.jp", card=FAMILY)
    assert len(mails_to(outbox, EMAIL)) == 1  # another card: she is not told
    assert taro.call("POST", "/cards", {"card_number": CARD["number"], "birth_date": CARD["birth"]})[0] == 201
    (notice,) = mails_to(outbox, EMAIL)[1:]
    assert "別のマイページ" in notice.subject
    assert "JW••••••••••••345" in notice.body and "登録日" in notice.body
    for private in ("taro", CARD["number"], CARD["birth"], CARD["idm"]):
        assert private not in notice.body and private not in notice.subject
    assert len(mails_to(outbox, "taro@example.jp")) == 1  # the one linking is not told

    sign_up(api, outbox, email="jiro@example.jp", card=CARD)  # a new signup with the card
    assert len(mails_to(outbox, EMAIL)) == 3
    assert sum("別のマイページ" in m.subject for m in mails_to(outbox, "taro@example.jp")) == 1


# -- item 3: codes can't be ground down ----------------------------------------------------------


def test_a_reset_code_cannot_be_ground_down_over_a_day(api, cards, outbox, clock):
    """Today a takeover takes about 400 hours of 25 guesses an hour, never refused. Now the
    address's 20 failed tries a day are used up, from whatever source, and even the right
    code is refused until the next day; the address is told once."""
    sign_up(api, outbox)
    failures = 0
    for round_no, tries in enumerate((5, 5, 5, 4, 1)):  # 5 codes in the hour, 20 wrong tries
        ip = f"192.0.2.{round_no + 10}"  # a new source each round: the limit is the address's
        assert call(api, "POST", "/password-reset/start", {"email": EMAIL}, ip)[0] == 202
        right = outbox.code_for(EMAIL)
        wrong = f"{(int(right) + 1) % 10000:04d}"
        for _ in range(tries):
            status, answer, _ = call(api, "POST", "/password-reset/complete",
                                     {"email": EMAIL, "code": wrong, "new_password": "taken over 1"}, ip)
            assert status == 400
            failures += 1
    assert failures == 20
    assert notices_to(outbox, EMAIL) == 1  # told when the 20th failure was counted

    status, answer, headers = call(api, "POST", "/password-reset/complete",
                                   {"email": EMAIL, "code": right, "new_password": "taken over 1"}, "192.0.2.99")
    assert (status, answer["code"]) == (429, "too_many_attempts")
    assert "明日" in answer["message"] and int(headers["retry-after"]) > 0
    status, answer, _ = call(api, "POST", "/password-reset/start", {"email": EMAIL}, "192.0.2.98")
    assert (status, answer["code"]) == (429, "too_many_attempts")
    assert notices_to(outbox, EMAIL) == 1  # one notice, not one per refusal
    assert Browser(api).call("POST", "/login", {"email": EMAIL, "password": PASSWORD})[0] == 200

    clock.set(clock.now.astimezone(domain_zone()).date() + timedelta(days=1))
    assert call(api, "POST", "/password-reset/start", {"email": EMAIL})[0] == 202


def test_ten_codes_a_day_per_address_then_refused_until_tomorrow(api, cards, outbox, clock):
    accepted = 0
    for hour in range(2):
        for purpose in ("/signup/start", "/password-reset/start") * 3:  # signup and reset together
            if accepted < 5 * (hour + 1):
                status, answer, _ = call(api, "POST", purpose, {"email": EMAIL})
                assert status == 202, answer
                accepted += 1
        clock.advance(hours=1, seconds=1)  # past the 5-an-hour limit, the same JST day
    assert accepted == domain.CODES_PER_DAY
    assert notices_to(outbox, EMAIL) == 1  # told with the 10th
    sent = len(mails_to(outbox, EMAIL))
    for purpose in ("/signup/start", "/password-reset/start", "/signup/start"):
        status, answer, headers = call(api, "POST", purpose, {"email": EMAIL})
        assert (status, answer["code"]) == (429, "too_many_attempts") and "明日" in answer["message"]
        assert 0 < int(headers["retry-after"]) <= 24 * 3600
    assert len(mails_to(outbox, EMAIL)) == sent  # nothing more was sent: one notice, not one per refusal
    clock.set(clock.now.astimezone(domain_zone()).date() + timedelta(days=1))
    assert call(api, "POST", "/signup/start", {"email": EMAIL})[0] == 202


def test_codes_are_limited_per_source_address_across_addresses(api, cards, outbox, monkeypatch):
    monkeypatch.setattr(domain, "SOURCE_CODES_PER_HOUR", 3)  # the same rule with a smaller number
    for i in range(3):
        assert call(api, "POST", "/signup/start", {"email": f"a{i}@example.jp"}, "198.51.100.50")[0] == 202
    status, answer, headers = call(api, "POST", "/signup/start", {"email": "a9@example.jp"}, "198.51.100.50")
    assert (status, answer["code"]) == (429, "too_many_attempts") and int(headers["retry-after"]) > 0
    assert not mails_to(outbox, "a9@example.jp")
    assert call(api, "POST", "/signup/start", {"email": "a9@example.jp"}, "198.51.100.51")[0] == 202


def test_failed_codes_are_limited_per_source_address_across_addresses(api, cards, outbox, monkeypatch):
    monkeypatch.setattr(domain, "SOURCE_CODE_FAILURES_PER_HOUR", 4)
    ip = "198.51.100.60"
    for i in range(4):
        call(api, "POST", "/signup/start", {"email": f"b{i}@example.jp"}, "198.51.100.61")
        right = outbox.code_for(f"b{i}@example.jp")
        wrong = f"{(int(right) + 1) % 10000:04d}"
        assert call(api, "POST", "/signup/verify", {"email": f"b{i}@example.jp", "code": wrong}, ip)[0] == 400
    call(api, "POST", "/signup/start", {"email": "b9@example.jp"}, "198.51.100.61")
    right = outbox.code_for("b9@example.jp")
    status, answer, _ = call(api, "POST", "/signup/verify", {"email": "b9@example.jp", "code": right}, ip)
    assert (status, answer["code"]) == (429, "too_many_attempts")
    assert call(api, "POST", "/signup/verify", {"email": "b9@example.jp", "code": right}, "198.51.100.62")[0] == 200


# -- item 4: nothing tells who is registered ------------------------------------------------------


def test_reset_answers_and_refusals_are_the_same_for_registered_and_unknown_addresses(
    api, cards, outbox, monkeypatch
):
    """Today a wrong reset code says "あと4回" only to a registered address."""
    sign_up(api, outbox)
    from chalicelib.mypage import service

    monkeypatch.setattr(service.secrets, "randbelow", lambda n: 1234)  # the same code for both

    def attempts(email: str, ip: str) -> list:
        seen = []
        for _ in range(5):
            status, answer, headers = call(api, "POST", "/password-reset/start", {"email": email}, ip)
            seen.append((status, answer))
            for _ in range(5):
                status, answer, headers = call(
                    api, "POST", "/password-reset/complete", {"email": email, "code": "4321",
                                                               "new_password": "taken over 1"}, ip)
                seen.append((status, answer, headers.get("retry-after")))
        return seen

    registered = attempts(EMAIL, "192.0.2.30")
    unknown = attempts("nobody@example.jp", "192.0.2.31")
    assert registered == unknown
    messages = json.dumps(registered, ensure_ascii=False)
    assert "あと4回" in messages and "too_many_attempts" in messages  # both courses were run through
    assert notices_to(outbox, EMAIL) == notices_to(outbox, "nobody@example.jp") == 1


# -- item 5: the owner is not locked out by strangers ------------------------------------------


def test_a_stranger_failing_from_elsewhere_does_not_lock_the_owner_out(api, cards, outbox, clock):
    sign_up(api, outbox)
    failed = 0
    for _ in range(12):
        status, _, headers = call(api, "POST", "/login", {"email": EMAIL, "password": "guess guess"}, "198.51.100.66")
        if status == 401:
            failed += 1
        else:
            assert status == 429
            clock.advance(seconds=int(headers.get("retry-after", 60)))
    assert failed >= 6  # more than today's hard lock (5 in 15 minutes) would have let him
    owner = Browser(api, ip="192.0.2.1")
    assert owner.call("POST", "/login", {"email": EMAIL, "password": PASSWORD})[0] == 200


def test_login_waits_grow_doubling_and_say_when(api, cards, outbox, clock):
    sign_up(api, outbox)
    stranger = "198.51.100.77"
    for _ in range(domain.LOGIN_FREE_FAILURES):
        assert call(api, "POST", "/login", {"email": EMAIL, "password": "guess guess"}, stranger)[0] == 401
    waits, messages = [], []
    for _ in range(4):
        status, answer, headers = call(api, "POST", "/login", {"email": EMAIL, "password": PASSWORD}, stranger)
        assert (status, answer["code"]) == (429, "too_many_attempts")  # even the right password waits
        waits.append(int(headers["retry-after"]))
        messages.append(answer["message"])
        assert re.search(r"\d+時\d+分.*以降にもう一度お試しください", answer["message"]), answer["message"]
        clock.advance(seconds=waits[-1] - 1)
        assert call(api, "POST", "/login", {"email": EMAIL, "password": PASSWORD}, stranger)[0] == 429
        clock.advance(seconds=1)
        assert call(api, "POST", "/login", {"email": EMAIL, "password": "guess guess"}, stranger)[0] == 401
    assert waits == [30, 60, 120, 240]
    assert "約30秒後" in messages[0] and "約1分後" in messages[1] and "約4分後" in messages[3]
    # After a right password from the pair, its failures are forgotten.
    clock.advance(seconds=480)
    assert call(api, "POST", "/login", {"email": EMAIL, "password": PASSWORD}, stranger)[0] == 200
    assert call(api, "POST", "/login", {"email": EMAIL, "password": "guess guess"}, stranger)[0] == 401


def test_login_waits_are_capped():
    waits = [domain.login_wait(n) for n in range(1, 30)]
    assert waits[: domain.LOGIN_FREE_FAILURES - 1] == [timedelta(0)] * (domain.LOGIN_FREE_FAILURES - 1)
    assert waits == sorted(waits) and max(waits) == domain.LOGIN_MAX_WAIT == timedelta(hours=1)


# -- item 6: passwords ------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password", "12345678", "P@ssw0rd", "iloveyou", "qwertyuiop", "hanako1948"])
def test_common_and_breached_passwords_are_refused_with_a_japanese_reason(api, cards, outbox, password):
    token = signup_token(api, outbox, EMAIL)
    body = {"signup_token": token, "card_number": CARD["number"], "birth_date": CARD["birth"], "password": password}
    status, answer, _ = call(api, "POST", "/signup/complete", body)
    assert (status, answer["code"]) == (400, "common_password")
    assert "よく使われている" in answer["message"]


def test_common_passwords_are_refused_on_change_and_reset_too(api, cards, outbox):
    b = sign_up(api, outbox)
    status, answer = b.call("POST", "/password", {"current_password": PASSWORD, "new_password": "password"})
    assert (status, answer["code"]) == (400, "common_password")
    call(api, "POST", "/password-reset/start", {"email": EMAIL})
    code = outbox.code_for(EMAIL)
    status, answer, _ = call(api, "POST", "/password-reset/complete",
                             {"email": EMAIL, "code": code, "new_password": "12345678"})
    assert (status, answer["code"]) == (400, "common_password")
    status, answer, _ = call(api, "POST", "/password-reset/complete",
                             {"email": EMAIL, "code": code, "new_password": "x" * 129})
    assert (status, answer["code"]) == (400, "weak_password")  # 8-128 characters stays
    assert call(api, "POST", "/password-reset/complete",
                {"email": EMAIL, "code": code, "new_password": "komorebi 9"})[0] == 204


# -- item 7 (addresses): malformed e-mail addresses are a 400 ---------------------------------------

MALFORMED = [
    "a..b@example.jp",
    ".hanako@example.jp",
    "hanako@",
    "hanako@example",
    "hanako@-example.jp",
    "太郎@example.jp",
    "hanako@[192.0.2.1]",
    '"hanako"@example.jp',
    "h" * 65 + "@example.jp",
    "hanako@example.jp@example.jp",
]


@pytest.mark.parametrize("address", MALFORMED)
def test_malformed_addresses_are_a_400_wherever_an_address_is_taken(api, cards, outbox, address):
    for path, body in [
        ("/signup/start", {"email": address}),
        ("/signup/verify", {"email": address, "code": "1234"}),
        ("/login", {"email": address, "password": "komorebi 9"}),
        ("/password-reset/start", {"email": address}),
        ("/password-reset/complete", {"email": address, "code": "1234", "new_password": "komorebi 9"}),
    ]:
        status, answer, _ = call(api, "POST", path, body)
        assert status == 400, (path, status, answer)
        assert answer["code"] in ("invalid_email", "invalid_request") and "メールアドレス" in answer["message"], path
    assert not outbox.messages()


def test_well_formed_addresses_are_keyed_as_before():
    assert domain.normalize_email("  Hanako@Example.JP ") == "hanako@example.jp"
    assert domain.normalize_email("m+1@example.jp") == "m+1@example.jp"
    assert domain.normalize_email("a@例え.jp") == "a@xn--r8jz45g.jp"


# -- the refusals metric ------------------------------------------------------------------------


def test_refusals_are_counted_for_the_alarm(api, cards, outbox, capsys, log_lines):
    sign_up(api, outbox)
    for _ in range(domain.LOGIN_FREE_FAILURES + 1):
        call(api, "POST", "/login", {"email": EMAIL, "password": "guess guess"})
    metrics = metric_values(emf(capsys.readouterr().out))
    assert metrics[("MyPageRefused", ())] == 1
    (line,) = [line for line in log_lines() if line["message"] == "mypage refused"]
    assert line["reason"] == "login_wait" and EMAIL not in json.dumps(line)


# -- counters: requests at the same moment --------------------------------------------------------


def test_a_limit_taken_by_requests_at_the_same_moment_lets_only_its_number_through(store):
    """Birth-date guesses sent all at once: each takes the card's count before its guess is
    judged, so no more than five are judged, however many arrive together."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.mypage.store import MyPageStore

    counters = MyPageStore(store.table)
    until = datetime(2030, 1, 1, tzinfo=domain_zone())
    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda _: counters.take("link-failures-card", "k#2022-10-24", 5, until), range(24)))
    assert sorted(t for t in taken if t is not None) == [1, 2, 3, 4, 5]
    assert counters.count("link-failures-card", "k#2022-10-24") == 5  # the refused ones wrote nothing
    counters.give_back("link-failures-card", "k#2022-10-24")
    assert counters.take("link-failures-card", "k#2022-10-24", 5, until) == 5
