"""Key strings of the terminals context, built and parsed in one place."""

from __future__ import annotations

from datetime import date

from ..ledger import keys as ledger_keys
from ..ledger.keys import shard  # one shard rule for every sharded partition

MERCHANT = "MERCHANT#"
TERMINAL = "TERMINAL#"
EVENT = "EVENT#"
NONCE = "NONCE#"
TXN = "TXN#"
CHARGES = "CHARGES#"
CHARGED = "CHARGED#"
CHECKIN = "CHECKIN#"
EMONEY_DAY = "EMONEY_DAY#"


def merchants(issuer: str) -> str:
    """The partition of an issuer's member-store directory (hundreds, rarely written)."""
    return f"MERCHANTS#{issuer}"


def merchant(issuer: str, merchant_id: str) -> tuple[str, str]:
    return merchants(issuer), MERCHANT + merchant_id


def terminal(terminal_id: str) -> tuple[str, str]:
    return TERMINAL + terminal_id, "TERMINAL"


def event(event_id: str) -> tuple[str, str]:
    return EVENT + event_id, "EVENT"


def nonce(terminal_id: str, value: str) -> tuple[str, str]:
    return f"{NONCE}{terminal_id}#{value}", "NONCE"


def txn(idm: str, card_seq: int) -> tuple[str, str]:
    """A card transaction sits in the card's partition, keyed by the card's own sequence number."""
    return txn_partition(idm), f"{TXN}{card_seq:05d}"


def txn_partition(idm: str) -> str:
    """The card's partition, where its transactions sit under TXN#<seq>."""
    return ledger_keys.card(idm)[0]


def txn_seq(sk: str) -> int:
    return int(sk.removeprefix(TXN))


def card_month(idm: str, month: str) -> tuple[str, str]:
    """The card's charges of one month in brief (the campaign job's read), in its partition."""
    return txn_partition(idm), f"{CHARGED}{month}"


def card_month_of(sk: str) -> str:
    return sk.removeprefix(CHARGED)


def charges(issuer: str, month: str, idm: str) -> tuple[str, str]:
    """Marks a card that charged in a month, for the campaign jobs."""
    return charges_shards(issuer, month)[shard(idm)], ledger_keys.CARD + idm


def charges_shards(issuer: str, month: str) -> list[str]:
    """Every partition listing the cards that charged in a month: one query each."""
    return [f"{CHARGES}{issuer}#{month}#{n:02d}" for n in range(ledger_keys.SHARDS)]


def charges_idm(sk: str) -> str:
    return sk.removeprefix(ledger_keys.CARD)


def checkin(event_id: str, idm: str) -> tuple[str, str]:
    return f"{CHECKIN}{event_id}#{idm}", "CHECKIN"


def terminal_day(terminal_id: str, day: date) -> tuple[str, str]:
    """The yen one terminal has had recorded on one day (its daily limit)."""
    return f"{EMONEY_DAY}{terminal_id}#{day.isoformat()}", "EMONEY_DAY"


def card_day(idm: str, kind: str, day: date) -> tuple[str, str]:
    """The yen of one kind of record (payments, charges) one card has had on one day."""
    return ledger_keys.card(idm)[0], f"{EMONEY_DAY}{kind}#{day.isoformat()}"
