"""Every DynamoDB key string of the ledger table is built and parsed here."""

from __future__ import annotations

import hashlib

CARD = "CARD#"
ENTRY = "ENTRY#"
REQUEST = "REQ#"
CARD_NUMBER = "CARDNO#"
CANCELLED = "CANCELLED#"
ISSUER = "ISSUER#"


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


def issuer(issuer_id: str) -> tuple[str, str]:
    return ISSUER + issuer_id, "ISSUER"
