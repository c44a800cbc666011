"""Key strings of the rebates context, built and parsed in one place.

    ACCRUAL#<iss>#<month>#<sh>   CARD#<idm>      a card's e-money payments in a month (rebate job input)
    CARD#<idm>                   REBATE          the card's rebate account
    REBATE_RATES#<issuer>        RATE#<id>       a campaign period's rebate rate
"""

from __future__ import annotations

from ..ledger import keys as ledger_keys
from ..ledger.keys import shard  # one shard rule for every sharded partition

ACCRUAL = "ACCRUAL#"
RATE = "RATE#"


def accrual(issuer: str, month: str, idm: str) -> tuple[str, str]:
    """One card's e-money payments in one month, in one of the month's shards."""
    return accrual_shards(issuer, month)[shard(idm)], ledger_keys.CARD + idm


def accrual_idm(sk: str) -> str:
    return sk.removeprefix(ledger_keys.CARD)


def accrual_shards(issuer: str, month: str) -> list[str]:
    """Every partition of one month's accruals: one query each finds its cards."""
    return [f"{ACCRUAL}{issuer}#{month}#{n:02d}" for n in range(ledger_keys.SHARDS)]


def rebate_rates(issuer: str) -> str:
    """The partition of an issuer's campaign-period rebate rates (a handful)."""
    return f"REBATE_RATES#{issuer}"


def rebate_rate(issuer: str, rate_id: str) -> tuple[str, str]:
    return rebate_rates(issuer), RATE + rate_id


def rebate_state(idm: str) -> tuple[str, str]:
    """A card's rebate account: what its settled months earn and what was granted for them."""
    return ledger_keys.card(idm)[0], "REBATE"


def rebate_state_idm(pk: str) -> str:
    return pk.removeprefix(ledger_keys.CARD)
