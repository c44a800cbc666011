"""Every DynamoDB key string and S3 object key of the reports context, built and parsed here.

    AGG#<issuer>#<YYYY-MM>#<shard>       TOTALS             a month's grants by source, expired,
                                                             voided, transferred (one shard's share)
    AGG#<issuer>#<YYYY-MM>#<shard>       MERCHANT#<id>      a month's point payments at one merchant
    AGG#<issuer>#<YYYY-MM>#<shard>       CAMPAIGN#<name>    a month's campaign grants, per campaign
    AGG#<issuer>#OUTSTANDING#<shard>     EXPIRES#<YYYY-MM>  points still on cards, by expiry month
    ANCHOR#<issuer>                      <YYYY-MM-DD>       a day's anchor of every chain head
    AUDIT#<issuer>#<YYYY-MM-DD>#<shard>  <chunk>            a paused audit piece's verified heads

The shard is the change's own, 0..AGGREGATE_SHARDS-1, taken from its entry id
(`aggregate_shard`): a hash of the caller's request id, so even over changes whatever mix
of cards makes them, and the same when a change is tried again. One month's figures of an
issuer spread over AGGREGATE_SHARDS partitions and no item takes more than about
1/AGGREGATE_SHARDS of an issuer's changes (bench/hot_items.py measures it; the target is
at most 1/64). The shard number is written with at least two digits, so the items
written before under the card's shard (0..15, chalicelib/ledger/keys.py `SHARDS`) have
keys among these and are summed with them.

In the reports bucket:

    reports/<issuer>/<YYYY-MM>/<name>.csv        one report of a month (service.REPORTS)
    reports/<issuer>/<YYYY-MM>/manifest.json     written last: the month's reports are done
    anchors/<issuer>/<YYYY-MM-DD>/<digest>.json  a day's anchor file
    anchor-shards/<issuer>/<YYYY-MM-DD>/<shard>/<digest>.json  one shard's part of it
"""

from __future__ import annotations

import hashlib
from datetime import date

# The report figures' own shard count (not the ledger's SHARDS): a change writes its
# figures in one of these, so an item takes ~1/128 of an issuer's changes, which keeps
# the most written item of a 10,000-change run under 1/64 (bench/hot_items.py). A report
# reads one query (or a key of a BatchGetItem) per shard. Never lowered: figures written
# under a shard number a read does not list would not be summed.
AGGREGATE_SHARDS = 128

AGGREGATE = "AGG#"
OUTSTANDING = "OUTSTANDING"
TOTALS = "TOTALS"
MERCHANT = "MERCHANT#"
CAMPAIGN = "CAMPAIGN#"
EXPIRES = "EXPIRES#"
ANCHOR = "ANCHOR#"
AUDIT_CHUNK = "AUDIT#"
REPORT_SUFFIX = ".csv"


def aggregate_shard(entry_id: str) -> int:
    """The shard of a change's figures, 0..AGGREGATE_SHARDS-1, from its entry id (derived
    from the caller's request id): even over changes, and the same on every try of one."""
    return int(hashlib.sha256(entry_id.encode()).hexdigest()[:8], 16) % AGGREGATE_SHARDS


def month_partition(issuer_id: str, month: str, shard_no: int) -> str:
    return f"{AGGREGATE}{issuer_id}#{month}#{shard_no:02d}"


def month_partitions(issuer_id: str, month: str) -> list[str]:
    """The AGGREGATE_SHARDS partitions holding one issuer's figures for one month (with
    those of shards 0..15 written under the card's shard before)."""
    return [month_partition(issuer_id, month, n) for n in range(AGGREGATE_SHARDS)]


def outstanding_partition(issuer_id: str, shard_no: int) -> str:
    return f"{AGGREGATE}{issuer_id}#{OUTSTANDING}#{shard_no:02d}"


def outstanding_partitions(issuer_id: str) -> list[str]:
    return [outstanding_partition(issuer_id, n) for n in range(AGGREGATE_SHARDS)]


def merchant(merchant_id: str) -> str:
    return MERCHANT + merchant_id


def campaign(name: str) -> str:
    return CAMPAIGN + name


def expires(month: str) -> str:
    return EXPIRES + month


def anchor(issuer_id: str, day: date) -> tuple[str, str]:
    return ANCHOR + issuer_id, day.isoformat()


def anchor_partition(issuer_id: str) -> str:
    return ANCHOR + issuer_id


def audit_chunk(issuer_id: str, day: date, shard_no: int, chunk: int) -> tuple[str, str]:
    """A paused audit piece's checkpoint: the heads it verified before its cursor."""
    return f"{AUDIT_CHUNK}{issuer_id}#{day.isoformat()}#{shard_no:02d}", f"{chunk:06d}"


def audit_chunk_partition(issuer_id: str, day: date, shard_no: int) -> str:
    return audit_chunk(issuer_id, day, shard_no, 0)[0]


# --- S3 ----------------------------------------------------------------------------


def report_prefix(issuer_id: str, month: str) -> str:
    """Every object of one issuer's month (the reports and the manifest) starts with this."""
    return f"reports/{issuer_id}/{month}/"


def report_object(issuer_id: str, month: str, name: str) -> str:
    return f"{report_prefix(issuer_id, month)}{name}{REPORT_SUFFIX}"


def report_name(key: str, issuer_id: str, month: str) -> str | None:
    """The report name in an object key of the month (None for any other key, such as
    the manifest or another month's object)."""
    rest = key.removeprefix(report_prefix(issuer_id, month))
    if rest == key or "/" in rest or not rest.endswith(REPORT_SUFFIX):
        return None
    return rest.removesuffix(REPORT_SUFFIX)


def report_manifest(issuer_id: str, month: str) -> str:
    """Written after a month's reports: its presence means the month is done."""
    return f"{report_prefix(issuer_id, month)}manifest.json"


def anchor_partition_prefix(issuer_id: str) -> str:
    """Every anchor file of one issuer starts with this (in the anchors bucket)."""
    return f"anchors/{issuer_id}/"


def anchor_day_prefix(issuer_id: str, day: date) -> str:
    """Every anchor file of one issuer's day starts with this; digests are hex, so `~`
    sorts after every file of the day."""
    return f"{anchor_partition_prefix(issuer_id)}{day.isoformat()}/"


def anchor_object(issuer_id: str, day: date, digest: str) -> str:
    """Named by its digest, so an anchor file is never overwritten by another one."""
    return f"{anchor_day_prefix(issuer_id, day)}{digest}.json"


def shard_anchor_prefix(issuer_id: str, day: date, shard_no: int) -> str:
    """Every file of one shard's anchor of a day (beside `anchors/`, so a day's prefix
    there still holds its one day file)."""
    return f"anchor-shards/{issuer_id}/{day.isoformat()}/{shard_no:02d}/"


def shard_anchor_object(issuer_id: str, day: date, shard_no: int, digest: str) -> str:
    return f"{shard_anchor_prefix(issuer_id, day, shard_no)}{digest}.json"
