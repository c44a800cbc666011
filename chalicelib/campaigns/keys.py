"""Key strings of the campaigns context, built and parsed in one place."""

from __future__ import annotations

from ..ledger import keys as ledger_keys
from ..ledger.keys import SHARDS, shard

CAMPAIGN = "CAMPAIGN#"
ENROLMENTS = "ENROL#"
GRANTED = "GRANTED#"
CARD = ledger_keys.CARD


def campaigns(issuer: str) -> str:
    """The partition of an issuer's campaigns (a handful, rarely written)."""
    return f"CAMPAIGNS#{issuer}"


def campaign(issuer: str, campaign_id: str) -> tuple[str, str]:
    return campaigns(issuer), CAMPAIGN + campaign_id


def campaign_id(sk: str) -> str:
    return sk.removeprefix(CAMPAIGN)


def enrolment_shards(issuer: str, campaign_id: str) -> list[str]:
    """Every partition of one campaign's enrolments: one query each lists its cards."""
    return [f"{ENROLMENTS}{issuer}#{campaign_id}#{n:02d}" for n in range(SHARDS)]


def enrolment(issuer: str, campaign_id: str, idm: str) -> tuple[str, str]:
    return enrolment_shards(issuer, campaign_id)[shard(idm)], CARD + idm


def granted(issuer: str, campaign_id: str, idm: str) -> tuple[str, str]:
    """The mark of the campaign's one grant to a card, beside its enrolment. It is put
    in the grant's own transaction, under attribute_not_exists."""
    return enrolment_shards(issuer, campaign_id)[shard(idm)], GRANTED + idm


def enrolled_idm(sk: str) -> str:
    return sk.removeprefix(CARD)


def granted_idm(sk: str) -> str:
    return sk.removeprefix(GRANTED)

