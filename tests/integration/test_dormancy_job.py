"""The daily dormancy sweep on moto: 60 months counted from the day after a card's last
grant or spend, its points are voided and every MyPage link to it is removed — on the
exact day, moved by a later grant or spend, exactly once through re-runs, a run killed
part way and two runs at once, and found through a sparse index that lists only open
cards with activity. Every test ends with the ledger invariants checked."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from chalicelib.job_progress import JobInterrupted, JobState
from chalicelib.jobs.dormancy import ACTOR, JOB, run_dormancy
from chalicelib.ledger import keys
from chalicelib.ledger.domain import Actor, CardStatus, Op, Source
from chalicelib.mypage.members import Members
from tests.integration.test_reminders_job import BIRTH, OPERATOR, card_no
from tests.members import sign_up

TILL = Actor("terminal", "T-1", merchant="M-1")
LAST = date(2022, 10, 24)  # the last grant
DEADLINE = date(2027, 10, 24)  # 60 months from 2022-10-25: the last day still active
DORMANT = date(2027, 10, 25)  # the first dormant day


def idm_of(n: int) -> str:
    return f"0a{n:014x}"


def open_card(ledger, clock, n: int, grants=((LAST, 5000, 72),), issuer: str = "niimi") -> str:
    """A card with grants (day, points, validity in months): long validities keep points
    on the card until it goes dormant."""
    idm = idm_of(n) if issuer == "niimi" else f"0b{n:014x}"
    ledger.open_card(idm=idm, card_number=card_no(n if issuer == "niimi" else 10**9 + n), issuer_id=issuer,
                     birth_date=BIRTH)
    for i, (day, points, months) in enumerate(grants):
        clock.set(day)
        ledger.grant(idm, points, request_id=f"grant:{idm}:{i}", actor=OPERATOR,
                     source=Source.INITIAL if i == 0 else Source.ADMIN,  # one initial grant per card
                     validity_months=months)
    return idm


def run_on(ledger, mypage, clock, day: date, **kwargs):
    clock.set(day)
    return run_dormancy(ledger, Members(mypage.store), "niimi", on=day, state=JobState(), **kwargs)


def linked(mypage, session) -> set[str]:
    return {link.idm for link in mypage.store.links(session.member_id)}


def voids(ledger, idm: str) -> list:
    return [e for e in ledger.history(idm, limit=100).entries if e.kind == "void"]


def indexed_cards(store) -> dict[str, str]:
    """Every card in the by-dormancy index, IDm → key (a scan of the index, for tests only)."""
    pages = store.connection.client.get_paginator("scan").paginate(TableName=store.table.name,
                                                                   IndexName="by-dormancy")
    return {keys.card_idm(i["pk"]["S"]): i["dormancy_key"]["S"] for page in pages for i in page["Items"]}


def test_a_card_is_active_on_its_deadline_and_retired_the_day_after(ledger, mypage_service, outbox, clock):
    card = open_card(ledger, clock, 1, grants=((date(2022, 10, 1), 300, 6), (LAST, 5000, 72)))
    other = open_card(ledger, clock, 2, grants=((date(2023, 6, 1), 800, 72),))
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    mypage_service.link_card(hanako, card_no(2), BIRTH)
    jiro = sign_up(mypage_service, outbox, "jiro@example.jp", card_no(1), BIRTH)  # family: the same card
    assert indexed_cards(ledger.store)[card] == keys.dormancy("niimi", LAST, card)

    before = run_on(ledger, mypage_service, clock, DEADLINE)
    assert before.days[-1] == date(2022, 10, 23) and before.dormant_cards == 0
    assert ledger.balance(card).balance == 5000
    assert linked(mypage_service, hanako) == {card, other} and linked(mypage_service, jiro) == {card}

    report = run_on(ledger, mypage_service, clock, DORMANT)
    assert report.days == [LAST]
    assert (report.cards, report.dormant_cards, report.voided_cards) == (1, 1, 1)
    assert (report.points, report.unlinked) == (5000, 2)
    [entry] = voids(ledger, card)
    assert entry.actor == ACTOR
    assert entry.reason.startswith("dormant")
    # the 300-point lot ran out in 2023 without the expiry job: the void records it as expired
    assert sorted((m.op, m.amount) for m in entry.movements) == [(Op.EXPIRE, 300), (Op.VOID, 5000)]
    assert ledger.balance(card).balance == 0
    assert ledger.card(card).status is CardStatus.ISSUED  # the card stays usable
    assert linked(mypage_service, hanako) == {other} and linked(mypage_service, jiro) == set()
    assert mypage_service.store.unlink_card(card) == 0  # no link left from the card's side either
    assert ledger.balance(other).balance == 800 and not voids(ledger, other)
    assert JobState().last_done(JOB, "niimi") == LAST


def test_a_later_grant_or_spend_moves_the_deadline(ledger, mypage_service, outbox, clock):
    spent = open_card(ledger, clock, 1)
    granted = open_card(ledger, clock, 2)
    clock.set(date(2023, 1, 10))
    ledger.spend(spent, 100, request_id="pay-1", actor=TILL)
    ledger.grant(granted, 50, request_id="late-grant", actor=OPERATOR, source=Source.ADMIN, validity_months=72)
    assert indexed_cards(ledger.store) == {
        spent: keys.dormancy("niimi", date(2023, 1, 10), spent),
        granted: keys.dormancy("niimi", date(2023, 1, 10), granted),
    }
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)

    assert run_on(ledger, mypage_service, clock, DORMANT, since=LAST).dormant_cards == 0
    assert run_on(ledger, mypage_service, clock, date(2028, 1, 10), since=date(2023, 1, 5)).dormant_cards == 0
    assert ledger.balance(spent).balance == 4900 and linked(mypage_service, hanako) == {spent}
    report = run_on(ledger, mypage_service, clock, date(2028, 1, 11))
    assert report.days == [date(2023, 1, 10)]
    assert (report.dormant_cards, report.points, report.unlinked) == (2, 4900 + 5050, 1)
    assert linked(mypage_service, hanako) == set()


def test_a_card_listed_under_an_old_day_but_used_since_is_left_alone(ledger, mypage_service, outbox, clock,
                                                                   monkeypatch):
    """The index is eventually consistent: the job re-reads every card it lists."""
    card = open_card(ledger, clock, 1)
    clock.set(date(2025, 5, 1))
    ledger.spend(card, 10, request_id="pay-1", actor=TILL)
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    stale = {LAST: [card]}
    monkeypatch.setattr(ledger.store, "cards_last_active", lambda issuer, day: iter(stale.get(day, [])))

    report = run_on(ledger, mypage_service, clock, DORMANT, since=LAST)
    assert (report.cards, report.dormant_cards) == (1, 0)
    assert ledger.balance(card).balance == 4990 and not voids(ledger, card)
    assert linked(mypage_service, hanako) == {card}


DAYS = [date(2022, 10, 20), date(2022, 10, 21), date(2022, 10, 21), date(2022, 10, 23), LAST, LAST]


def build(ledger, mypage, outbox, clock) -> tuple[list[str], list]:
    """Six cards last active over five days, linked by two members, three cards each."""
    cards = [open_card(ledger, clock, n, grants=((day, 100 * n, 72),)) for n, day in enumerate(DAYS, start=1)]
    members = []
    for first in (1, 4):
        session = sign_up(mypage, outbox, f"member{first}@example.jp", card_no(first), BIRTH)
        for n in (first + 1, first + 2):
            mypage.link_card(session, card_no(n), BIRTH)
        members.append(session)
    return cards, members


def assert_retired_once(ledger, mypage, cards, members) -> None:
    for n, idm in enumerate(cards, start=1):
        [entry] = voids(ledger, idm)
        assert [(m.op, m.amount) for m in entry.movements] == [(Op.VOID, 100 * n)]
        assert ledger.totals(idm)[Op.VOID] == 100 * n
    for session in members:
        assert linked(mypage, session) == set()


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_run_killed_after_k_cards_then_run_again_retires_each_card_once(ledger, mypage_service, outbox, clock, k):
    cards, members = build(ledger, mypage_service, outbox, clock)
    since = date(2022, 10, 15)
    with pytest.raises(JobInterrupted):
        run_on(ledger, mypage_service, clock, DORMANT, since=since, fail_after=k)
    done = JobState().last_done(JOB, "niimi")
    assert done is None or done < LAST

    resumed = run_on(ledger, mypage_service, clock, DORMANT, since=None if done else since)
    assert resumed.days[-1] == LAST
    assert_retired_once(ledger, mypage_service, cards, members)
    assert JobState().last_done(JOB, "niimi") == LAST


def test_running_again_changes_nothing_and_a_new_registration_stays(ledger, mypage_service, outbox, clock):
    cards, members = build(ledger, mypage_service, outbox, clock)
    first = run_on(ledger, mypage_service, clock, DORMANT, since=date(2022, 10, 15))
    assert (first.dormant_cards, first.points, first.unlinked) == (6, 2100, 6)
    heads = {c: ledger.card(c).head for c in cards}

    mypage_service.link_card(members[0], card_no(1), BIRTH)  # the resident registers the card again
    assert run_on(ledger, mypage_service, clock, DORMANT).days == []  # already done
    assert run_on(ledger, mypage_service, clock, date(2027, 10, 26)).dormant_cards == 0
    assert {c: ledger.card(c).head for c in cards} == heads
    assert linked(mypage_service, members[0]) == {cards[0]}

    clock.set(date(2027, 11, 1))  # and earns points again: a new 60 months
    ledger.grant(cards[0], 200, request_id="event-1", actor=OPERATOR, source=Source.EVENT)
    assert indexed_cards(ledger.store)[cards[0]] == keys.dormancy("niimi", date(2027, 11, 1), cards[0])
    assert ledger.balance(cards[0]).balance == 200


def test_a_forced_rerun_over_the_same_days_is_answered_from_the_ledger(ledger, mypage_service, outbox, clock):
    cards, members = build(ledger, mypage_service, outbox, clock)
    run_on(ledger, mypage_service, clock, DORMANT, since=date(2022, 10, 15))
    seqs = {c: ledger.card(c).seq for c in cards}
    clock.set(date(2027, 10, 28))
    again = run_dormancy(ledger, Members(mypage_service.store), "niimi", state=JobState(),
                         on=date(2027, 10, 28), since=date(2022, 10, 15))
    assert (again.dormant_cards, again.unlinked) == (6, 0)
    assert {c: ledger.card(c).seq for c in cards} == seqs
    assert JobState().last_done(JOB, "niimi") > LAST  # the swept days moved on
    assert_retired_once(ledger, mypage_service, cards, members)


def test_two_runs_at_once_retire_each_card_once(ledger, mypage_service, outbox, clock):
    cards, members = build(ledger, mypage_service, outbox, clock)
    clock.set(DORMANT)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            barrier.wait()
            run_dormancy(ledger, Members(mypage_service.store), "niimi", state=JobState(),
                         on=DORMANT, since=date(2022, 10, 15))
        except BaseException as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_retired_once(ledger, mypage_service, cards, members)


def test_the_index_lists_only_open_cards_with_activity(ledger, clock):
    granted = open_card(ledger, clock, 1)
    never = idm_of(2)
    ledger.open_card(idm=never, card_number=card_no(2), issuer_id="niimi")
    returned = open_card(ledger, clock, 3)
    broken = open_card(ledger, clock, 4)
    replacement = idm_of(5)
    ledger.open_card(idm=replacement, card_number=card_no(5), issuer_id="niimi")
    other_issuer = open_card(ledger, clock, 6, issuer="okayama")
    clock.set(date(2023, 2, 1))
    ledger.void(returned, request_id="return-3", actor=OPERATOR, reason="moving", close_as=CardStatus.RETURNED)
    ledger.transfer(broken, replacement, request_id="reissue-4", actor=OPERATOR, reason="damaged")

    assert indexed_cards(ledger.store) == {
        granted: keys.dormancy("niimi", LAST, granted),
        replacement: keys.dormancy("niimi", LAST, replacement),  # carries the broken card's last activity
        other_issuer: keys.dormancy("okayama", LAST, other_issuer),
    }
    assert set(ledger.store.cards_last_active("niimi", LAST)) == {granted, replacement}
    assert set(ledger.store.cards_last_active("okayama", LAST)) == {other_issuer}


def test_the_job_reads_only_the_cards_whose_time_ran_out(ledger, mypage_service, outbox, clock):
    dormant = [open_card(ledger, clock, n) for n in range(1, 6)]
    active = [open_card(ledger, clock, n, grants=((date(2022, 10, 25), 100, 72),)) for n in range(11, 31)]
    sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    clock.set(DORMANT)
    ledger.issuer("niimi")  # warm, as in a warm container
    calls: list[tuple[str, dict]] = []

    def hook(model, params, **_):
        calls.append((model.name, params))

    events = ledger.store.connection.client.meta.events
    events.register("provide-client-params.dynamodb", hook, unique_id="test-dormancy-count")
    try:
        report = run_dormancy(ledger, Members(mypage_service.store), "niimi", state=JobState(),
                              on=DORMANT, since=LAST)
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-dormancy-count")

    assert (report.days, report.dormant_cards, report.unlinked) == ([LAST], 5, 1)
    ops = [op for op, _ in calls]
    assert "Scan" not in ops
    assert ops.count("Query") == keys.SHARDS + len(dormant)  # the day's shards, then each card's links
    assert ops.count("GetItem") == ops.count("BatchGetItem") == len(dormant)
    everything = repr([params for _, params in calls])
    assert not any(idm in everything for idm in active)
    # Besides the day's queries, the progress and one transaction per link removed: per
    # dormant card a read, the void's read and write, and the query for its links.
    assert len(calls) - keys.SHARDS - 1 - report.unlinked == 4 * len(dormant)


def test_a_cards_links_are_found_from_the_card_through_link_unlink_and_withdrawal(
    ledger, mypage_service, outbox, clock
):
    from chalicelib.mypage.errors import CardAlreadyLinked
    from chalicelib.mypage.store import Conflict, Link
    from tests.members import PASSWORD

    card = open_card(ledger, clock, 1)
    family = open_card(ledger, clock, 2)
    store = mypage_service.store
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    jiro = sign_up(mypage_service, outbox, "jiro@example.jp", card_no(1), BIRTH)
    mypage_service.link_card(hanako, card_no(2), BIRTH)
    with pytest.raises(CardAlreadyLinked):
        mypage_service.link_card(hanako, card_no(2), BIRTH)
    with pytest.raises(Conflict):  # the pair itself refuses a second link, whatever the service checked
        store.add_link(hanako.member_id, Link("another-id", family, "JW…", clock()))

    [to_family] = [link for link in store.links(hanako.member_id) if link.idm == family]
    mypage_service.unlink_card(hanako, to_family.link_id)
    assert store.unlink_card(family) == 0  # unlinking removed the card's side too
    mypage_service.withdraw(jiro, PASSWORD)
    assert store.unlink_card(card) == 1  # only hanako's link was left
    assert store.links(hanako.member_id) == []


def test_a_spend_landing_between_the_jobs_read_and_its_void_keeps_the_card(ledger, mypage_service, outbox, clock,
                                                                            monkeypatch):
    card = open_card(ledger, clock, 1)
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    read_card = ledger.store.get_card

    def read_then_a_spend(idm):
        stored = read_card(idm)  # the job has seen a dormant card; the resident pays now
        ledger.spend(idm, 100, request_id="late-spend", actor=TILL)
        return stored

    monkeypatch.setattr(ledger.store, "get_card", read_then_a_spend)
    clock.set(DORMANT)
    report = run_dormancy(ledger, Members(mypage_service.store), "niimi", state=JobState(),
                          on=DORMANT, since=LAST)
    assert (report.dormant_cards, report.voided_cards, report.points) == (1, 0, 0)
    assert ledger.balance(card).balance == 4900 and not voids(ledger, card)
    assert linked(mypage_service, hanako) == {card}
