"""MyPage's key strings (chalicelib/mypage/keys.py) are the ones already in the table:
pinned byte for byte, so a change to keys.py cannot orphan existing members, links,
sessions or counters."""

from __future__ import annotations

from datetime import date, datetime

from chalicelib.mypage import keys


def test_member_partition_keys():
    assert keys.member("m-1234") == ("MEMBER#m-1234", "MEMBER")
    assert keys.session("m-1234", "ab12") == ("MEMBER#m-1234", "SESSION#ab12")
    assert keys.link("m-1234", "l-9") == ("MEMBER#m-1234", "LINK#l-9")


def test_address_code_signup_and_limit_keys():
    assert keys.email("e0f1") == ("EMAIL#e0f1", "EMAIL")
    assert keys.code("signup", "e0f1") == ("CODE#signup#e0f1", "CODE")
    assert keys.signup("s9") == ("SIGNUP#s9", "SIGNUP")
    assert keys.throttle("login-ip", "k1") == ("THROTTLE#login-ip#k1", "THROTTLE")
    assert keys.counter("codes", "k1#2022-10-24") == ("COUNT#codes#k1#2022-10-24", "COUNT")
    assert keys.login("p7") == ("LOGIN#p7", "LOGIN")


def test_period_suffixes():
    assert keys.day_period("k1", date(2022, 10, 24)) == "k1#2022-10-24"
    assert keys.window_period("k1", datetime(2022, 10, 24, 9, 5, 30)) == "k1#2022-10-24T09:05"


def test_card_link_and_reminder_listing_keys():
    assert keys.card_link("0123456789abcdef", "m-1234") == ("LINKED#0123456789abcdef", "MEMBER#m-1234")
    assert keys.remindee("niimi", "m-1234") == ("REMINDEES#niimi#03", "MEMBER#m-1234")
    shards = keys.remindee_shards("niimi")
    assert len(shards) == 16 and shards[0] == "REMINDEES#niimi#00" and shards[15] == "REMINDEES#niimi#15"


def test_parsing_takes_the_prefix_off_and_nothing_more():
    # removeprefix, not lstrip: an id starting with letters of the prefix keeps them
    assert keys.parse_member("MEMBER#MEM-1") == "MEM-1"
    assert keys.parse_link("LINK#LINK-2") == "LINK-2"
