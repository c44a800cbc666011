"""What the reports count, pure: no AWS, no I/O.

Every committed change adds its movements to a few aggregate buckets, in the change's
own transaction, so a report reads figures already summed and never walks entries.
A bucket is a month's share of one report line; the month is the entry's local date
(issuer time zone), so a payment at 23:59:59 JST on 31 October belongs to October:

    TOTALS    (month)            granted_<source>, expired, voided, transferred_in/out
    MERCHANT  (month, merchant)  spent, cancelled          -> settlement = spent - cancelled
    CAMPAIGN  (month, name)      granted                   (campaign grants; see below)
    OUTSTANDING (expiry month)   points                    grant, cancel, transfer_in add;
                                                           spend, expire, void, transfer_out take

A cancel counts in the month it happens (a settled month is never reopened; the
cancel lowers the settlement of the month it is made in). A campaign grant's entry
holds the campaign's name as its reason, not the campaign id, so campaign totals are
per campaign name.

Reconciliation, for any set of entries E and the cards they leave:

    sum over months of TOTALS/MERCHANT figures == the movements of E summed by op
    OUTSTANDING[m] == sum of remaining over lots expiring in month m
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from .. import csv_files
from ..ledger.domain import Entry, Op, Source
from .errors import InvalidMonth


class Kind(StrEnum):
    TOTALS = "totals"
    MERCHANT = "merchant"
    CAMPAIGN = "campaign"
    OUTSTANDING = "outstanding"


@dataclass(frozen=True)
class Bucket:
    """One aggregate item, named without key strings: a month's (or, for OUTSTANDING,
    an expiry month's) figures of one report line."""

    kind: Kind
    month: str  # YYYY-MM
    dimension: str = ""  # the merchant id or campaign name


# The counters an aggregate item holds (attribute names of reports.store.AggregateItem).
SPENT = "spent"
CANCELLED = "cancelled"
EXPIRED = "expired"
VOIDED = "voided"
TRANSFERRED_IN = "transferred_in"
TRANSFERRED_OUT = "transferred_out"
GRANTED = "granted"
POINTS = "points"


def granted_counter(source: Source) -> str:
    return f"granted_{source.value}"


COUNTERS = (
    SPENT, CANCELLED, EXPIRED, VOIDED, TRANSFERRED_IN, TRANSFERRED_OUT, GRANTED, POINTS,
    *(granted_counter(s) for s in Source),
)

Tallies = dict[Bucket, Counter]


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def tallies(entries: Iterable[Entry]) -> Tallies:
    """The aggregate increments of `entries`, zeros dropped: what their transaction
    adds to the report items (a transfer's two entries net out in OUTSTANDING)."""
    out: dict[Bucket, Counter] = defaultdict(Counter)
    for entry in entries:
        month = month_of(entry.day)
        totals = out[Bucket(Kind.TOTALS, month)]
        for m in entry.movements:
            outstanding = out[Bucket(Kind.OUTSTANDING, month_of(m.expires_on))]
            if m.op is Op.GRANT:
                source = Source(entry.result["source"])
                totals[granted_counter(source)] += m.amount
                if source is Source.CAMPAIGN:
                    out[Bucket(Kind.CAMPAIGN, month, entry.reason or "")][GRANTED] += m.amount
                outstanding[POINTS] += m.amount
            elif m.op in (Op.SPEND, Op.CANCEL):
                merchant = out[Bucket(Kind.MERCHANT, month, entry.actor.merchant or "")]
                merchant[SPENT if m.op is Op.SPEND else CANCELLED] += m.amount
                outstanding[POINTS] += m.amount if m.op is Op.CANCEL else -m.amount
            else:
                counter = {
                    Op.EXPIRE: EXPIRED, Op.VOID: VOIDED,
                    Op.TRANSFER_IN: TRANSFERRED_IN, Op.TRANSFER_OUT: TRANSFERRED_OUT,
                }[m.op]
                totals[counter] += m.amount
                outstanding[POINTS] += m.amount if m.op is Op.TRANSFER_IN else -m.amount
    result: Tallies = {}
    for bucket, counts in out.items():
        kept = Counter({name: n for name, n in counts.items() if n != 0})
        if kept:
            result[bucket] = kept
    return result


# --- the reports --------------------------------------------------------------------

BOM = "\ufeff"


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a byte order mark and CRLF line ends: Excel opens it as UTF-8. Text
    that starts like a formula is written as text (csv_files); figures stay int."""
    return csv_files.to_csv([header, *rows])


@dataclass(frozen=True)
class SettlementLine:
    merchant_id: str
    name: str
    spent: int
    cancelled: int

    @property
    def net(self) -> int:
        return self.spent - self.cancelled


def settlement_lines(
    by_merchant: Mapping[str, Mapping[str, int]], names: Mapping[str, str]
) -> list[SettlementLine]:
    lines = [
        SettlementLine(mid, names.get(mid, "") if mid else "(加盟店なし)", c.get(SPENT, 0), c.get(CANCELLED, 0))
        for mid, c in by_merchant.items()
    ]
    return sorted((line for line in lines if line.spent or line.cancelled), key=lambda line: line.merchant_id)


def settlement_csv(month: str, lines: Sequence[SettlementLine]) -> bytes:
    """What the city pays each store for `month`: points spent there, net of cancels."""
    rows: list[list[object]] = [
        [month, line.merchant_id, line.name, line.spent, line.cancelled, line.net] for line in lines
    ]
    rows.append([month, "合計", "", sum(x.spent for x in lines), sum(x.cancelled for x in lines),
                 sum(x.net for x in lines)])
    return to_csv(["対象月", "加盟店ID", "加盟店名", "利用ポイント", "取消ポイント", "精算ポイント"], rows)


def outstanding_csv(as_of: str, by_expiry: Mapping[str, int]) -> bytes:
    """Points still on cards (the city's liability), by the month they expire."""
    rows: list[list[object]] = [[as_of, m, n] for m, n in sorted(by_expiry.items()) if n]
    rows.append([as_of, "合計", sum(by_expiry.values())])
    return to_csv(["集計時点", "有効期限月", "未使用ポイント"], rows)


def expired_voided_csv(month: str, totals: Mapping[str, int]) -> bytes:
    return to_csv(
        ["対象月", "失効ポイント", "抹消ポイント", "移行元ポイント", "移行先ポイント"],
        [[month, totals.get(EXPIRED, 0), totals.get(VOIDED, 0), totals.get(TRANSFERRED_OUT, 0),
          totals.get(TRANSFERRED_IN, 0)]],
    )


SOURCE_LABELS = {
    Source.INITIAL: "初回付与",
    Source.REBATE: "還元",
    Source.EVENT: "イベント",
    Source.ADMIN: "行政ポイント",
    Source.CAMPAIGN: "キャンペーン",
    Source.TRANSFER: "移行",
}


def grants_csv(month: str, totals: Mapping[str, int]) -> bytes:
    """Rebates granted in `month`, beside every other source's grants for context."""
    rows = [[month, s.value, SOURCE_LABELS[s], totals.get(granted_counter(s), 0)] for s in Source]
    return to_csv(["対象月", "付与区分", "区分名", "付与ポイント"], rows)


def campaigns_csv(month: str, by_campaign: Mapping[str, int]) -> bytes:
    rows: list[list[object]] = [[month, name, n] for name, n in sorted(by_campaign.items()) if n]
    rows.append([month, "合計", sum(by_campaign.values())])
    return to_csv(["対象月", "キャンペーン名", "付与ポイント"], rows)


def previous_month(day: date) -> str:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return f"{year:04d}-{month:02d}"


MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # ASCII digits: the month goes into S3 keys


def checked_month(text: str) -> str:
    """`text` when it is a month as the reports name it (YYYY-MM); InvalidMonth if not."""
    if not MONTH.fullmatch(text):
        raise InvalidMonth(text)
    return text


def download_name(issuer_id: str, month: str, name: str) -> str:
    """The file name a downloaded report is saved under: months and issuers never collide
    in one folder."""
    return f"{issuer_id}-{month}-{name}.csv"


# --- anchors --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainHead:
    """Where a card's chain stood when it was anchored: entry `seq` hashed to `head`."""

    idm: str
    seq: int
    head: str


def anchor_digest(issuer_id: str, day: date, heads: Sequence[ChainHead]) -> str:
    """SHA-256 over the day, the count and every (IDm, seq, head), sorted by IDm: one
    line each, so an auditor can recompute it from the anchor file with any tool."""
    lines = [f"{issuer_id}\n{day.isoformat()}\n{len(heads)}\n"]
    lines += [f"{h.idm} {h.seq} {h.head}\n" for h in sorted(heads, key=lambda h: h.idm)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def shard_digest(issuer_id: str, day: date, shard_no: int, heads: Sequence[ChainHead]) -> str:
    """One shard's part of a day's anchor: the same lines, headed by the shard number."""
    lines = [f"{issuer_id}\n{day.isoformat()}\nshard {shard_no}\n{len(heads)}\n"]
    lines += [f"{h.idm} {h.seq} {h.head}\n" for h in sorted(heads, key=lambda h: h.idm)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()
