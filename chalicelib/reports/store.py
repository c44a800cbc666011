"""The reports' items in the application table (keys: reports/keys.py) and their S3 files.

Aggregate items are written only by the ledger, inside each change's own
TransactWriteItems (`aggregate_writes`, through `ledger_aggregates`, the hook the
composition root installs in the Ledger): unconditional ADDs, one update per item, so
the figures move with the entries or not at all and cost no extra round trip. A change
writes them in the shard of its entry id (keys.aggregate_shard, one of
keys.AGGREGATE_SHARDS), so no item is in more than ~1/128 of an issuer's transactions
and conflicts on them do not cap an issuer's rate. A report reads one month's
AGGREGATE_SHARDS partitions (or the outstanding ones), so its cost follows the months
and lines it reports, never the number of entries.

Anchors: `ANCHOR#<issuer>` / `<day>` holds the digest, the count and the S3 key of the
anchor file (every card's IDm, seq and head), put once (attribute_not_exists). The file
goes to the anchors bucket, which has S3 Object Lock in COMPLIANCE mode by default
(infra/template.json): no one, whatever their IAM rights, can delete or shorten the
retention of a version written there. What the audit trusts is therefore the bucket, not
the item: the day's anchor is the first version written under the day's prefix
(`anchor_file`). A later version of the same key, another file of the day, or an item
pointing elsewhere cannot take its place.

The daily audit takes the day's anchor shard by shard: each shard's heads go first to
their own locked file, `anchor-shards/<issuer>/<day>/<shard>/<digest>.json` (its cards'
IDm, seq and head, and the cards that failed), which the next day's piece of that shard
reads instead of scanning the table; the day file is then sealed from them. A piece
paused by its budget leaves the heads it verified in `AUDIT#<issuer>#<day>#<shard>`
chunk items, read back when it finishes.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..ledger.keys import SHARDS
from ..table import Table, TableItem, Write
from . import keys
from .domain import COUNTERS, Bucket, ChainHead, Kind, Tallies, tallies
from .errors import ReportsError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from botocore.exceptions import ClientError

    from ..ledger.domain import Entry


class AggregateItem(TableItem, discriminator="aggregate"):
    # One number per counter (reports.domain.COUNTERS); an item holds only the ones it adds to.
    spent = NumberAttribute(null=True)
    cancelled = NumberAttribute(null=True)
    expired = NumberAttribute(null=True)
    voided = NumberAttribute(null=True)
    transferred_in = NumberAttribute(null=True)
    transferred_out = NumberAttribute(null=True)
    granted = NumberAttribute(null=True)
    points = NumberAttribute(null=True)
    granted_initial = NumberAttribute(null=True)
    granted_rebate = NumberAttribute(null=True)
    granted_event = NumberAttribute(null=True)
    granted_admin = NumberAttribute(null=True)
    granted_campaign = NumberAttribute(null=True)
    granted_transfer = NumberAttribute(null=True)

    def counts(self) -> Counter:
        return Counter({name: int(getattr(self, name)) for name in COUNTERS if getattr(self, name) is not None})


class AnchorItem(TableItem, discriminator="anchor"):
    digest = UnicodeAttribute()
    count = NumberAttribute()
    object_key = UnicodeAttribute()
    taken_at = UnicodeAttribute()


CHUNK_HEADS = 2000  # ~100 bytes each


class AuditChunkItem(TableItem, discriminator="audit_chunk"):
    heads = UnicodeAttribute()  # JSON: [[idm, seq, head], ...] verified before the cursor
    failures = UnicodeAttribute()  # JSON: [[idm, seq, problem], ...]


@dataclass(frozen=True)
class ShardAnchor:
    """One shard's part of a day's anchor, as first written to the anchors bucket."""

    key: str
    digest: str
    heads: list[ChainHead]
    failures: list[tuple[str, int | None, str]]
    shards: int  # how many shards the day was split into (the card → shard mapping)


def _bucket_key(issuer_id: str, bucket: Bucket, shard_no: int) -> tuple[str, str]:
    if bucket.kind is Kind.OUTSTANDING:
        return keys.outstanding_partition(issuer_id, shard_no), keys.expires(bucket.month)
    pk = keys.month_partition(issuer_id, bucket.month, shard_no)
    if bucket.kind is Kind.MERCHANT:
        return pk, keys.merchant(bucket.dimension)
    if bucket.kind is Kind.CAMPAIGN:
        return pk, keys.campaign(bucket.dimension)
    return pk, keys.TOTALS


class AggregateRefused(ReportsError):
    """Never raised in practice: an aggregate update carries no condition."""

    code = "aggregate_refused"


def aggregate_writes(issuer_id: str, entry_id: str, tallies: Tallies) -> list[Write]:
    """The ADD updates a change makes to the report items, one per item, in the shard
    of the change's entry id: the same on every try of the change, and even over an
    issuer's changes whichever cards make them."""
    shard_no = keys.aggregate_shard(entry_id)
    writes = []
    for bucket, counts in sorted(tallies.items(), key=lambda kv: (kv[0].kind, kv[0].month, kv[0].dimension)):
        item = AggregateItem(*_bucket_key(issuer_id, bucket, shard_no))
        actions = [AggregateItem.type.set(AggregateItem)]
        actions += [getattr(AggregateItem, name).add(n) for name, n in sorted(counts.items())]
        writes.append(Write(item, AggregateRefused, actions=tuple(actions)))
    return writes


def ledger_aggregates(issuer_id: str, idm: str, entries: Sequence[Entry]) -> list[Write]:
    """The Ledger's `extra_writes` hook (installed by chalicelib/services.py and the test
    fixtures): the report figures of a change's entries, written in its transaction.
    Every entry of a change carries the change's entry id (`request`)."""
    if not entries:
        return []
    return aggregate_writes(issuer_id, entries[0].request, tallies(entries))


@dataclass(frozen=True)
class Anchor:
    issuer_id: str
    day: date
    digest: str
    count: int
    object_key: str
    taken_at: str


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int  # bytes
    modified: datetime  # when S3 stored it (UTC)


class ReportStore:
    """Reads the aggregate items, keeps the anchors, and writes and reads the report files in S3."""

    def __init__(self, table: Table, s3, bucket: str, *, anchors_bucket: str) -> None:
        self.table = table
        self.s3 = s3
        self.bucket = bucket
        self.anchors_bucket = anchors_bucket  # Object Lock (COMPLIANCE): the anchor files only

    # -- aggregates -----------------------------------------------------------------

    def month_lines(self, issuer_id: str, month: str, prefix: str) -> dict[str, Counter]:
        """One month's items whose sort key starts with `prefix`, summed over the
        AGGREGATE_SHARDS shards, by the rest of the sort key: one query per shard."""
        lines: dict[str, Counter] = defaultdict(Counter)
        for pk in keys.month_partitions(issuer_id, month):
            for item in AggregateItem.query(pk, TableItem.sk.startswith(prefix), consistent_read=True):
                lines[item.sk.removeprefix(prefix)].update(item.counts())
        return dict(lines)

    def month_totals(self, issuer_id: str, month: str) -> Counter:
        """One month's TOTALS items summed over the shards: one BatchGetItem per 100
        shards (PynamoDB splits the keys at DynamoDB's limit), 2 for 128."""
        wanted = [(pk, keys.TOTALS) for pk in keys.month_partitions(issuer_id, month)]
        total: Counter = Counter()
        for item in AggregateItem.batch_get(wanted, consistent_read=True):
            total.update(item.counts())
        return total

    def outstanding(self, issuer_id: str) -> dict[str, int]:
        """Points on the issuer's cards by expiry month: one query per shard."""
        by_month: Counter = Counter()
        for pk in keys.outstanding_partitions(issuer_id):
            for item in AggregateItem.query(pk, TableItem.sk.startswith(keys.EXPIRES), consistent_read=True):
                by_month[item.sk.removeprefix(keys.EXPIRES)] += int(item.points or 0)
        return dict(by_month)

    # -- anchors --------------------------------------------------------------------

    def put_anchor(self, anchor: Anchor) -> bool:
        """Put the day's anchor once; False when the day already has one."""
        from pynamodb.exceptions import PutError

        item = AnchorItem(
            *keys.anchor(anchor.issuer_id, anchor.day),
            digest=anchor.digest,
            count=anchor.count,
            object_key=anchor.object_key,
            taken_at=anchor.taken_at,
        )
        try:
            item.save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_anchor(self, issuer_id: str, day: date) -> Anchor | None:
        try:
            item = AnchorItem.get(*keys.anchor(issuer_id, day), consistent_read=True)
        except AnchorItem.DoesNotExist:
            return None
        return _anchor(issuer_id, item)

    def latest_anchor(self, issuer_id: str, before: date) -> Anchor | None:
        """The newest anchor taken on a day before `before`."""
        for item in AnchorItem.query(
            keys.anchor_partition(issuer_id), TableItem.sk < before.isoformat(), scan_index_forward=False, limit=1
        ):
            return _anchor(issuer_id, item)
        return None

    # -- S3 ---------------------------------------------------------------------------

    def put_object(self, key: str, body: bytes, content_type: str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return key

    def get_object(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def read_if_present(self, key: str) -> bytes | None:
        """The object's bytes as stored, or None when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            return self.get_object(key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with `prefix`, by key."""
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [StoredObject(o["Key"], o["Size"], o["LastModified"]) for o in page.get("Contents", [])]
        return found

    def put_anchor_file(self, key: str, issuer_id: str, day: date, digest: str, heads: list[ChainHead]) -> None:
        """Written to the anchors bucket, where the bucket's default retention locks it."""
        body = {
            "issuer": issuer_id,
            "date": day.isoformat(),
            "count": len(heads),
            "digest": digest,
            "algorithm": "sha256 over '<issuer>\\n<date>\\n<count>\\n' + '<idm> <seq> <head>\\n' per card, by idm",
            "cards": [[h.idm, h.seq, h.head] for h in sorted(heads, key=lambda h: h.idm)],
        }
        self.s3.put_object(Bucket=self.anchors_bucket, Key=key, ContentType="application/json",
                           Body=json.dumps(body, ensure_ascii=False, indent=0).encode())

    def anchor_file(self, issuer_id: str, day: date) -> tuple[str, dict] | None:
        """The day's anchor file as first written (its key and content), or None when the
        anchors bucket has none: the oldest version of any object under the day's prefix,
        which Object Lock keeps whatever is written there after it."""
        return self._first_version(keys.anchor_day_prefix(issuer_id, day))

    def put_shard_anchor(self, issuer_id: str, day: date, shard_no: int, digest: str, heads: list[ChainHead],
                         failures: Sequence[tuple[str, int | None, str]], card_shards: int = SHARDS) -> str:
        """One shard's heads of the day, to the anchors bucket (locked by its default
        retention). JSON with one card a line after a one-line header, so the seal can
        read it as a stream (`shard_anchor_rows`)."""
        key = keys.shard_anchor_object(issuer_id, day, shard_no, digest)
        header = {
            "issuer": issuer_id,
            "date": day.isoformat(),
            "shard": shard_no,
            "shards": card_shards,
            "count": len(heads),
            "digest": digest,
            "algorithm": "sha256 over '<issuer>\\n<date>\\nshard <n>\\n<count>\\n' + '<idm> <seq> <head>\\n' "
                         "per card, by idm",
            "failures": [list(f) for f in failures],
        }
        rows = ",\n".join(json.dumps([h.idm, h.seq, h.head]) for h in sorted(heads, key=lambda h: h.idm))
        body = json.dumps(header, ensure_ascii=False)[:-1] + ',\n"cards": [\n' + rows + "\n]}\n"
        self.s3.put_object(Bucket=self.anchors_bucket, Key=key, ContentType="application/json", Body=body.encode())
        return key

    def shard_anchor(self, issuer_id: str, day: date, shard_no: int) -> ShardAnchor | None:
        """The shard's file of the day as first written, or None when there is none yet."""
        found = self._first_version(keys.shard_anchor_prefix(issuer_id, day, shard_no))
        if found is None:
            return None
        key, data = found
        return ShardAnchor(key, data["digest"], heads_of(data),
                           [(idm, seq, problem) for idm, seq, problem in data.get("failures", [])],
                           int(data.get("shards", SHARDS)))

    def shard_anchor_header(self, issuer_id: str, day: date, shard_no: int) -> dict | None:
        """The shard file's first line (count, shards, failures, …) without its cards."""
        first = self._first_version_key(keys.shard_anchor_prefix(issuer_id, day, shard_no))
        if first is None:
            return None
        body = self.s3.get_object(Bucket=self.anchors_bucket, Key=first[0], VersionId=first[1])["Body"]
        try:
            return json.loads(next(body.iter_lines()).decode().rstrip(",") + "}")
        finally:
            body.close()

    def shard_anchor_rows(self, issuer_id: str, day: date, shard_no: int) -> tuple[int, Iterator[tuple]] | None:
        """The shard file's count and its (IDm, seq, head) rows, by IDm, read as a stream
        (the file as first written; None when there is none)."""
        first = self._first_version_key(keys.shard_anchor_prefix(issuer_id, day, shard_no))
        if first is None:
            return None
        key, version_id = first
        lines = self.s3.get_object(Bucket=self.anchors_bucket, Key=key, VersionId=version_id)["Body"].iter_lines()
        header = json.loads(next(lines).decode().rstrip(",") + "}")
        next(lines)  # "cards": [

        def rows() -> Iterator[tuple]:
            for line in lines:
                text = line.decode().rstrip(",")
                if not text:  # an empty shard's list
                    continue
                if text.startswith("]"):
                    return
                idm, seq, head = json.loads(text)
                yield idm, seq, head

        return int(header["count"]), rows()

    def put_anchor_file_rows(self, key: str, issuer_id: str, day: date, digest: str, count: int,
                             rows: Iterable[tuple]) -> None:
        """The day file as `put_anchor_file` writes it, from rows already sorted by IDm,
        spooled through a temporary file (memory up to SPOOL_BYTES, then /tmp) and sent in
        one PUT, so the bucket's default retention locks it as before and no list of
        every head is held."""
        header = {
            "issuer": issuer_id,
            "date": day.isoformat(),
            "count": count,
            "digest": digest,
            "algorithm": "sha256 over '<issuer>\\n<date>\\n<count>\\n' + '<idm> <seq> <head>\\n' per card, by idm",
        }
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            for text in _day_file_text(header, rows):
                spool.write(text.encode())
            spool.seek(0)
            self.s3.put_object(Bucket=self.anchors_bucket, Key=key, ContentType="application/json", Body=spool)

    def put_audit_chunk(self, issuer_id: str, day: date, shard_no: int, chunk: int, heads: list[ChainHead],
                        failures: Sequence[tuple[str, int | None, str]]) -> int:
        """A paused piece's checkpoint, from item `chunk` on, at most CHUNK_HEADS heads an
        item (well under DynamoDB's 400 KB); returns the next free chunk number."""
        expires = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(days=30)
        parts = [heads[n:n + CHUNK_HEADS] for n in range(0, len(heads), CHUNK_HEADS)] or [[]]
        for n, part in enumerate(parts):
            AuditChunkItem(
                *keys.audit_chunk(issuer_id, day, shard_no, chunk + n),
                heads=json.dumps([[h.idm, h.seq, h.head] for h in part]),
                failures=json.dumps([list(f) for f in failures] if n == 0 else []),
                expires_at=expires,
            ).save()
        return chunk + len(parts)

    def audit_chunks(self, issuer_id: str, day: date, shard_no: int) -> tuple[list[ChainHead], list]:
        """Every checkpoint a paused piece of the shard left: one query."""
        heads: list[ChainHead] = []
        failures: list = []
        for item in AuditChunkItem.query(keys.audit_chunk_partition(issuer_id, day, shard_no), consistent_read=True):
            heads += [ChainHead(idm, seq, head) for idm, seq, head in json.loads(item.heads)]
            failures += [tuple(f) for f in json.loads(item.failures)]
        return heads, failures

    def anchor_file_problem(self, anchor: Anchor) -> str | None:
        """Whether the anchor item matches the day's file as first written, from a LIST
        alone (the file is named by its digest): what the daily audit checks of the anchor
        it builds on, without reading every card's head."""
        first = self._first_version_key(keys.anchor_day_prefix(anchor.issuer_id, anchor.day))
        if first is None:
            return "the anchors bucket has no file for the anchor's day"
        if first[0] != anchor.object_key or not first[0].endswith(f"/{anchor.digest}.json"):
            return "the anchor file does not match the anchor's digest"
        return None

    def _first_version(self, prefix: str) -> tuple[str, dict] | None:
        first = self._first_version_key(prefix)
        if first is None:
            return None
        key, version_id = first
        body = self.s3.get_object(Bucket=self.anchors_bucket, Key=key, VersionId=version_id)["Body"].read()
        return key, json.loads(body)

    def _first_version_key(self, prefix: str) -> tuple[str, str] | None:
        first: tuple[datetime, int, str, str] | None = None
        paginator = self.s3.get_paginator("list_object_versions")
        n = 0
        for page in paginator.paginate(Bucket=self.anchors_bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                n += 1
                # S3 lists a key's versions newest first: on a tie in time, the later is older.
                candidate = (version["LastModified"], -n, version["Key"], version["VersionId"])
                if first is None or candidate[:2] < first[:2]:
                    first = candidate
        if first is None:
            return None
        return first[2], first[3]

    def first_anchor_day_after(self, issuer_id: str, after: date | None) -> date | None:
        """The earliest day after `after` (or the first day at all) that has an anchor file
        in the anchors bucket: one LIST of one key. The audit compares it with the table's
        items, so an anchor item removed from the table shows."""
        prefix = keys.anchor_partition_prefix(issuer_id)
        args = {"Bucket": self.anchors_bucket, "Prefix": prefix, "MaxKeys": 1}
        if after is not None:
            args["StartAfter"] = keys.anchor_day_prefix(issuer_id, after) + "~"  # after every file of that day
        found = self.s3.list_objects_v2(**args).get("Contents", [])
        if not found:
            return None
        return date.fromisoformat(found[0]["Key"].removeprefix(prefix).split("/", 1)[0])

    def anchor_heads(self, anchor: Anchor) -> list[ChainHead] | None:
        """The heads of the anchor's day as first written to the anchors bucket (None: no file)."""
        found = self.anchor_file(anchor.issuer_id, anchor.day)
        if found is None:
            return None
        return heads_of(found[1])


SPOOL_BYTES = 64 * 1024 * 1024  # a day file beyond this goes through /tmp


def _day_file_text(header: dict, rows: Iterable[tuple]) -> Iterator[str]:
    yield json.dumps(header, ensure_ascii=False)[:-1] + ',\n"cards": [\n'
    separator = ""
    for row in rows:
        yield separator + json.dumps(list(row), ensure_ascii=False)
        separator = ",\n"
    yield "\n]}\n"


def heads_of(data: dict) -> list[ChainHead]:
    return [ChainHead(idm, seq, head) for idm, seq, head in data["cards"]]


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _anchor(issuer_id: str, item: AnchorItem) -> Anchor:
    return Anchor(
        issuer_id=issuer_id,
        day=date.fromisoformat(item.sk),
        digest=item.digest,
        count=int(item.count),
        object_key=item.object_key,
        taken_at=item.taken_at,
    )
