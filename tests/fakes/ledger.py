"""An in-memory `CardStore` (chalicelib/ledger/store.py) for the ledger's rule tests.

It keeps what the real store keeps (cards under a version, chained entries, request
records, card numbers, claims, issuers) in dicts, and refuses what DynamoDB's conditions
refuse, with the same exceptions: a commit is all-or-nothing and raises RequestExists,
ClaimExists or VersionConflict as the real one does. Index reads (`cards_expiring`,
`cards_last_active`) list cards in the order the real shard queries do.

Not supported: other contexts' `Write`s (a Commit's `writes`, carrying PynamoDB items
and conditions). A fake ledger is built without the `extra_writes` hook (the reports'
aggregates), and `commit` refuses a Commit that carries writes with FakeCannotWrite:
a test about those writes belongs on moto. `table` is None: no other context's store
can be built on a fake ledger.

Usage: `Ledger(FakeCardStore(), clock=clock)`; tests/contract/test_card_store.py holds
the cases both stores pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from chalicelib.ledger import keys
from chalicelib.ledger.chain import canonical_json
from chalicelib.ledger.domain import Card, Issuer
from chalicelib.ledger.errors import CardAlreadyExists
from chalicelib.ledger.store import (
    Commit,
    RequestExists,
    Snapshot,
    StoredCard,
    StoredEntry,
    StoredRequest,
    VersionConflict,
)
from chalicelib.table import Claim, ClaimExists


class FakeCannotWrite(NotImplementedError):
    """The fake was given another context's `Write` (a PynamoDB item under a condition)."""


def _copy(data: dict) -> dict:
    """What the real store returns: a fresh dict, as read back from canonical JSON."""
    return json.loads(canonical_json(data))


def _request(req: StoredRequest) -> StoredRequest:
    return StoredRequest(req.entry_id, req.idm, req.seq, req.kind, req.fingerprint, _copy(req.actor),
                         _copy(req.result))


@dataclass
class _Row:
    card: Card
    version: int
    birth_date: str | None
    changed_on: date | None = None  # the by-change index's day


class FakeCardStore:
    """The ledger's store in dicts. Not thread-safe (nor need it be: tests are serial)."""

    table = None  # no application table behind it (see the module docstring)

    def __init__(self) -> None:
        self.cards: dict[str, _Row] = {}  # IDm → the card, its version and birth date
        self.entries_of: dict[str, dict[int, StoredEntry]] = {}  # IDm → seq → entry
        self.requests: dict[str, StoredRequest] = {}
        self.numbers: dict[str, str] = {}  # card number → IDm
        self.claims: dict[tuple[str, str], str] = {}  # claim key → by (the entry id)
        self.issuers: dict[str, str] = {}  # issuer id → its settings as canonical JSON

    # -- reads --------------------------------------------------------------------

    def _stored(self, idm: str) -> StoredCard | None:
        row = self.cards.get(idm)
        return None if row is None else StoredCard(row.card, row.version, row.birth_date)

    def load(self, idms: Iterable[str], entry_ids: Iterable[str]) -> Snapshot:
        snap = Snapshot()
        for idm in idms:
            stored = self._stored(idm)
            if stored is not None:
                snap.cards[idm] = stored
        for entry_id in entry_ids:
            if entry_id in self.requests:
                snap.requests[entry_id] = _request(self.requests[entry_id])
        return snap

    def get_card(self, idm: str) -> StoredCard | None:
        return self._stored(idm)

    def get_request(self, entry_id: str) -> StoredRequest | None:
        req = self.requests.get(entry_id)
        return None if req is None else _request(req)

    def initial_grant_entry(self, idm: str) -> str | None:
        return self.claims.get(keys.initial_grant(idm))

    def idm_for_number(self, card_number: str) -> str | None:
        return self.numbers.get(card_number)

    def entries(
        self, idm: str, *, newest_first: bool = True, limit: int | None = None, before_seq: int | None = None,
        from_seq: int | None = None,
    ) -> Iterator[StoredEntry]:
        chain = self.entries_of.get(idm, {})
        seqs = sorted(s for s in chain if (before_seq is None or 0 <= s <= before_seq - 1)
                      and (from_seq is None or s >= from_seq))
        if newest_first:
            seqs.reverse()
        if limit is not None:
            seqs = seqs[:limit]
        for seq in seqs:
            yield chain[seq]

    def card_ids(self) -> Iterator[str]:
        yield from list(self.cards)

    def chain_heads(self, issuer_id: str) -> Iterator[tuple[str, int, str]]:
        for idm, row in list(self.cards.items()):
            if row.card.issuer == issuer_id:
                yield idm, row.card.seq, row.card.head

    def _indexed(self, wanted: set[str], key_of) -> Iterator[str]:
        """IDms whose index key is one of `wanted`, in the shard queries' order."""
        found = [(key, keys.CARD + idm) for idm, row in self.cards.items() if (key := key_of(row.card)) in wanted]
        for _, pk in sorted(found):
            yield keys.card_idm(pk)

    def cards_expiring(self, issuer_id: str, day: date) -> Iterator[str]:
        def key_of(card: Card) -> str | None:
            due = min((lot.expires_on for lot in card.lots if lot.remaining > 0), default=None)
            return None if due is None else keys.expiry(card.issuer, due, card.idm)

        return self._indexed(set(keys.expiry_shards(issuer_id, day)), key_of)

    def cards_last_active(self, issuer_id: str, day: date) -> Iterator[str]:
        def key_of(card: Card) -> str | None:
            if card.status.closed or card.last_activity is None:
                return None
            return keys.dormancy(card.issuer, card.last_activity, card.idm)

        return self._indexed(set(keys.dormancy_shards(issuer_id, day)), key_of)

    def cards_changed(self, issuer_id: str, day: date, shard_no: int) -> Iterator[str]:
        wanted = keys.changed_shard(issuer_id, day, shard_no)
        found = [keys.CARD + idm for idm, row in self.cards.items()
                 if row.changed_on is not None and keys.changed(row.card.issuer, row.changed_on, idm) == wanted]
        for pk in sorted(found):
            yield keys.card_idm(pk)

    def issuer_ids(self) -> list[str]:
        return sorted(self.issuers, key=lambda i: keys.issuer_listing(i)[1])

    def get_issuer(self, issuer_id: str) -> Issuer | None:
        settings = self.issuers.get(issuer_id)
        if settings is None:
            return None
        data = json.loads(settings)
        data["closures"] = tuple(date.fromisoformat(d) for d in data.get("closures", ()))
        return Issuer(issuer_id=issuer_id, **data)

    # -- writes -------------------------------------------------------------------

    def put_issuer(self, issuer: Issuer) -> None:
        data = {k: v for k, v in issuer.__dict__.items() if k != "issuer_id"}
        data["closures"] = [d.isoformat() for d in issuer.closures]
        self.issuers[issuer.issuer_id] = canonical_json(data)

    def add_card(self, card: Card, birth_date: str | None = None, *, changed_on: date | None = None) -> None:
        if card.idm in self.cards or card.card_number in self.numbers:
            raise CardAlreadyExists()
        self.cards[card.idm] = _Row(card, 1, birth_date, changed_on)
        self.numbers[card.card_number] = card.idm

    def commit(self, commit: Commit) -> None:
        """All or nothing, judged in the real store's order: the request record first
        (RequestExists), then the claims (ClaimExists), then the cards' versions and
        their entries (VersionConflict)."""
        if commit.writes:
            raise FakeCannotWrite("FakeCardStore takes no other context's Write: build the Ledger without "
                                  "extra_writes, or test this on moto")
        req = commit.request
        if req.entry_id in self.requests:
            raise RequestExists()
        for claim in commit.claims:
            if (claim.pk, claim.sk) in self.claims:
                raise ClaimExists(claim)
        for write in commit.cards:
            row = self.cards.get(write.after.idm)
            if row is None or row.version != write.before.version or write.after.seq in self.entries_of.get(
                write.after.idm, {}
            ):
                raise VersionConflict()
        for write in commit.cards:
            self.cards[write.after.idm] = _Row(write.after, write.before.version + 1, write.before.birth_date,
                                               commit.changed_on)
            self.entries_of.setdefault(write.after.idm, {})[write.after.seq] = write.entry
        self.requests[req.entry_id] = _request(req)
        for claim in commit.claims:
            self.claims[(claim.pk, claim.sk)] = req.entry_id

    def put_claims(self, claims: Sequence[Claim], by: str) -> None:
        for claim in claims:
            if (claim.pk, claim.sk) in self.claims:
                raise ClaimExists(claim)
        for claim in claims:
            self.claims[(claim.pk, claim.sk)] = by


def with_test_issuers(store: FakeCardStore) -> FakeCardStore:
    """The issuers tests/conftest.py's `store` has: `niimi`, and `okayama` with its point name."""
    store.put_issuer(Issuer("niimi"))
    store.put_issuer(Issuer("okayama", point_name="おかやまポイント"))
    return store
