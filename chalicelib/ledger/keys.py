"""Every DynamoDB key string of the ledger table is built and parsed here."""

from __future__ import annotations

import hashlib
from datetime import date

CARD = "CARD#"
ENTRY = "ENTRY#"
REQUEST = "REQ#"
CARD_NUMBER = "CARDNO#"
CANCELLED = "CANCELLED#"
INITIAL = "INITIAL#"
ISSUER = "ISSUER#"
ISSUERS = "ISSUERS"
EXPIRY = "EXP#"
DORMANCY = "DORM#"
CHANGED = "CHG#"

# Per-card work a job finds through an index (lots due on a day, payments in a month)
# spreads over this many partition keys, so no index partition is hot.
SHARDS = 16


def shard(idm: str) -> int:
    """A card's shard, 0..SHARDS-1: stable, and even over IDms."""
    return int(hashlib.sha256(idm.encode()).hexdigest()[:8], 16) % SHARDS


def card(idm: str) -> tuple[str, str]:
    return CARD + idm, "CARD"


def entry(idm: str, seq: int) -> tuple[str, str]:
    return CARD + idm, f"{ENTRY}{seq:010d}"


def entry_seq(sk: str) -> int:
    return int(sk.removeprefix(ENTRY))


def request_id_hash(request_id: str) -> str:
    """The id of the entry a request makes: derived from the caller's request id."""
    return hashlib.sha256(request_id.encode()).hexdigest()


def request(entry_id: str) -> tuple[str, str]:
    return REQUEST + entry_id, "REQ"


def card_number(number: str) -> tuple[str, str]:
    return CARD_NUMBER + number, "CARDNO"


def cancelled(spend_entry_id: str) -> tuple[str, str]:
    return CANCELLED + spend_entry_id, "CANCELLED"


def initial_grant(idm: str) -> tuple[str, str]:
    """The claim every initial grant of a card puts: at most one, whichever path grants it."""
    return INITIAL + idm, "INITIAL"


def issuer(issuer_id: str) -> tuple[str, str]:
    return ISSUER + issuer_id, "ISSUER"


def issuer_listing(issuer_id: str) -> tuple[str, str]:
    """The issuer's row in the small ISSUERS partition the daily jobs list."""
    return ISSUERS, ISSUER + issuer_id


def issuer_from_listing(sk: str) -> str:
    return sk.removeprefix(ISSUER)


def expiry(issuer_id: str, day: date, idm: str) -> str:
    """The by-expiry index key of a card whose earliest lot with points expires on `day`."""
    return expiry_shard(issuer_id, day, shard(idm))


def expiry_shard(issuer_id: str, day: date, shard_no: int) -> str:
    return f"{EXPIRY}{issuer_id}#{day.isoformat()}#{shard_no:02d}"


def expiry_shards(issuer_id: str, day: date) -> list[str]:
    """Every by-expiry key of one issuer and day: one query each finds its cards."""
    return [expiry_shard(issuer_id, day, n) for n in range(SHARDS)]


def parse_expiry(key: str) -> tuple[str, date, int]:
    """(issuer, day, shard) of a by-expiry key."""
    issuer_id, day, shard_no = key.removeprefix(EXPIRY).rsplit("#", 2)
    return issuer_id, date.fromisoformat(day), int(shard_no)


def dormancy(issuer_id: str, last_activity: date, idm: str) -> str:
    """The by-dormancy index key of a card whose last grant or spend was on `last_activity`.
    Keyed on that day, not on the deadline, so the key needs no issuer setting and stays
    right if an issuer's dormancy period changes."""
    return dormancy_shard(issuer_id, last_activity, shard(idm))


def dormancy_shard(issuer_id: str, last_activity: date, shard_no: int) -> str:
    return f"{DORMANCY}{issuer_id}#{last_activity.isoformat()}#{shard_no:02d}"


def dormancy_shards(issuer_id: str, last_activity: date) -> list[str]:
    return [dormancy_shard(issuer_id, last_activity, n) for n in range(SHARDS)]


def parse_dormancy(key: str) -> tuple[str, date, int]:
    """(issuer, last activity day, shard) of a by-dormancy key."""
    issuer_id, day, shard_no = key.removeprefix(DORMANCY).rsplit("#", 2)
    return issuer_id, date.fromisoformat(day), int(shard_no)


def changed(issuer_id: str, day: date, idm: str) -> str:
    """The by-change index key of a card last written (an entry, or opened) on `day`,
    the issuer's local day: the daily audit reads the days since its last anchor."""
    return changed_shard(issuer_id, day, shard(idm))


def changed_shard(issuer_id: str, day: date, shard_no: int) -> str:
    return f"{CHANGED}{issuer_id}#{day.isoformat()}#{shard_no:02d}"


def card_idm(pk: str) -> str:
    return pk.removeprefix(CARD)
