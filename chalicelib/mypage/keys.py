"""Every DynamoDB key string of MyPage's items is built and parsed here (the layout is
described in chalicelib/mypage/store.py's docstring)."""

from __future__ import annotations

from datetime import date, datetime

from ..ledger.keys import SHARDS, shard  # one shard rule for every sharded partition

MEMBER = "MEMBER#"
SESSION = "SESSION#"
LINK = "LINK#"
EMAIL = "EMAIL#"
CODE = "CODE#"
SIGNUP = "SIGNUP#"
THROTTLE = "THROTTLE#"
COUNT = "COUNT#"
LOGIN = "LOGIN#"
LINKED = "LINKED#"
REMINDEES = "REMINDEES#"

# The sort key of a member's own item. LINK#… sorts just before it and SESSION#… after
# it, so a query between LINK# and MEMBER reads the member and its links, not its sessions.
MEMBER_SK = "MEMBER"


def member_pk(member_id: str) -> str:
    """The partition of a member: its own item, its sessions and its links."""
    return MEMBER + member_id


def member(member_id: str) -> tuple[str, str]:
    return member_pk(member_id), MEMBER_SK


def parse_member(key: str) -> str:
    """The member id of a MEMBER#<id> key (a partition key, or the sort key of a pair)."""
    return key.removeprefix(MEMBER)


def session(member_id: str, token_hash: str) -> tuple[str, str]:
    return member_pk(member_id), SESSION + token_hash


def link(member_id: str, link_id: str) -> tuple[str, str]:
    return member_pk(member_id), LINK + link_id


def parse_link(sk: str) -> str:
    return sk.removeprefix(LINK)


def email(email_key: str) -> tuple[str, str]:
    """The address → member item, keyed by the address's keyed hash."""
    return EMAIL + email_key, "EMAIL"


def code(purpose: str, email_key: str) -> tuple[str, str]:
    return f"{CODE}{purpose}#{email_key}", "CODE"


def signup(signup_key: str) -> tuple[str, str]:
    return SIGNUP + signup_key, "SIGNUP"


def throttle(scope: str, key: str) -> tuple[str, str]:
    return f"{THROTTLE}{scope}#{key}", "THROTTLE"


def counter(scope: str, key: str) -> tuple[str, str]:
    return f"{COUNT}{scope}#{key}", "COUNT"


def login(key: str) -> tuple[str, str]:
    return LOGIN + key, "LOGIN"


def card_links(idm: str) -> str:
    """The partition listing the members who have linked a card."""
    return LINKED + idm


def card_link(idm: str, member_id: str) -> tuple[str, str]:
    return card_links(idm), member_pk(member_id)


def remindees(issuer_id: str, shard_no: int) -> str:
    return f"{REMINDEES}{issuer_id}#{shard_no:02d}"


def remindee_shards(issuer_id: str) -> list[str]:
    """Every partition listing the issuer's members with reminders on: one query each."""
    return [remindees(issuer_id, n) for n in range(SHARDS)]


def remindee(issuer_id: str, member_id: str) -> tuple[str, str]:
    return remindees(issuer_id, shard(member_id)), member_pk(member_id)


def day_period(key: str, day: date) -> str:
    """A counter key for one day: the keyed hash followed by the day, e.g. `…#2022-10-24`."""
    return f"{key}#{day.isoformat()}"


def window_period(key: str, start: datetime) -> str:
    """A counter key for one fixed window, by the minute it starts: `…#2022-10-24T09:00`."""
    return f"{key}#{start:%Y-%m-%dT%H:%M}"
