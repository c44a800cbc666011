"""The ledger's items in the application table (chalicelib/table.py):

    CARD#<idm>        CARD                 the card: status, lots, chain head, version
    CARD#<idm>        ENTRY#<seq>          one chained entry (canonical JSON body + hashes)
    REQ#<entry id>    REQ                  the request that made an entry: fingerprint, result
    CARDNO#<number>   CARDNO               card number → IDm, and its uniqueness
    CANCELLED#<id>    CANCELLED            a point payment's cancel, at most one
    ISSUER#<id>       ISSUER               issuer settings
    ISSUERS           ISSUER#<id>          the list of issuers (a handful), for the daily jobs

Index `by-expiry` (sparse, keys and `type` only): a card item carries `expiry_key` =
EXP#<issuer>#<day>#<shard> for the earliest expiry among its lots that still hold points,
and no `expiry_key` once none does. The expiry job queries the 16 shards of a day, so
its reads follow the lots due, not the number of cards. The key is part of every card
write, so keeping the index costs no extra request.

Index `by-change` (sparse, keys and `type` only): every card write carries `change_key` =
CHG#<issuer>#<day>#<shard>, the issuer's local day of the write. The key moves only on a
card's first write of a day, so most writes cost the index nothing; the daily audit
queries the days since its last anchor, shard by shard, and so reads the cards that
changed, never the whole table.

A change is one TransactWriteItems: the card put under its version, the entry and the
request record put under attribute_not_exists. A read before it is one BatchGetItem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.transactions import TransactWrite

from ..table import Claim, ClaimItem, Refused, Table, TableItem, Transaction, Write, failed_positions, put_claims
from . import keys
from .chain import canonical_json
from .domain import Card, CardStatus, Entry, Issuer, Lot, Source
from .errors import CardAlreadyExists


class CardsByExpiry(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-expiry"
        # The keys and the discriminator, which PynamoDB filters a CardItem query on.
        projection = IncludeProjection(["type"])

    expiry_key = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class CardsByDormancy(GlobalSecondaryIndex):
    """Sparse, like by-expiry: a card that is open and has had a grant or spend carries
    `dormancy_key` = DORM#<issuer>#<last activity day>#<shard>. The key moves only when
    the card's last activity does (its first grant or spend of a day), so most card
    writes cost the index nothing; the dormancy job queries the days whose 60 months
    have just run out."""

    class Meta:
        index_name = "by-dormancy"
        projection = IncludeProjection(["type"])

    dormancy_key = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class CardsByChange(GlobalSecondaryIndex):
    """Sparse, like by-expiry: `change_key` = CHG#<issuer>#<day of the last write>#<shard>."""

    class Meta:
        index_name = "by-change"
        projection = IncludeProjection(["type"])

    change_key = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class CardItem(TableItem, discriminator="card"):
    issuer = UnicodeAttribute()
    card_number = UnicodeAttribute()
    status = UnicodeAttribute()
    lots = UnicodeAttribute()  # canonical JSON: compact, and exact on the way back
    seq = NumberAttribute()
    head = UnicodeAttribute()
    last_activity = UnicodeAttribute(null=True)
    birth_date = UnicodeAttribute(null=True)
    version = VersionAttribute()
    expiry_key = UnicodeAttribute(null=True)  # absent when no lot holds points: sparse
    by_expiry = CardsByExpiry()
    dormancy_key = UnicodeAttribute(null=True)  # absent when closed or never active: sparse
    by_dormancy = CardsByDormancy()
    change_key = UnicodeAttribute(null=True)  # the day of the card's last write (absent before issue 14)
    by_change = CardsByChange()


class EntryItem(TableItem, discriminator="entry"):
    body = UnicodeAttribute()
    prev = UnicodeAttribute()
    hash = UnicodeAttribute()


class RequestItem(TableItem, discriminator="request"):
    idm = UnicodeAttribute()
    seq = NumberAttribute()
    kind = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    actor = UnicodeAttribute()
    result = UnicodeAttribute()


class CardNumberItem(TableItem, discriminator="card_number"):
    idm = UnicodeAttribute()


class IssuerItem(TableItem, discriminator="issuer"):
    settings = UnicodeAttribute()


class IssuerListingItem(TableItem, discriminator="issuer_listing"):
    pass


# --- conversions -----------------------------------------------------------------


def _lots_to_json(lots: Iterable[Lot]) -> str:
    return canonical_json(
        [
            [lot.lot_id, lot.amount, lot.remaining, lot.granted_at.isoformat(),
             lot.valid_from.isoformat(), lot.expires_on.isoformat(), lot.source.value]
            for lot in lots
        ]
    )


def _lots_from_json(text: str) -> tuple[Lot, ...]:
    return tuple(
        Lot(lot_id, amount, remaining, datetime.fromisoformat(at), date.fromisoformat(vf),
            date.fromisoformat(exp), Source(src))
        for lot_id, amount, remaining, at, vf, exp, src in json.loads(text)
    )


def _card_from_item(item: CardItem) -> Card:
    return Card(
        idm=item.pk.removeprefix(keys.CARD),
        card_number=item.card_number,
        issuer=item.issuer,
        status=CardStatus(item.status),
        lots=_lots_from_json(item.lots),
        seq=item.seq,
        head=item.head,
        last_activity=date.fromisoformat(item.last_activity) if item.last_activity else None,
    )


def _expiry_key(card: Card) -> str | None:
    """The card's by-expiry key: the earliest expiry among lots still holding points."""
    due = min((lot.expires_on for lot in card.lots if lot.remaining > 0), default=None)
    return None if due is None else keys.expiry(card.issuer, due, card.idm)


def _card_item(
    card: Card, version: int | None, birth_date: str | None, changed_on: date | None = None
) -> CardItem:
    pk, sk = keys.card(card.idm)
    item = CardItem(
        pk, sk,
        issuer=card.issuer,
        card_number=card.card_number,
        status=card.status.value,
        lots=_lots_to_json(card.lots),
        seq=card.seq,
        head=card.head,
        last_activity=card.last_activity.isoformat() if card.last_activity else None,
        birth_date=birth_date,
        expiry_key=_expiry_key(card),
        dormancy_key=(
            None if card.status.closed or card.last_activity is None
            else keys.dormancy(card.issuer, card.last_activity, card.idm)
        ),
        change_key=None if changed_on is None else keys.changed(card.issuer, changed_on, card.idm),
    )
    if version is not None:
        item.version = version
    return item


# --- what the service reads and writes -------------------------------------------


@dataclass(frozen=True)
class StoredCard:
    card: Card
    version: int
    birth_date: str | None


@dataclass(frozen=True)
class StoredRequest:
    entry_id: str
    idm: str
    seq: int
    kind: str
    fingerprint: str
    actor: dict
    result: dict


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored: its canonical JSON body and the chain hashes around it."""

    body: str
    prev: str
    hash: str

    @property
    def entry(self) -> Entry:
        return Entry.from_body(json.loads(self.body))


@dataclass(frozen=True)
class CardWrite:
    """A card's new state and the entry that explains it."""

    before: StoredCard
    after: Card
    entry: StoredEntry


@dataclass(frozen=True)
class Commit:
    cards: Sequence[CardWrite]
    request: StoredRequest
    claims: Sequence[Claim] = ()
    writes: Sequence[Write] = ()
    changed_on: date | None = None  # the issuer's local day of the change (the by-change key)


@dataclass
class Snapshot:
    cards: dict[str, StoredCard] = field(default_factory=dict)
    requests: dict[str, StoredRequest] = field(default_factory=dict)


class VersionConflict(Exception):
    """Another writer changed a card between our read and our write."""


class RequestExists(Exception):
    """The request record is already there: this request was already carried out."""


def _request_from_item(item: RequestItem) -> StoredRequest:
    return StoredRequest(
        entry_id=item.pk.removeprefix(keys.REQUEST),
        idm=item.idm,
        seq=item.seq,
        kind=item.kind,
        fingerprint=item.fingerprint,
        actor=json.loads(item.actor),
        result=json.loads(item.result),
    )


class CardStore:
    """The adapter the ledger service talks to. Nothing above it touches DynamoDB."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.connection = table.connection

    # -- reads --------------------------------------------------------------------

    def load(self, idms: Iterable[str], entry_ids: Iterable[str]) -> Snapshot:
        """Cards and request records in one strongly consistent BatchGetItem."""
        wanted = [keys.card(i) for i in idms] + [keys.request(e) for e in entry_ids]
        snap = Snapshot()
        for item in TableItem.batch_get(wanted, consistent_read=True):
            if isinstance(item, CardItem):
                card = _card_from_item(item)
                snap.cards[card.idm] = StoredCard(card, item.version, item.birth_date)
            elif isinstance(item, RequestItem):
                req = _request_from_item(item)
                snap.requests[req.entry_id] = req
        return snap

    def get_card(self, idm: str) -> StoredCard | None:
        try:
            item = CardItem.get(*keys.card(idm), consistent_read=True)
        except CardItem.DoesNotExist:
            return None
        return StoredCard(_card_from_item(item), item.version, item.birth_date)

    def get_request(self, entry_id: str) -> StoredRequest | None:
        try:
            return _request_from_item(RequestItem.get(*keys.request(entry_id), consistent_read=True))
        except RequestItem.DoesNotExist:
            return None

    def initial_grant_entry(self, idm: str) -> str | None:
        """The entry id (request hash) of the card's initial grant, from its claim; None
        when the card has none (or had it before the claim existed)."""
        try:
            return ClaimItem.get(*keys.initial_grant(idm), consistent_read=True).by
        except ClaimItem.DoesNotExist:
            return None

    def idm_for_number(self, card_number: str) -> str | None:
        try:
            return CardNumberItem.get(*keys.card_number(card_number), consistent_read=True).idm
        except CardNumberItem.DoesNotExist:
            return None

    def entries(
        self, idm: str, *, newest_first: bool = True, limit: int | None = None, before_seq: int | None = None,
        from_seq: int | None = None,
    ) -> Iterator[StoredEntry]:
        pk, _ = keys.card(idm)
        if before_seq is None and from_seq is None:
            condition = TableItem.sk.startswith(keys.ENTRY)
        else:
            low = keys.entry(idm, from_seq or 0)[1]
            high = keys.entry(idm, before_seq - 1 if before_seq is not None else 9_999_999_999)[1]
            condition = TableItem.sk.between(low, high)
        for item in EntryItem.query(
            pk, condition, scan_index_forward=not newest_first, limit=limit, consistent_read=True
        ):
            yield StoredEntry(item.body, item.prev, item.hash)

    def card_ids(self) -> Iterator[str]:
        """Every card's IDm: a full scan, for audits and tests, never for a request."""
        for item in CardItem.scan(TableItem.sk == "CARD", attributes_to_get=["pk"]):
            yield item.pk.removeprefix(keys.CARD)

    def chain_heads(self, issuer_id: str) -> Iterator[tuple[str, int, str]]:
        """(IDm, seq, head) of every card of the issuer: a full scan, for the
        daily anchor. Eventually consistent: a head read a moment late is still a point
        its card's chain passes through, which is all an anchor needs."""
        for item in CardItem.scan(
            (TableItem.sk == "CARD") & (CardItem.issuer == issuer_id), attributes_to_get=["pk", "seq", "head"]
        ):
            yield item.pk.removeprefix(keys.CARD), int(item.seq), item.head

    def cards_expiring(self, issuer_id: str, day: date) -> Iterator[str]:
        """IDms of the issuer's cards whose earliest lot with points expires on `day`:
        one query per shard (paginated), eventually consistent like every index read.
        A card may be listed after a write moved it on; the caller re-reads it."""
        for key in keys.expiry_shards(issuer_id, day):
            for item in CardItem.by_expiry.query(key):
                yield keys.card_idm(item.pk)

    def cards_last_active(self, issuer_id: str, day: date) -> Iterator[str]:
        """IDms of the issuer's open cards whose last grant or spend was on `day` (the
        by-dormancy index; eventually consistent, so the caller re-reads each card)."""
        for key in keys.dormancy_shards(issuer_id, day):
            for item in CardItem.by_dormancy.query(key):
                yield keys.card_idm(item.pk)

    def cards_changed(self, issuer_id: str, day: date, shard_no: int) -> Iterator[str]:
        """IDms of the issuer's cards in shard `shard_no` whose last write was on `day`
        (the by-change index: one paginated query, eventually consistent), by IDm."""
        for item in CardItem.by_change.query(keys.changed_shard(issuer_id, day, shard_no)):
            yield keys.card_idm(item.pk)

    def issuer_ids(self) -> list[str]:
        """Every issuer, from the small ISSUERS partition (one query)."""
        return [
            keys.issuer_from_listing(item.sk)
            for item in IssuerListingItem.query(keys.ISSUERS, TableItem.sk.startswith(keys.ISSUER))
        ]

    def get_issuer(self, issuer_id: str) -> Issuer | None:
        try:
            item = IssuerItem.get(*keys.issuer(issuer_id))
        except IssuerItem.DoesNotExist:
            return None
        data = json.loads(item.settings)
        data["closures"] = tuple(date.fromisoformat(d) for d in data.get("closures", ()))
        return Issuer(issuer_id=issuer_id, **data)

    # -- writes -------------------------------------------------------------------

    def put_issuer(self, issuer: Issuer) -> None:
        data = {k: v for k, v in issuer.__dict__.items() if k != "issuer_id"}
        data["closures"] = [d.isoformat() for d in issuer.closures]
        with TransactWrite(connection=self.connection) as tx:
            tx.save(IssuerItem(*keys.issuer(issuer.issuer_id), settings=canonical_json(data)))
            tx.save(IssuerListingItem(*keys.issuer_listing(issuer.issuer_id)))

    def add_card(self, card: Card, birth_date: str | None = None, *, changed_on: date | None = None) -> None:
        """A new card and its card number, both unique, in one transaction."""
        number_pk, number_sk = keys.card_number(card.card_number)
        try:
            with TransactWrite(connection=self.connection) as tx:
                tx.save(_card_item(card, None, birth_date, changed_on))
                tx.save(
                    CardNumberItem(number_pk, number_sk, idm=card.idm),
                    condition=TableItem.pk.does_not_exist(),
                )
        except TransactWriteError as exc:
            if failed_positions(exc):
                raise CardAlreadyExists() from exc
            raise

    def commit(self, commit: Commit) -> None:
        """Write every card with its entry, the request record, the claims and the other
        writes atomically. Raises RequestExists, ClaimExists, WriteRefused or VersionConflict."""
        req = commit.request
        with_request = RequestItem(
            *keys.request(req.entry_id),
            idm=req.idm,
            seq=req.seq,
            kind=req.kind,
            fingerprint=req.fingerprint,
            actor=canonical_json(req.actor),
            result=canonical_json(req.result),
        )
        tx = Transaction(self.connection)
        for write in commit.cards:
            tx.put(_card_item(write.after, write.before.version, write.before.birth_date, commit.changed_on), "card")
            e = write.entry
            tx.put(
                EntryItem(*keys.entry(write.after.idm, write.after.seq), body=e.body, prev=e.prev, hash=e.hash),
                "entry",
                TableItem.pk.does_not_exist(),
            )
        tx.put(with_request, "request", TableItem.pk.does_not_exist())
        for claim in commit.claims:
            tx.claim(claim, req.entry_id)
        for extra in commit.writes:
            tx.write(extra)
        try:
            tx.commit()
        except Refused as exc:
            if "request" in exc.names:
                raise RequestExists() from exc
            exc.raise_for_claims_and_writes()
            raise VersionConflict() from exc

    def put_claims(self, claims: Sequence[Claim], by: str) -> None:
        put_claims(self.connection, claims, by)
