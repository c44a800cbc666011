"""The ledger's CardStore and its fake (tests/fakes/ledger.py) on the same cases: the
Chalice todo sample's pattern, a class of cases run once per store (`TestFake`,
`TestDynamoDB`). A case here is what the ledger relies on; a fake that passes them
can stand in for DynamoDB in a test about the ledger's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from chalicelib.ledger import keys
from chalicelib.ledger.chain import canonical_json, link
from chalicelib.ledger.domain import Actor, Card, CardStatus, Entry, Issuer, Lot, Source
from chalicelib.ledger.errors import CardAlreadyExists, InitialAlreadyGranted
from chalicelib.ledger.service import Ledger
from chalicelib.ledger.store import CardWrite, Commit, RequestExists, StoredEntry, StoredRequest, VersionConflict
from chalicelib.table import Claim, ClaimExists, ClaimItem, Write
from tests.conftest import Clock
from tests.fakes.ledger import FakeCannotWrite
from tests.ledger_checks import assert_ledger_sound

AT = datetime(2022, 10, 24, 1, 0, tzinfo=timezone.utc)
ACTOR = Actor("operator", "ops")


def idm(n: int) -> str:
    return f"{n:016x}"


def card(n: int, issuer: str = "niimi") -> Card:
    return Card(idm=idm(n), card_number=f"JW{n:015d}", issuer=issuer, status=CardStatus.ISSUED)


def lot(lot_id: str, remaining: int, expires_on: date, amount: int = 1000) -> Lot:
    return Lot(lot_id, amount, remaining, AT, date(2022, 10, 24), expires_on, Source.ADMIN)


def change(store, n: int, entry_id: str, *, lots=(), activity: date | None = None, status=None,
           version: int | None = None) -> CardWrite:
    """The next state of card `n` as read, with its entry chained on."""
    before = store.get_card(idm(n))
    if version is not None:
        before = replace(before, version=version)
    c = before.card
    entry = Entry(card=c.idm, seq=c.seq + 1, kind="grant", at=AT, day=AT.date(), actor=ACTOR, request=entry_id,
                  movements=(), result={"n": n})
    body = canonical_json(entry.body())
    digest = link(c.head, body)
    after = replace(c, lots=tuple(lots) or c.lots, seq=entry.seq, head=digest,
                    last_activity=activity or c.last_activity, status=status or c.status)
    return CardWrite(before, after, StoredEntry(body, c.head, digest))


def request(entry_id: str, n: int, seq: int = 1) -> StoredRequest:
    return StoredRequest(entry_id, idm(n), seq, "grant", "print-" + entry_id, ACTOR.as_dict(),
                         {"granted": 5, "lots": [["1", 5]]})


def nothing(error=InitialAlreadyGranted):
    return error


class CardStoreCases:
    """Every case takes `store`: the class that runs it says which."""

    # -- cards and numbers -------------------------------------------------------------

    def test_a_new_card_is_read_back_with_version_one_and_its_number(self, store):
        store.add_card(card(1), "1990-01-02")
        stored = store.get_card(idm(1))
        assert (stored.card, stored.version, stored.birth_date) == (card(1), 1, "1990-01-02")
        assert store.idm_for_number("JW000000000000001") == idm(1)
        assert store.get_card(idm(2)) is None and store.idm_for_number("JW000000000000002") is None

    def test_a_card_or_number_already_there_is_refused_and_nothing_is_written(self, store):
        store.add_card(card(1))
        with pytest.raises(CardAlreadyExists):
            store.add_card(replace(card(1), card_number="JW000000000000009"))
        assert store.idm_for_number("JW000000000000009") is None
        with pytest.raises(CardAlreadyExists):
            store.add_card(replace(card(2), card_number=card(1).card_number))
        assert store.get_card(idm(2)) is None
        assert store.idm_for_number(card(1).card_number) == idm(1)

    # -- commits -----------------------------------------------------------------------

    def test_a_commit_writes_the_card_its_entry_and_the_request(self, store):
        store.add_card(card(1), "2000-02-03")
        write = change(store, 1, "e1", lots=[lot("1", 5, date(2023, 4, 30))], activity=date(2022, 10, 24))
        store.commit(Commit([write], request("e1", 1)))
        stored = store.get_card(idm(1))
        assert (stored.card, stored.version, stored.birth_date) == (write.after, 2, "2000-02-03")
        assert store.get_request("e1") == request("e1", 1)
        assert list(store.entries(idm(1))) == [write.entry]
        snap = store.load([idm(1), idm(9)], ["e1", "e9"])
        assert list(snap.cards) == [idm(1)] and snap.cards[idm(1)] == stored
        assert snap.requests == {"e1": request("e1", 1)}

    def test_a_stale_version_is_a_conflict_and_writes_nothing(self, store):
        store.add_card(card(1))
        stale = change(store, 1, "e2")
        store.commit(Commit([change(store, 1, "e1")], request("e1", 1)))
        with pytest.raises(VersionConflict):
            store.commit(Commit([stale], request("e2", 1)))
        assert store.get_request("e2") is None
        assert [e.entry.request for e in store.entries(idm(1))] == ["e1"]
        assert store.get_card(idm(1)).version == 2

    def test_a_commit_of_two_cards_is_all_or_nothing(self, store):
        store.add_card(card(1))
        store.add_card(card(2))
        good = change(store, 1, "e1", status=CardStatus.VOID)
        stale = change(store, 2, "e1", version=7)
        with pytest.raises(VersionConflict):
            store.commit(Commit([good, stale], request("e1", 1)))
        assert store.get_card(idm(1)).card == card(1) and store.get_card(idm(1)).version == 1
        assert list(store.entries(idm(1))) == [] and store.get_request("e1") is None
        store.commit(Commit([good, change(store, 2, "e1")], request("e1", 1)))
        assert [store.get_card(idm(n)).version for n in (1, 2)] == [2, 2]
        assert store.get_card(idm(1)).card.status is CardStatus.VOID

    def test_a_request_already_recorded_is_refused_before_anything_else(self, store):
        store.add_card(card(1))
        store.commit(Commit([change(store, 1, "e1")], request("e1", 1)))
        again = change(store, 1, "e1", version=1)  # stale too: the request still decides
        with pytest.raises(RequestExists):
            store.commit(Commit([again], replace(request("e1", 1), fingerprint="other")))
        assert store.get_request("e1").fingerprint == "print-e1"
        assert store.get_card(idm(1)).version == 2

    def test_a_claim_already_put_refuses_the_commit_with_that_claim(self, store):
        store.add_card(card(1))
        once = Claim(*keys.initial_grant(idm(1)), error=InitialAlreadyGranted)
        store.commit(Commit([change(store, 1, "e1")], request("e1", 1), claims=(once,)))
        assert store.initial_grant_entry(idm(1)) == "e1"
        assert store.initial_grant_entry(idm(2)) is None
        with pytest.raises(ClaimExists) as refused:
            store.commit(Commit([change(store, 1, "e2")], request("e2", 1, 2), claims=(once,)))
        assert refused.value.claim == once
        assert store.get_request("e2") is None and store.get_card(idm(1)).version == 2

    def test_claims_put_on_their_own_are_all_or_nothing(self, store):
        a = Claim("NONCE#a", "NONCE", error=nothing)
        b = Claim("NONCE#b", "NONCE", error=nothing)
        store.put_claims([a], "r1")
        with pytest.raises(ClaimExists) as refused:
            store.put_claims([b, a], "r2")
        assert refused.value.claim == a
        store.put_claims([b], "r3")  # b was not put by the refused call
        with pytest.raises(ClaimExists):
            store.put_claims([b], "r4")

    def test_what_is_read_back_is_a_copy(self, store):
        store.add_card(card(1))
        store.commit(Commit([change(store, 1, "e1")], request("e1", 1)))
        store.get_request("e1").result["granted"] = 99
        store.load([], ["e1"]).requests["e1"].actor["id"] = "x"
        assert store.get_request("e1") == request("e1", 1)

    # -- entries -----------------------------------------------------------------------

    def test_entries_come_in_order_by_page_and_before_a_sequence_number(self, store):
        store.add_card(card(1))
        for n in range(1, 13):
            store.commit(Commit([change(store, 1, f"e{n}")], request(f"e{n}", 1, n)))
        seqs = lambda it: [e.entry.seq for e in it]  # noqa: E731
        assert seqs(store.entries(idm(1))) == list(range(12, 0, -1))
        assert seqs(store.entries(idm(1), newest_first=False)) == list(range(1, 13))
        assert seqs(store.entries(idm(1), limit=5)) == [12, 11, 10, 9, 8]
        assert seqs(store.entries(idm(1), limit=5, before_seq=8)) == [7, 6, 5, 4, 3]
        assert seqs(store.entries(idm(1), limit=5, before_seq=3)) == [2, 1]
        assert seqs(store.entries(idm(1), newest_first=False, limit=3, before_seq=11)) == [1, 2, 3]
        assert seqs(store.entries(idm(2))) == []

    # -- scans and indexes -------------------------------------------------------------

    def test_card_ids_and_chain_heads_list_every_card_of_the_issuer(self, store):
        for n in (1, 2, 3):
            store.add_card(card(n, "okayama" if n == 3 else "niimi"))
        write = change(store, 2, "e1")
        store.commit(Commit([write], request("e1", 2)))
        assert sorted(store.card_ids()) == [idm(1), idm(2), idm(3)]
        assert sorted(store.chain_heads("niimi")) == [(idm(1), 0, "0" * 64), (idm(2), 1, write.after.head)]
        assert list(store.chain_heads("okayama")) == [(idm(3), 0, "0" * 64)]

    def test_cards_expiring_lists_the_earliest_lot_with_points_by_shard(self, store):
        due, later = date(2023, 4, 30), date(2023, 10, 31)
        for n in range(1, 9):
            store.add_card(card(n, "okayama" if n == 8 else "niimi"))
        for n in range(1, 9):
            lots = [lot("1", 5, due), lot("2", 5, later)]
            if n == 3:
                lots = [lot("1", 0, due), lot("2", 5, later)]  # nothing left in the lot due
            if n == 4:
                lots = [lot("1", 0, due)]  # no points at all: not indexed
            store.commit(Commit([change(store, n, f"e{n}", lots=lots)], request(f"e{n}", n)))
        expected = sorted((idm(n) for n in (1, 2, 5, 6, 7)), key=lambda i: (keys.shard(i), i))
        assert list(store.cards_expiring("niimi", due)) == expected
        assert list(store.cards_expiring("niimi", later)) == [idm(3)]
        assert list(store.cards_expiring("okayama", due)) == [idm(8)]
        assert list(store.cards_expiring("niimi", date(2023, 5, 1))) == []

    def test_cards_last_active_lists_open_cards_by_their_last_activity_day(self, store):
        day = date(2022, 10, 24)
        for n in range(1, 7):
            store.add_card(card(n))
        for n in range(1, 6):
            status = CardStatus.RETURNED if n == 2 else None
            activity = date(2022, 10, 25) if n == 5 else day
            store.commit(Commit([change(store, n, f"e{n}", activity=activity, status=status)], request(f"e{n}", n)))
        expected = sorted((idm(n) for n in (1, 3, 4)), key=lambda i: (keys.shard(i), i))
        assert list(store.cards_last_active("niimi", day)) == expected
        assert list(store.cards_last_active("niimi", date(2022, 10, 25))) == [idm(5)]
        assert list(store.cards_last_active("okayama", day)) == []

    def test_cards_changed_lists_cards_by_the_day_and_shard_of_their_last_write(self, store):
        day, next_day = date(2022, 10, 24), date(2022, 10, 25)
        for n in range(1, 6):
            store.add_card(card(n, "okayama" if n == 5 else "niimi"), changed_on=day)
        store.add_card(card(6))  # written without a day (before the index): not listed
        for n in (2, 3):
            store.commit(Commit([change(store, n, f"e{n}")], request(f"e{n}", n), changed_on=next_day))

        def listed(issuer: str, on: date) -> list[str]:
            return [i for s in range(keys.SHARDS) for i in store.cards_changed(issuer, on, s)]

        assert listed("niimi", day) == sorted((idm(1), idm(4)), key=lambda i: (keys.shard(i), i))
        assert listed("niimi", next_day) == sorted((idm(2), idm(3)), key=lambda i: (keys.shard(i), i))
        assert listed("okayama", day) == [idm(5)]
        assert all(keys.shard(i) == 3 for i in store.cards_changed("niimi", day, 3))
        newer = store.entries(idm(2), newest_first=False, from_seq=1)
        assert [e.hash for e in newer] == [store.get_card(idm(2)).card.head]
        assert list(store.entries(idm(2), newest_first=False, from_seq=2)) == []

    # -- issuers -----------------------------------------------------------------------

    def test_issuers_are_listed_and_read_back_with_their_settings(self, store):
        store.put_issuer(Issuer("aaa", closures=(date(2022, 12, 31), date(2023, 1, 1)), rebate_bps=150))
        assert store.issuer_ids() == ["aaa", "niimi", "okayama"]
        assert store.get_issuer("aaa") == Issuer("aaa", closures=(date(2022, 12, 31), date(2023, 1, 1)),
                                                  rebate_bps=150)
        assert store.get_issuer("okayama") == Issuer("okayama", point_name="おかやまポイント")
        assert store.get_issuer("nowhere") is None
        store.put_issuer(Issuer("aaa"))
        assert store.get_issuer("aaa") == Issuer("aaa") and store.issuer_ids().count("aaa") == 1

    # -- through the ledger ------------------------------------------------------------

    def test_the_ledger_on_the_store_keeps_its_invariants(self, store):
        clock = Clock(AT)
        ledger = Ledger(store, clock=clock)
        for n in (1, 2):
            ledger.open_card(idm=idm(n), card_number=f"JW{n:015d}", issuer_id="niimi")
        ledger.grant(idm(1), 500, request_id="g1", actor=ACTOR, source=Source.INITIAL)
        with pytest.raises(InitialAlreadyGranted):
            ledger.grant(idm(1), 500, request_id="g2", actor=ACTOR, source=Source.INITIAL)
        shop = Actor("terminal", "T-1", merchant="M-1")
        ledger.spend(idm(1), 200, request_id="s1", actor=shop)
        assert ledger.spend(idm(1), 200, request_id="s1", actor=shop)["balance"] == 300  # a repeat
        ledger.cancel_spend(idm(1), spend_request_id="s1", request_id="c1", actor=shop)
        clock.advance(days=30)
        ledger.transfer(idm(1), idm(2), request_id="t1", actor=ACTOR, reason="damaged")
        assert ledger.balance(idm(2)).balance == 500
        assert [e.kind for e in ledger.history(idm(1)).entries] == ["transfer", "spend_cancel", "spend", "grant"]
        assert ledger.initial_grant_entry(idm(1)) == Ledger.request_key("g1")
        assert_ledger_sound(ledger)


class TestFake(CardStoreCases):
    @pytest.fixture
    def store(self, fake_card_store):
        return fake_card_store

    def test_another_contexts_writes_are_refused_and_nothing_is_written(self, store):
        """The fake keeps no other context's items: a Commit carrying a `Write` (the
        reports' aggregates, a rebate's bookkeeping) belongs on moto."""
        store.add_card(card(1))
        write = Write(ClaimItem("X#1", "X", by="e1"), error=InitialAlreadyGranted)
        with pytest.raises(FakeCannotWrite):
            store.commit(Commit([change(store, 1, "e1")], request("e1", 1), writes=(write,)))
        assert store.get_request("e1") is None and store.get_card(idm(1)).version == 1


class TestDynamoDB(CardStoreCases):
    """`store` is tests/conftest.py's: the CardStore on a fresh moto table."""
