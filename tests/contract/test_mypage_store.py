"""MyPageStore and its fake (tests/fakes/mypage.py) on the same cases (`TestFake`,
`TestDynamoDB`): what MyPage's service relies on of its store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from chalicelib.mypage import keys
from chalicelib.mypage.domain import Link, Member, Window
from chalicelib.mypage.store import Conflict, LoginFailures, MyPageStore, Session, StoredCode
from tests.fakes.mypage import FakeMyPageStore

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2022, 10, 24, 10, 0, 0, 123456, tzinfo=JST)
LATER = NOW + timedelta(minutes=30, seconds=0.5)


def member(n: int, reminders: bool = True) -> Member:
    return Member(f"m{n}", f"r{n}@example.jp", f"hash{n}", reminders)


def link(link_id: str, idm: str) -> Link:
    return Link(link_id, idm, "JW**********" + idm[-3:], NOW)


def signed_up(store, n: int, idm: str = "0000000000000001", reminders: bool = True, issuer: str = "niimi") -> Member:
    store.put_signup(f"s{n}", f"r{n}@example.jp", LATER)
    m = member(n, reminders)
    store.create_member(m, f"e{n}", f"s{n}", link(f"l{n}", idm), NOW, issuer)
    return m


class MyPageStoreCases:
    # -- members -----------------------------------------------------------------------

    def test_a_member_is_created_with_its_address_first_card_and_the_end_of_its_signup(self, store):
        assert store.signup("s1") is None
        m = signed_up(store, 1)
        assert store.member("m1") == m and store.member_by_email("e1") == m
        assert store.address_registered("e1") and not store.address_registered("e2")
        assert store.member_by_email("e2") is None and store.member("m2") is None
        assert store.links("m1") == [link("l1", "0000000000000001")]
        assert store.member_and_links("m1") == (m, [link("l1", "0000000000000001")])
        assert store.member_and_links("m2") == (None, [])
        assert store.card_members("0000000000000001") == ["m1"]
        assert store.signup("s1") is None

    def test_a_taken_address_or_a_used_signup_is_a_conflict_and_writes_nothing(self, store):
        signed_up(store, 1)
        store.put_signup("s2", "x@example.jp", LATER)
        with pytest.raises(Conflict):
            store.create_member(member(2), "e1", "s2", link("l2", "0000000000000002"), NOW, "niimi")
        assert store.member("m2") is None and store.card_members("0000000000000002") == []
        assert store.signup("s2") == ("x@example.jp", LATER.replace(microsecond=0).astimezone(UTC))
        with pytest.raises(Conflict):
            store.create_member(member(2), "e2", "s-used", link("l2", "0000000000000002"), NOW, "niimi")
        assert store.member("m2") is None and not store.address_registered("e2")

    def test_reminders_list_the_members_who_want_them_by_shard(self, store):
        for n in range(1, 7):
            signed_up(store, n, idm=f"{n:016x}", reminders=n != 3)
        store.set_reminders("m2", False, "niimi")
        store.set_reminders("m3", True, "niimi")
        expected = sorted((f"m{n}" for n in (1, 3, 4, 5, 6)), key=lambda m: keys.remindee("niimi", m))
        assert list(store.remindees("niimi")) == expected
        assert store.member("m2").expiry_reminders is False and store.member("m3").expiry_reminders is True
        assert list(store.remindees("okayama")) == []

    def test_a_password_changes_and_a_deleted_member_leaves_nothing_behind(self, store):
        signed_up(store, 1)
        store.set_password("m1", "new")
        assert store.member("m1").password_hash == "new"
        store.put_session(Session("m1", "t1", NOW, NOW), LATER)
        store.add_link("m1", link("l9", "0000000000000009"))
        store.delete_member("m1", "e1", "niimi")
        assert store.member("m1") is None and not store.address_registered("e1")
        assert store.links("m1") == [] and store.session("m1", "t1") is None
        assert store.card_members("0000000000000001") == [] and store.card_members("0000000000000009") == []
        assert list(store.remindees("niimi")) == []

    # -- codes and signups -------------------------------------------------------------

    def test_a_code_counts_its_tries_and_refuses_past_the_last(self, store):
        assert store.try_code("signup", "e1", 3) is None
        store.put_code("signup", "e1", "h1", LATER)
        expires = LATER.replace(microsecond=0).astimezone(UTC)
        assert store.try_code("signup", "e1", 3) == StoredCode("h1", 1, expires)
        assert store.try_code("signup", "e1", 3).tries == 2
        assert store.try_code("signup", "e1", 3).tries == 3
        with pytest.raises(Conflict):
            store.try_code("signup", "e1", 3)
        assert store.try_code("reset", "e1", 3) is None  # another purpose, another code
        store.put_code("signup", "e1", "h2", LATER)  # a new code starts its tries afresh
        assert store.try_code("signup", "e1", 3) == StoredCode("h2", 1, expires)
        store.delete_code("signup", "e1")
        store.delete_code("signup", "e1")
        assert store.try_code("signup", "e1", 3) is None

    # -- sessions ----------------------------------------------------------------------

    def test_sessions_are_read_touched_and_deleted(self, store):
        store.put_session(Session("m1", "t1", NOW, NOW), LATER)
        store.put_session(Session("m1", "t2", NOW, NOW), LATER)
        store.put_session(Session("m1", "t3", NOW, NOW), LATER)
        assert store.session("m1", "t1") == Session("m1", "t1", NOW, NOW)
        assert store.session("m1", "t1").created_at.utcoffset() == timedelta(0)
        store.touch_session(Session("m1", "t1", NOW, NOW), LATER, LATER + timedelta(hours=1))
        assert store.session("m1", "t1").last_seen == LATER
        store.touch_session(Session("m1", "gone", NOW, NOW), LATER, LATER)
        assert store.session("m1", "gone") is None
        store.delete_session("m1", "t2")
        store.delete_session("m1", "t2")
        assert store.session("m1", "t2") is None
        store.delete_sessions("m1", keep="t3")
        assert store.session("m1", "t1") is None and store.session("m1", "t3") is not None
        store.delete_sessions("m1")
        assert store.session("m1", "t3") is None

    # -- links -------------------------------------------------------------------------

    def test_a_member_links_a_card_once(self, store):
        signed_up(store, 1)
        store.add_link("m1", link("l2", "0000000000000002"))
        with pytest.raises(Conflict):
            store.add_link("m1", link("l3", "0000000000000002"))
        with pytest.raises(Conflict):
            store.add_link("m1", link("l2", "0000000000000003"))
        assert [x.link_id for x in store.links("m1")] == ["l1", "l2"]
        assert store.link("m1", "l2") == link("l2", "0000000000000002") and store.link("m1", "l3") is None
        assert store.card_members("0000000000000003") == []
        assert store.delete_link("m1", "l2") is True and store.delete_link("m1", "l2") is False
        assert store.card_members("0000000000000002") == []

    def test_a_card_is_unlinked_from_every_member(self, store):
        for n in (1, 2, 3):
            signed_up(store, n, idm="0000000000000001")
        store.add_link("m3", link("x", "0000000000000002"))
        assert store.card_members("0000000000000001") == ["m1", "m2", "m3"]
        assert store.unlink_card("0000000000000001") == 3
        assert store.unlink_card("0000000000000001") == 0
        assert store.links("m1") == [] and [x.link_id for x in store.links("m3")] == ["x"]

    def test_a_reissue_moves_every_link_to_the_replacement(self, store):
        old, new = "0000000000000001", "0000000000000002"
        signed_up(store, 1, idm=old)
        signed_up(store, 2, idm=old)
        store.add_link("m2", link("l-new", new))  # m2 already has the replacement
        assert store.move_card_links(old, new, "JW**********002") == 2
        assert store.links("m1") == [Link("l1", new, "JW**********002", NOW)]
        assert store.links("m2") == [link("l-new", new)]
        assert store.card_members(new) == ["m1", "m2"] and store.card_members(old) == []
        assert store.move_card_links(old, new, "JW**********002") == 0

    # -- throttles, counters, login failures ---------------------------------------------

    def test_a_window_is_saved_under_its_version(self, store):
        window, version = store.window("signup", "k")
        assert (window, version) == (Window(()), None)
        store.save_window("signup", "k", window.add(NOW, timedelta(hours=1)), None, LATER)
        with pytest.raises(Conflict):
            store.save_window("signup", "k", Window((LATER,)), None, LATER)
        window, version = store.window("signup", "k")
        assert window.times == (NOW,) and version == 1
        store.save_window("signup", "k", Window((NOW, LATER)), 1, LATER)
        with pytest.raises(Conflict):
            store.save_window("signup", "k", Window(()), 1, LATER)
        assert store.window("signup", "k") == (Window((NOW, LATER)), 2)

    def test_a_counter_stops_at_its_limit_and_gives_back(self, store):
        assert store.count("mail", "k") == 0
        assert [store.take("mail", "k", 2, LATER) for _ in range(3)] == [1, 2, None]
        assert store.count("mail", "k") == 2 and store.count("mail", "other") == 0
        store.give_back("mail", "k")
        assert store.take("mail", "k", 2, LATER) == 2
        for _ in range(3):
            store.give_back("mail", "k")
        assert store.count("mail", "k") == 0
        store.give_back("mail", "never")
        assert store.count("mail", "never") == 0

    def test_login_failures_are_counted_over_what_was_read(self, store):
        assert store.login_failures("k") is None
        wait = NOW.astimezone(timezone.utc) + timedelta(seconds=1.25)
        store.count_login_failure("k", None, 1, wait, LATER)
        with pytest.raises(Conflict):
            store.count_login_failure("k", None, 1, wait, LATER)
        with pytest.raises(Conflict):
            store.count_login_failure("k", 5, 6, wait, LATER)
        store.count_login_failure("k", 1, 2, wait, LATER)
        assert store.login_failures("k") == LoginFailures(2, wait, LATER.replace(microsecond=0).astimezone(UTC))
        store.clear_login_failures("k")
        store.clear_login_failures("k")
        assert store.login_failures("k") is None
        with pytest.raises(Conflict):
            store.count_login_failure("k", 2, 3, wait, LATER)


class TestFake(MyPageStoreCases):
    @pytest.fixture
    def store(self):
        return FakeMyPageStore()


class TestDynamoDB(MyPageStoreCases):
    @pytest.fixture
    def store(self, store):
        """MyPage's store on the ledger's moto table (tests/conftest.py's `store`)."""
        return MyPageStore(store.table)
