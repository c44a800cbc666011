"""MyPage's pure rules for passwords, addresses and login waits (chalicelib/mypage/domain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.mypage import domain


@pytest.mark.parametrize("password", ["password", "12345678", "Password1", "p@ssw0rd", "qwerty123", "xxxxxxxx",
                                      "abcdefgh", "iloveyou", "11111111"])
def test_common_and_breached_passwords_are_common(password):
    assert domain.password_common(password)


@pytest.mark.parametrize("password", ["correct horse 1", "hidamari 8", "niimi-demo-2026", "bench-pass-2026"])
def test_passwords_the_tests_and_demos_use_are_not(password):
    assert not domain.password_common(password)


def test_the_address_counts_as_a_known_word():
    assert not domain.password_common("tanpopo1948")
    assert domain.password_common("tanpopo1948", ("tanpopo@example.jp", "tanpopo"))


def test_passwords_up_to_128_characters_are_judged():
    strong = "".join(f"{word}-{i}" for i, word in enumerate(["kiri", "sora", "umi", "yama"] * 8))[:128]
    assert len(strong) == 128 and not domain.password_common(strong)  # zxcvbn's own limit is 72
    assert domain.password_common("a" * 128)


def test_the_wait_says_when_in_japanese():
    text = domain.wait_message(datetime(2022, 10, 24, 10, 5), 90)
    assert "10時05分" in text and "約2分後" in text
    assert "約30秒後" in domain.wait_message(datetime(2022, 10, 24, 10, 5), 30)


def test_fixed_windows_divide_the_day():
    now = datetime(2022, 10, 24, 10, 47, 12, tzinfo=UTC)
    assert domain.window_start(now, timedelta(minutes=15)) == datetime(2022, 10, 24, 10, 45, tzinfo=UTC)
    assert domain.window_start(now, timedelta(hours=1)) == datetime(2022, 10, 24, 10, 0, tzinfo=UTC)


def test_addresses_longer_than_rfc_5321_allows_are_refused():
    assert domain.normalize_email("h" * 64 + "@example.jp")
    assert domain.normalize_email("h" * 65 + "@example.jp") is None
    long_domain = ".".join(c * 61 for c in "defg") + ".jp"  # 250 characters, a valid domain
    assert domain.normalize_email("h@" + long_domain)
    assert domain.normalize_email("h" * 10 + "@" + long_domain) is None  # 261 in all
