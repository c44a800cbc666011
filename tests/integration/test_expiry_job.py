"""The daily expiry job on moto's DynamoDB: the exact day, catching up a missed run,
re-runs, a run killed part way then resumed, two runs at once, and a cost that follows
the cards due (the sparse, sharded by-expiry index). Every test using the `ledger`
fixture ends with the ledger invariants checked."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pytest

from chalicelib.job_progress import JobInterrupted, JobState
from chalicelib.jobs.expiry import JOB, run_expiry
from chalicelib.ledger import keys
from chalicelib.ledger.domain import Actor, Op, Source

OPERATOR = Actor("operator", "ops")
TILL = Actor("terminal", "T-1", merchant="M-1")
GRANT_DAY = date(2022, 10, 24)  # + 6 months: last valid day 2023-04-23 (§5.2)
LAST_DAY = date(2023, 4, 23)
DAY_AFTER = date(2023, 4, 24)


def idm_of(n: int, issuer: str = "niimi") -> str:
    return f"{'0a' if issuer == 'niimi' else '0b'}{n:014x}"


def open_card(ledger, clock, n: int, *, issuer: str = "niimi", grants=((GRANT_DAY, 5000),)) -> str:
    idm = idm_of(n, issuer)
    ledger.open_card(idm=idm, card_number=f"JW{(n if issuer == 'niimi' else 10**9 + n):015d}", issuer_id=issuer)
    for i, (day, amount) in enumerate(grants):
        clock.set(day)
        ledger.grant(idm, amount, request_id=f"grant:{idm}:{i}", actor=OPERATOR,
                     source=Source.INITIAL if i == 0 else Source.ADMIN)  # one initial grant per card
    return idm


def history(ledger, idm: str):
    """The card's entries as kinds and movements, oldest first (what a resume must not change)."""
    return [(e.kind, e.movements, e.result) for e in reversed(ledger.history(idm, limit=100).entries)]


def expire_entries(ledger, idm: str) -> list:
    return [e for e in ledger.history(idm, limit=100).entries if e.kind == "expire"]


def run_on(ledger, clock, day: date, **kwargs):
    clock.set(day)
    return run_expiry(ledger, "niimi", state=JobState(), on=day, **kwargs)


def indexed_cards(store) -> dict[str, str]:
    """Every card in the by-expiry index, IDm → key (a scan of the index, for tests only)."""
    client = store.connection.client
    pages = client.get_paginator("scan").paginate(TableName=store.table.name, IndexName="by-expiry")
    return {
        keys.card_idm(item["pk"]["S"]): item["expiry_key"]["S"] for page in pages for item in page["Items"]
    }


def test_a_lot_is_expired_by_the_run_of_the_day_after_its_last_day(ledger, store, clock):
    card = open_card(ledger, clock, 1)
    assert indexed_cards(store) == {card: keys.expiry("niimi", LAST_DAY, card)}

    first = run_on(ledger, clock, LAST_DAY, since=date(2023, 4, 22))
    assert (first.cards, first.points) == (0, 0)
    assert ledger.balance(card).balance == 5000 and not expire_entries(ledger, card)

    second = run_on(ledger, clock, DAY_AFTER, since=None)  # from the job's own progress
    assert second.days == [LAST_DAY]
    assert (second.cards, second.expired_cards, second.points) == (1, 1, 5000)
    [entry] = expire_entries(ledger, card)
    assert [(m.op, m.amount, m.expires_on) for m in entry.movements] == [(Op.EXPIRE, 5000, LAST_DAY)]
    assert entry.actor == Actor("job", "expiry")
    assert indexed_cards(store) == {}  # no lot holds points: the card left the index
    assert JobState().last_done(JOB, "niimi") == LAST_DAY


def test_a_missed_run_is_caught_up_by_the_next_one(ledger, store, clock):
    card = open_card(ledger, clock, 1)
    run_on(ledger, clock, LAST_DAY, since=date(2023, 4, 22))
    # no run on 2023-04-24
    report = run_on(ledger, clock, date(2023, 4, 25), since=None)
    assert report.days == [LAST_DAY, DAY_AFTER]
    assert report.points == 5000
    assert ledger.totals(card)[Op.EXPIRE] == 5000
    assert JobState().last_done(JOB, "niimi") == DAY_AFTER


def test_running_again_changes_nothing(ledger, store, clock):
    cards = [open_card(ledger, clock, n) for n in range(1, 4)]
    run_on(ledger, clock, DAY_AFTER, since=LAST_DAY)
    before = {c: (ledger.card(c).seq, ledger.card(c).head) for c in cards}

    assert run_on(ledger, clock, DAY_AFTER, since=None).days == []  # already done
    again = run_on(ledger, clock, DAY_AFTER, since=LAST_DAY)  # forced over the same day
    assert again.cards == 0  # the index no longer lists them
    clock.advance(days=3)
    later = run_expiry(ledger, "niimi", state=JobState(), on=DAY_AFTER, since=date(2023, 4, 1))
    assert later.points == 0
    assert {c: (ledger.card(c).seq, ledger.card(c).head) for c in cards} == before
    assert JobState().last_done(JOB, "niimi") == LAST_DAY  # never moved back


def test_a_card_listed_again_after_its_expiry_is_answered_from_its_record(ledger, store, clock):
    """If the index lags (it is eventually consistent), the same request id replays."""
    card = open_card(ledger, clock, 1)
    run_on(ledger, clock, DAY_AFTER, since=LAST_DAY)
    seq = ledger.card(card).seq
    from chalicelib.jobs.expiry import ACTOR, request_id

    replay = ledger.expire_due(card, on=DAY_AFTER, request_id=request_id("niimi", DAY_AFTER, card), actor=ACTOR)
    assert replay == {"expired": 5000}
    assert ledger.card(card).seq == seq


LAYOUT = [  # per card: grants (day, points); then an optional spend on 2023-04-01
    (((GRANT_DAY, 5000),), 0),
    (((GRANT_DAY, 300), (date(2022, 11, 30), 123)), 0),
    (((GRANT_DAY, 1000),), 400),
    (((date(2022, 10, 20), 50), (date(2022, 10, 23), 70)), 0),  # due 04-19 and 04-22
    (((date(2022, 11, 1), 900),), 0),  # not due until 2023-04-30
    (((GRANT_DAY, 200),), 200),  # spent out: nothing to expire
    (((GRANT_DAY, 5000),), 10),
]


def build(ledger, clock, issuer: str) -> list[str]:
    cards = []
    for n, (grants, spend) in enumerate(LAYOUT, start=1):
        idm = open_card(ledger, clock, n, issuer=issuer, grants=grants)
        if spend:
            clock.set(date(2023, 4, 1))
            ledger.spend(idm, spend, request_id=f"pay:{idm}", actor=TILL)
        cards.append(idm)
    return cards


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_run_killed_after_k_cards_then_run_again_ends_as_an_uninterrupted_run(ledger, store, clock, k):
    whole = build(ledger, clock, "okayama")  # the same cards under another issuer, run in one go
    resumed = build(ledger, clock, "niimi")
    clock.set(DAY_AFTER)
    since = date(2023, 4, 15)
    reference = run_expiry(ledger, "okayama", state=JobState(), on=DAY_AFTER, since=since)

    with pytest.raises(JobInterrupted):
        run_expiry(ledger, "niimi", state=JobState(), on=DAY_AFTER, since=since, fail_after=k)
    done = JobState().last_done(JOB, "niimi")
    assert done is None or done < LAST_DAY
    resumed_report = run_expiry(ledger, "niimi", state=JobState(), on=DAY_AFTER,
                                since=None if done else since)
    if done is None:  # no progress recorded: the first run sweeps its look-back from scratch
        assert resumed_report.days[-1] == LAST_DAY

    assert [history(ledger, c) for c in resumed] == [history(ledger, c) for c in whole]
    for a, b in zip(resumed, whole, strict=True):
        assert ledger.totals(a).by_op == ledger.totals(b).by_op
        assert ledger.card(a).lots == ledger.card(b).lots
    assert reference.points == 5000 + 300 + 600 + 50 + 70 + 4990
    assert sum(ledger.totals(c)[Op.EXPIRE] for c in resumed) == reference.points


def test_two_runs_at_once_expire_each_lot_once(ledger, store, clock):
    cards = build(ledger, clock, "niimi")
    clock.set(DAY_AFTER)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            run_expiry(ledger, "niimi", state=JobState(), on=DAY_AFTER, since=date(2023, 4, 15))
        except BaseException as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for idm, (grants, spend) in zip(cards, LAYOUT, strict=True):
        due = sum(points for day, points in grants if day <= GRANT_DAY) - spend
        entries = expire_entries(ledger, idm)
        assert len(entries) == (1 if due else 0)
        assert ledger.totals(idm)[Op.EXPIRE] == due
    assert JobState().last_done(JOB, "niimi") == LAST_DAY


def test_the_index_is_sparse_and_the_job_reads_only_the_cards_due(ledger, store, clock):
    due = [open_card(ledger, clock, n) for n in range(1, 41)]
    later = [open_card(ledger, clock, n, grants=((date(2022, 12, 1), 100),)) for n in range(41, 61)]
    empty = []
    for n in range(61, 71):
        idm = idm_of(n)
        ledger.open_card(idm=idm, card_number=f"JW{n:015d}", issuer_id="niimi")
        empty.append(idm)
    spent = [open_card(ledger, clock, n, grants=((GRANT_DAY, 10),)) for n in range(71, 81)]
    clock.set(date(2023, 4, 1))
    for idm in spent:
        ledger.spend(idm, 10, request_id=f"pay:{idm}", actor=TILL)

    indexed = indexed_cards(store)
    assert set(indexed) == set(due) | set(later)  # no card without points is in the index
    assert {keys.parse_expiry(k)[:2] for k in indexed.values()} == {("niimi", LAST_DAY), ("niimi", date(2023, 5, 31))}

    calls: list[tuple[str, dict]] = []  # (operation, its API parameters), one per round trip

    def hook(model, params, **_):
        calls.append((model.name, params))

    events = ledger.store.connection.client.meta.events
    clock.set(DAY_AFTER)
    ledger.issuer("niimi")  # warm: the issuer's settings are read once per container
    events.register("provide-client-params.dynamodb", hook, unique_id="test-expiry-count")
    try:
        report = run_expiry(ledger, "niimi", state=JobState(), on=DAY_AFTER, since=LAST_DAY)
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-expiry-count")

    assert (report.cards, report.expired_cards, report.points) == (40, 40, 40 * 5000)
    ops = [op for op, _ in calls]
    assert ops.count("Query") == keys.SHARDS
    assert ops.count("BatchGetItem") == ops.count("TransactWriteItems") == len(due)
    read = {
        keys.card_idm(k["pk"]["S"])
        for op, params in calls
        if op == "BatchGetItem"
        for table in params["RequestItems"].values()
        for k in table["Keys"]
        if k["pk"]["S"].startswith(keys.CARD)
    }
    assert read == set(due)
    assert len(calls) / len(due) <= 3
    assert set(indexed_cards(store)) == set(later)


def test_a_card_whose_earliest_lot_is_spent_out_is_listed_under_its_next_lot(ledger, store, clock):
    card = open_card(ledger, clock, 1, grants=((GRANT_DAY, 5000), (date(2022, 11, 30), 123)))
    both = open_card(ledger, clock, 2, grants=((GRANT_DAY, 5000), (date(2022, 11, 30), 123)))
    assert indexed_cards(store)[card] == keys.expiry("niimi", LAST_DAY, card)
    clock.set(date(2023, 4, 1))
    ledger.spend(card, 5050, request_id="pay-1", actor=TILL)  # §11: lot 1 spent out, 73 left on lot 2
    assert indexed_cards(store)[card] == keys.expiry("niimi", date(2023, 5, 29), card)
    assert card not in set(store.cards_expiring("niimi", LAST_DAY))
    assert card in set(store.cards_expiring("niimi", date(2023, 5, 29)))

    first = run_on(ledger, clock, DAY_AFTER, since=LAST_DAY)
    assert (first.cards, first.points) == (1, 5000)  # only `both`, its first lot
    assert indexed_cards(store)[both] == keys.expiry("niimi", date(2023, 5, 29), both)  # moved on

    last = run_on(ledger, clock, date(2023, 5, 30), since=None)  # sweeps 04-24 … 05-29
    assert last.days[0] == DAY_AFTER and last.days[-1] == date(2023, 5, 29)
    assert (last.cards, last.points) == (2, 73 + 123)
    assert ledger.totals(card)[Op.EXPIRE] == 73
    assert ledger.totals(both)[Op.EXPIRE] == 5123
    assert indexed_cards(store) == {}


def test_the_daily_schedule_runs_every_issuer_on_its_own_today(ledger, store, clock, monkeypatch):
    """Fired at 15:05 UTC on 2023-04-23, it is already 2023-04-24 in Tokyo."""
    from chalice.test import Client

    from app import app
    from chalicelib import services

    niimi = open_card(ledger, clock, 1)
    okayama = open_card(ledger, clock, 2, issuer="okayama")
    state = JobState()
    state.mark_done(JOB, "niimi", date(2023, 4, 20))
    monkeypatch.setattr(services, "ledger", lambda: ledger)
    assert sorted(store.issuer_ids()) == ["niimi", "okayama"]

    clock.now = datetime(2023, 4, 23, 15, 5, tzinfo=timezone.utc)
    with Client(app) as client:
        client.lambda_.invoke("expire-points", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert ledger.totals(niimi)[Op.EXPIRE] == 5000
    assert ledger.totals(okayama)[Op.EXPIRE] == 5000  # okayama's first run: its look-back
    assert state.last_done(JOB, "niimi") == state.last_done(JOB, "okayama") == LAST_DAY
