"""Key strings of the reconciliation context, built and parsed in one place.

    RECON#<issuer>#<month>#<shard>   RECORD#<idm>#<seq>   a record awaiting its settlement line
    RECON#<issuer>#<month>#<shard>   LINE#<line id>       a settlement line that matched no record
    RECON_MONTHS#<issuer>            MONTH#<month>        the month's settlement file has arrived

The month is the record's (or the line's) in the issuer's time zone; the shard is the
card's for a record and the line id's for a line, so neither list has a hot partition
and the report reads 16 partitions per month, whatever the number of records matched.
"""

from __future__ import annotations

from ..ledger.keys import SHARDS, shard

RECON = "RECON#"
RECORD = "RECORD#"
LINE = "LINE#"
MONTH = "MONTH#"


def month_shards(issuer: str, month: str) -> list[str]:
    """Every partition of one month's unmatched records and lines: one query each."""
    return [f"{RECON}{issuer}#{month}#{n:02d}" for n in range(SHARDS)]


def awaiting_record(issuer: str, month: str, idm: str, card_seq: int) -> tuple[str, str]:
    return month_shards(issuer, month)[shard(idm)], f"{RECORD}{idm}#{card_seq:05d}"


def record_of(sk: str) -> tuple[str, int]:
    """The IDm and card sequence number of an awaiting record's sort key."""
    idm, seq = sk.removeprefix(RECORD).split("#")
    return idm, int(seq)


def unmatched_line(issuer: str, month: str, line_id: str) -> tuple[str, str]:
    return month_shards(issuer, month)[shard(line_id)], LINE + line_id


def received_months(issuer: str) -> str:
    """The partition of an issuer's received months (twelve a year, written by imports)."""
    return f"RECON_MONTHS#{issuer}"


def received(issuer: str, month: str) -> tuple[str, str]:
    return received_months(issuer), MONTH + month
